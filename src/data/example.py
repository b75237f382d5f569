"""An example noisy file from real texts, for scripts/clean_labels.sh and the tests.

Takes a stratified sample of TREC-6 training questions (string class names such as
"HUM" or "LOC"), flips a share of the labels symmetrically and writes a CSV/JSON-lines file
with columns text, label (the noisy one) and gold (the clean one).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from src.data import noise as noise_lib
from src.data.datasets import load_dataset
from src.data.splits import stratified_subset


def write_noisy_example(path, *, n: int = 300, noise_ratio: float = 0.3, seed: int = 0,
                        fmt: str = "csv", n_test: int = 0, test_path=None) -> float:
    """Write `n` noisy training rows (and `n_test` clean test rows to `test_path`); return the
    realised noise rate."""
    raw = load_dataset("trec", Path("."))
    names = raw.class_names
    idx = stratified_subset(raw.train_labels, n, seed)
    gold = raw.train_labels[idx]
    noisy = noise_lib.symmetric(gold, noise_ratio, len(names), np.random.default_rng(seed))
    rows = [{"text": raw.train_texts[i], "label": names[y], "gold": names[g]}
            for i, y, g in zip(idx, noisy, gold)]
    _write(Path(path), rows, fmt)
    if n_test and test_path is not None:
        tidx = stratified_subset(raw.test_labels, n_test, seed)
        _write(Path(test_path), [{"text": raw.test_texts[i], "label": names[raw.test_labels[i]]} for i in tidx], fmt)
    return float((noisy != gold).mean())


def _write(path: Path, rows, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        if fmt == "csv":
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        else:
            for r in rows:
                fh.write(json.dumps(r) + "\n")
