"""Safety valve for a user without gold labels: on a file that looks clean, keep the given
labels except where every model agrees, with high confidence, on another one.

Why: on a clean file every change the correction makes is a classifier error written over a
correct label, so the corrected argmax may only win where the evidence is overwhelming.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

NEAR_ZERO_RATE = 0.05     # a noise rate this low reads as "clean file"
MIN_CONFIDENCE = 0.9      # corrected probability a change needs while the valve is closed


@dataclass(frozen=True)
class FinalLabels:
    labels: np.ndarray       # (N,) the labels handed back
    changed: np.ndarray      # (N,) bool: labels != given
    confidence: np.ndarray   # (N,) corrected probability of each row's final label
    guarded: bool            # True: the valve was closed (only unanimous confident changes)

    @property
    def n_changed(self) -> int:
        return int(self.changed.sum())


def valve_closed(rate: float, ci_low: Optional[float], near_zero: float = NEAR_ZERO_RATE) -> bool:
    """Closed when a near-clean file cannot be ruled out: the interval's lower bound (the point
    estimate when there is no interval) is below `near_zero`. The lower bound, not the upper,
    because the two mistakes cost differently: a closed valve on a noisy file still lets every
    unanimous confident correction through, while an open valve on a clean file lets every
    classifier error overwrite a correct label."""
    return (rate if ci_low is None else ci_low) < near_zero


def final_labels(given, corrected_probs, model_argmax, *, rate: float, ci_low: Optional[float] = None,
                 near_zero: float = NEAR_ZERO_RATE, min_confidence: float = MIN_CONFIDENCE) -> FinalLabels:
    """given: (N,) labels; corrected_probs: (N, C) the correction's distribution (e.g. the mean
    over models); model_argmax: (M, N) each model's corrected label; rate, ci_low: the noise-rate
    estimate. Valve open: the argmax of corrected_probs. Closed: a label changes only where all
    M models name the same other label and corrected_probs gives it >= min_confidence."""
    y = np.asarray(given, dtype=np.int64)
    p = np.asarray(corrected_probs, dtype=np.float64)
    votes = np.atleast_2d(np.asarray(model_argmax, dtype=np.int64))
    if p.shape[0] != len(y) or votes.shape[1] != len(y):
        raise ValueError(f"shapes disagree: given {y.shape}, corrected_probs {p.shape}, model_argmax {votes.shape}")
    rows = np.arange(len(y))
    guarded = valve_closed(rate, ci_low, near_zero)
    if guarded:
        agreed = votes[0]
        sure = (votes == agreed).all(0) & (agreed != y) & (p[rows, agreed] >= min_confidence)
        labels = np.where(sure, agreed, y)
    else:
        labels = p.argmax(1)
    return FinalLabels(labels, labels != y, p[rows, labels], guarded)
