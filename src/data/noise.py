"""Synthetic label noise as pure functions of (labels, rng, ...).

Each returns new labels; the realised flip rate is `noisy != labels`.mean().
"""
from __future__ import annotations

import numpy as np
from scipy import stats


def symmetric(labels: np.ndarray, ratio: float, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """SN: with prob r*C/(C-1) redraw uniformly from all C classes -> expected flip rate r."""
    labels = np.asarray(labels)
    p_redraw = ratio * num_classes / (num_classes - 1)
    if p_redraw > 1.0:
        raise ValueError(f"symmetric noise rate {ratio} is unreachable with {num_classes} classes "
                         f"(at most {(num_classes - 1) / num_classes:.3f})")
    redraw = rng.random(len(labels)) < p_redraw
    new = rng.integers(0, num_classes, size=len(labels))
    return np.where(redraw, new, labels).astype(np.int64)


def asymmetric(labels: np.ndarray, ratio: float, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """ASN: with prob r, y -> (y + 1) mod C."""
    labels = np.asarray(labels)
    flip = rng.random(len(labels)) < ratio
    return np.where(flip, (labels + 1) % num_classes, labels).astype(np.int64)


def instance_dependent(labels: np.ndarray, ratio: float, num_classes: int, features: np.ndarray,
                       rng: np.random.Generator, sd: float = 0.1) -> np.ndarray:
    """IDN (Xia et al. 2020): per-sample flip rate q ~ TruncNormal(r, sd, [0,1]);
    p = q * softmax(f(x) W[y]) over the other classes, p[y] = 1 - q."""
    labels = np.asarray(labels)
    n, d = features.shape
    if ratio == 0:
        return labels.astype(np.int64).copy()
    a, b = (0 - ratio) / sd, (1 - ratio) / sd
    q = stats.truncnorm.rvs(a, b, loc=ratio, scale=sd, size=n, random_state=rng)
    w = rng.standard_normal((num_classes, d, num_classes))
    # Standardise features so the scores are O(1) whatever the encoder's scale.
    f = (features - features.mean(0)) / (features.std(0) + 1e-8)
    scores = np.einsum("nd,ndc->nc", f, w[labels])          # (N, C)
    scores[np.arange(n), labels] = -np.inf
    scores -= scores.max(1, keepdims=True)
    soft = np.exp(scores)
    soft /= soft.sum(1, keepdims=True)
    p = q[:, None] * soft
    p[np.arange(n), labels] += 1 - q
    u = rng.random(n)[:, None]
    new = (u > np.cumsum(p, axis=1)).sum(1)
    return np.minimum(new, num_classes - 1).astype(np.int64)


def corrupt(labels: np.ndarray, noise_type: str, ratio: float, num_classes: int,
            rng: np.random.Generator, features: np.ndarray | None = None) -> np.ndarray:
    if noise_type == "SN":
        return symmetric(labels, ratio, num_classes, rng)
    if noise_type == "ASN":
        return asymmetric(labels, ratio, num_classes, rng)
    if noise_type == "IDN":
        if features is None:
            raise ValueError("IDN needs instance features")
        return instance_dependent(labels, ratio, num_classes, features, rng)
    raise ValueError(f"unknown noise type {noise_type}")
