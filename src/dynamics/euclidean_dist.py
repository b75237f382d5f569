"""Dynamics: distances of samples to noisy-label class centroids, scores, flags.

Centroids use only the training samples and their NOISY labels (never validation or test,
never clean labels): the authors' release leaked gold test and clean validation labels here.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch


def class_centroids(emb: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, D) mean embedding per label; NaN rows for classes with no sample."""
    emb = np.asarray(emb, dtype=np.float64)
    sums = np.zeros((num_classes, emb.shape[1]))
    np.add.at(sums, labels, emb)
    counts = np.bincount(labels, minlength=num_classes).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None]


def centroid_distances(emb: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """(N, C) Euclidean distances (cdist, no N x C x D intermediate); inf for empty classes."""
    present = ~np.isnan(centroids).any(1)
    out = np.full((len(emb), len(centroids)), np.inf)
    d = torch.cdist(torch.as_tensor(np.asarray(emb, dtype=np.float64)),
                    torch.as_tensor(centroids[present]))
    out[:, present] = d.numpy()
    return out


def own_label_distances(z: np.ndarray, labels: np.ndarray, num_classes: int,
                        fit: Optional[np.ndarray] = None) -> np.ndarray:
    """z: (E, N, D) one model's trajectory of N train+val samples -> (E, N) distance of each
    sample to the centroid of its own noisy label, per epoch. Centroids are the means of the
    `fit` rows only (default: all N); every row is measured against them."""
    E, N = z.shape[0], z.shape[1]
    fit = np.arange(N) if fit is None else np.asarray(fit)
    out = np.zeros((E, N))
    for e in range(E):
        emb = np.asarray(z[e], dtype=np.float32)
        dist = centroid_distances(emb, class_centroids(emb[fit], labels[fit], num_classes))
        out[e] = dist[np.arange(N), labels]
    return out


def dynamics_score(own_dist: np.ndarray) -> np.ndarray:
    """(E, N) -> (N,) mean over epochs + std over epochs (population std). A label whose class
    has no fitted sample has no centroid (infinite distance): ranked with the most suspect."""
    with np.errstate(invalid="ignore"):
        s = own_dist.mean(0) + own_dist.std(0)
    bad = ~np.isfinite(s)
    if bad.any():
        s[bad] = s[~bad].max() if (~bad).any() else 0.0
    return s


def flag_top(scores: np.ndarray, n_flag: int) -> np.ndarray:
    """Boolean mask of the n_flag highest scores (ties broken by index, stably)."""
    mask = np.zeros(len(scores), dtype=bool)
    if n_flag > 0:
        order = np.argsort(-np.asarray(scores), kind="stable")
        mask[order[:n_flag]] = True
    return mask


def threshold_flags(scores: np.ndarray, fit: np.ndarray, n_flag: int) -> np.ndarray:
    """(N,) flags: the n_flag highest scores among the `fit` rows, and every other row whose
    score reaches the lowest of those (the threshold chosen on the fit rows, applied to the rest)."""
    fit = np.asarray(fit)
    mask = np.zeros(len(scores), dtype=bool)
    if n_flag <= 0:
        return mask
    top = flag_top(scores[fit], n_flag)
    mask[fit[top]] = True
    rest = np.setdiff1d(np.arange(len(scores)), fit)
    mask[rest] = scores[rest] >= scores[fit][top].min()
    return mask
