"""Throughput counters of one stage-1 run (what scripts/bench.py turns into tokens/s and MFU)."""
from __future__ import annotations

from typing import Iterable, Optional

import numpy as np


def new_perf() -> dict:
    """Counters of one stage-1 run: seconds, sequences, real (non-pad) tokens, padded tokens
    (batch x width, what the model computes on) and the sum of squared real lengths (attention
    FLOPs), for the training steps (per model) and the embedding passes (all models)."""
    return {f"{part}_{k}": 0 for part in ("train", "embed") for k in ("s", "seqs", "tokens", "padded", "len_sq")}


def count_batch(perf: Optional[dict], part: str, lens: np.ndarray, width: int) -> None:
    if perf is not None:
        lens = np.asarray(lens, dtype=np.int64)
        perf[f"{part}_seqs"] += len(lens)
        perf[f"{part}_tokens"] += int(lens.sum())
        perf[f"{part}_padded"] += len(lens) * int(width)
        perf[f"{part}_len_sq"] += int((lens ** 2).sum())


def add_counts(perf: Optional[dict], parts: Iterable[dict], part: str) -> None:
    """Adds the counts of `part` (not its seconds) of every counter in `parts` to `perf`."""
    if perf is not None:
        for local in parts:
            for k in perf:
                if k.startswith(f"{part}_") and k != f"{part}_s":
                    perf[k] += local[k]
