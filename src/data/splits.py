"""Seeded subsets and the train/validation split (pure functions of labels and a seed)."""
from __future__ import annotations

import numpy as np


def stratified_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Sorted indices of a class-stratified subset of size min(n, len(labels)).

    Each class keeps round(n * share) samples (at least one where the class has any),
    then the total is trimmed/filled at random to exactly n.
    """
    labels = np.asarray(labels)
    if n >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    quota = np.maximum(1, np.round(counts * n / len(labels)).astype(int))
    quota = np.minimum(quota, counts)
    chosen = []
    for c, q in zip(classes, quota):
        idx = np.flatnonzero(labels == c)
        chosen.append(rng.choice(idx, size=q, replace=False))
    chosen = np.concatenate(chosen)
    if len(chosen) > n:  # drop at random, never a class's last sample
        keep_first = {}
        for i in chosen:
            keep_first.setdefault(labels[i], i)
        protected = set(keep_first.values())
        droppable = np.array([i for i in chosen if i not in protected])
        if len(droppable) < len(chosen) - n:  # fewer samples than classes: some classes must go
            chosen = rng.choice(chosen, size=n, replace=False)
        else:
            drop = rng.choice(droppable, size=len(chosen) - n, replace=False)
            chosen = np.setdiff1d(chosen, drop)
    elif len(chosen) < n:
        rest = np.setdiff1d(np.arange(len(labels)), chosen)
        chosen = np.concatenate([chosen, rng.choice(rest, size=n - len(chosen), replace=False)])
    return np.sort(chosen)


def train_val_split(n: int, seed: int, val_fraction: float = 0.2):
    """Shuffle with `seed`; first 80% train, last 20% validation (SPEC section 1)."""
    perm = np.random.default_rng(seed).permutation(n)
    n_train = int(round(n * (1.0 - val_fraction)))
    return perm[:n_train], perm[n_train:]
