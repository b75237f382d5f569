"""The user's own noisy data: a CSV or JSON-lines file per split -> RawDataset.

The label column holds the labels as given (the noisy ones DyGen cleans); an optional gold
column holds clean labels, used ONLY for diagnostics. Labels may be strings; they map to
ids in sorted order (numbers numerically), and the mapping is saved with each run.
Every problem a user can cause becomes one UserError line naming the file and row.
"""
from __future__ import annotations

import csv
import io
import json
import logging
from collections import Counter
from pathlib import Path
from typing import List, Optional

import numpy as np

from src.data.raw import RawDataset, decode_utf8, label_sort_key
from src.errors import UserError

log = logging.getLogger("dygen")

DEFAULT_GOLD_COLUMN = "gold"


def _read_records(fmt: str, path: Path):
    """(records, column names): record i is data row i of the file (header and blank lines
    excluded, as pandas counts them)."""
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    text = decode_utf8(path.read_bytes(), path)
    if not text.strip():
        raise UserError(f"{path}: the file is empty")
    if fmt == "csv":
        csv.field_size_limit(1 << 30)
        try:
            reader = csv.DictReader(io.StringIO(text, newline=""))
            records = [dict(r) for r in reader]
        except csv.Error as e:
            raise UserError(f"{path}: not a readable CSV file ({e})") from None
        if reader.fieldnames is None:
            raise UserError(f"{path}: the file is empty")
        records = [{k: v for k, v in r.items() if k is not None} for r in records]
        for r in records:  # short rows: missing cells are blank
            for k in reader.fieldnames:
                if r.get(k) is None:
                    r[k] = ""
        return records, list(reader.fieldnames)
    records = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}, line {lineno}: not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise UserError(f"{path}, line {lineno}: each line must be a JSON object")
        records.append(obj)
    return records, sorted({k for r in records for k in r})


def _column(records, cols, path: Path, name: str, what: str) -> List[str]:
    if name not in cols:
        raise UserError(f"{path}: no {what} column {name!r} (columns: {', '.join(map(str, cols)) or 'none'}); "
                        f"name it with --{what}_column")
    return ["" if r.get(name) is None else str(r.get(name)).strip() for r in records]


def load_custom(fmt: str, *, train_file: Optional[str], test_file: Optional[str] = None,
                text_column: str = "text", label_column: str = "label",
                gold_column: Optional[str] = None) -> RawDataset:
    """RawDataset of the user's file(s). Blank texts are dropped (and counted); every class
    needs at least two training samples; test labels (gold column if the test file has one,
    else its label column) are used only to score."""
    if not train_file:
        raise UserError(f"--dataset {fmt} needs --train_file (and optionally --test_file)")
    path = Path(train_file)
    records, cols = _read_records(fmt, path)
    if not records:
        raise UserError(f"{path}: no data rows")
    texts = _column(records, cols, path, text_column, "text")
    given = _column(records, cols, path, label_column, "label")
    explicit_gold = gold_column is not None
    gold_name = gold_column or DEFAULT_GOLD_COLUMN
    gold = (_column(records, cols, path, gold_name, "gold")
            if explicit_gold or gold_name in cols else None)

    blank_text = [i for i, t in enumerate(texts) if not t]
    blank_label = [i for i, l in enumerate(given) if not l and texts[i]]
    if blank_label:
        raise UserError(f"{path}: row {blank_label[0]} has a text but no label in column "
                        f"{label_column!r} ({len(blank_label)} such rows); label or remove them")
    keep = np.array([i for i, t in enumerate(texts) if t], dtype=np.int64)
    if blank_text:
        log.warning("%s: dropped %d rows with a blank text (rows %s%s)", path, len(blank_text),
                    ", ".join(map(str, blank_text[:10])), ", ..." if len(blank_text) > 10 else "")
    if len(keep) == 0:
        raise UserError(f"{path}: every text in column {text_column!r} is blank")
    counts = Counter(given[i] for i in keep)
    if len(counts) < 2:
        raise UserError(f"{path}: only one class ({next(iter(counts))!r}) in column {label_column!r}; "
                        f"DyGen needs at least two")
    once = sorted((c for c, n in counts.items() if n == 1), key=label_sort_key)
    if once:
        row = next(int(i) for i in keep if given[i] == once[0])
        raise UserError(f"{path}: label {once[0]!r} appears only once (row {row}); every class needs at "
                        f"least two training samples - fix or remove it ({len(once)} such labels)")
    classes = sorted(counts, key=label_sort_key)
    index = {c: i for i, c in enumerate(classes)}
    noisy = np.array([index[given[i]] for i in keep], dtype=np.int64)
    clean = _gold_ids(gold, keep, index, path, label_column) if gold is not None else None
    test_texts, test_labels = _test_split(fmt, test_file, text_column, label_column, gold_name, index)
    return RawDataset([texts[i] for i in keep], clean, test_texts, test_labels, classes,
                      noisy_train_labels=noisy, train_row_ids=keep)


def _gold_ids(gold: List[str], keep: np.ndarray, index: dict, path: Path, label_column: str) -> np.ndarray:
    """(N_kept,) class ids of the gold column, -1 where a row has none."""
    clean = np.full(len(keep), -1, dtype=np.int64)
    for j, i in enumerate(keep):
        g = gold[i]
        if not g:
            continue
        if g not in index:
            raise UserError(f"{path}: row {i} has gold label {g!r}, which is never a given label "
                            f"in column {label_column!r}")
        clean[j] = index[g]
    if (clean < 0).any():
        log.warning("%s: %d rows have no gold label; diagnostics use the others", path, int((clean < 0).sum()))
    return clean


def _test_split(fmt: str, test_file: Optional[str], text_column: str, label_column: str, gold_name: str,
                index: dict):
    """(texts, class ids) of the optional test file: its gold column if it has one, else its label
    column; only to score."""
    if not test_file:
        return [], None
    tpath = Path(test_file)
    trec, tcols = _read_records(fmt, tpath)
    if not trec:
        raise UserError(f"{tpath}: no data rows")
    ttexts = _column(trec, tcols, tpath, text_column, "text")
    tcol = gold_name if gold_name in tcols else label_column
    tlabels = _column(trec, tcols, tpath, tcol, "label")
    tkeep = [i for i, t in enumerate(ttexts) if t]
    if len(tkeep) < len(ttexts):
        log.warning("%s: dropped %d rows with a blank text", tpath, len(ttexts) - len(tkeep))
    if not tkeep:
        raise UserError(f"{tpath}: every text in column {text_column!r} is blank")
    unknown = sorted({tlabels[i] for i in tkeep} - set(index), key=label_sort_key)
    if unknown:
        raise UserError(f"{tpath}: test labels never given in training: {unknown[:5]}")
    return [ttexts[i] for i in tkeep], np.array([index[tlabels[i]] for i in tkeep], dtype=np.int64)
