"""Training batches with little padding: length-bucketed, still shuffled (pure functions).

A batch is padded to its longest sequence, so a random batch of short and long texts
computes mostly on padding. `bucketed_batches` shuffles the samples, cuts the shuffle into
chunks of `chunk_batches` batches, sorts each chunk by length, cuts it into batches and
shuffles the batch order: every sample once per epoch, batches of similar lengths, their
order and composition random. All randomness comes from the one seeded torch.Generator,
so an epoch's batches are a function of the generator's state (resume restores it).
"""
from __future__ import annotations

from typing import List

import numpy as np
import torch


def random_batches(n: int, batch_size: int, gen: torch.Generator) -> List[np.ndarray]:
    """Plain shuffled batches (one randperm of n)."""
    perm = torch.randperm(n, generator=gen).numpy()
    return [perm[s:s + batch_size] for s in range(0, n, batch_size)]


def bucketed_batches(lengths: np.ndarray, batch_size: int, gen: torch.Generator,
                     chunk_batches: int = 50) -> List[np.ndarray]:
    """Shuffled, length-bucketed batches of indices into `lengths`.

    ceil(n / batch_size) batches, the same count as `random_batches`; at most one (the tail
    of the last chunk) is smaller than batch_size. chunk_batches <= 0 gives `random_batches`.
    """
    lengths = np.asarray(lengths)
    n = len(lengths)
    if chunk_batches <= 0:
        return random_batches(n, batch_size, gen)
    perm = torch.randperm(n, generator=gen).numpy()
    chunk = batch_size * chunk_batches
    batches = []
    for s in range(0, n, chunk):
        part = perm[s:s + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[b:b + batch_size] for b in range(0, len(part), batch_size))
    order = torch.randperm(len(batches), generator=gen).numpy()
    return [batches[i] for i in order]


def shard(idx: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """This rank's part of one global batch (contiguous, sizes differ by at most one)."""
    return np.array_split(np.asarray(idx), world_size)[rank]


def padding_waste(lengths: np.ndarray, batches: List[np.ndarray]) -> float:
    """Fraction of the computed (padded) tokens that are padding."""
    lengths = np.asarray(lengths)
    real = sum(int(lengths[b].sum()) for b in batches)
    padded = sum(len(b) * int(lengths[b].max()) for b in batches if len(b))
    return 1.0 - real / max(1, padded)
