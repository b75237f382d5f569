"""What every dataset loader returns, and the two text helpers the loaders share.

Its own module so that the built-in loaders (src/data/datasets.py) and the user's own files
(src/data/custom.py) both build on it without importing each other.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from src.errors import UserError


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


def decode_utf8(raw: bytes, path) -> str:
    """Strict UTF-8 (a BOM is dropped); a bad byte -> UserError naming its line."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise UserError(f"{path}: not UTF-8 text (byte 0x{raw[e.start]:02x} at line {line}); "
                        f"re-save the file as UTF-8") from None


def label_sort_key(name: str):
    """Numeric labels sort as numbers ("2" < "10"), anything else as text; numbers first."""
    try:
        return (0, float(name), "")
    except ValueError:
        return (1, 0.0, name)
