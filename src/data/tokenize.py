"""Tokenisation without padding (batches pad to their own longest sequence)."""
from __future__ import annotations

from typing import List, Sequence

import numpy as np
import torch


class Tokens:
    """Ragged token ids stored flat: ids[offsets[i]:offsets[i+1]] is text i."""

    def __init__(self, ids: np.ndarray, offsets: np.ndarray):
        self.ids, self.offsets = ids, offsets

    def __len__(self):
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def subset(self, idx: np.ndarray) -> "Tokens":
        seqs = [self.ids[self.offsets[i]:self.offsets[i + 1]] for i in idx]
        return Tokens.from_lists(seqs)

    @staticmethod
    def from_lists(seqs: Sequence[Sequence[int]]) -> "Tokens":
        lens = np.array([len(s) for s in seqs], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        ids = np.concatenate([np.asarray(s, dtype=np.int32) for s in seqs]) if seqs else np.zeros(0, np.int32)
        return Tokens(ids, offsets)

    def batch(self, idx: Sequence[int], pad_id: int):
        """(input_ids, attention_mask) padded to the longest sequence in this batch."""
        lens = self.offsets[np.asarray(idx) + 1] - self.offsets[np.asarray(idx)]
        width = int(lens.max())
        input_ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for r, (i, n) in enumerate(zip(idx, lens)):
            input_ids[r, :n] = torch.from_numpy(self.ids[self.offsets[i]:self.offsets[i] + n].astype(np.int64))
            mask[r, :n] = 1
        return input_ids, mask


def tokenize(texts: List[str], tokenizer, max_len: int, chunk: int = 2048) -> Tokens:
    seqs = []
    for start in range(0, len(texts), chunk):
        # Long documents: the tokenizer only needs the start of the text.
        part = [t[: max_len * 12] for t in texts[start:start + chunk]]
        enc = tokenizer(part, truncation=True, max_length=max_len, padding=False)
        seqs.extend(enc["input_ids"])
    return Tokens.from_lists(seqs)
