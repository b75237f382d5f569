"""cleanlab as a correction baseline beside DyGen's: flag label issues on out-of-sample
probabilities (find_label_issues) and replace each flagged label by the predicted class.
Pure function on arrays."""
from __future__ import annotations

from typing import Tuple

import numpy as np


def cleanlab_relabel(labels, pred_probs, *, filter_by: str = "prune_by_noise_rate",
                     n_jobs: int = 1) -> Tuple[np.ndarray, np.ndarray]:
    """(flags (N,) bool, relabeled (N,) int64).

    labels: (N,) given labels; pred_probs: (N, C) probabilities of models NOT trained on these
    samples (cleanlab's premise: in-sample probabilities reproduce the labels, noisy ones too).
    A flagged row whose predicted class equals its label (possible under some filter_by) keeps it.
    """
    from cleanlab.filter import find_label_issues
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(pred_probs, dtype=np.float64)
    if p.ndim != 2 or len(p) != len(y):
        raise ValueError(f"pred_probs must be (N, C) with N = {len(y)} (got shape {p.shape})")
    flags = np.asarray(find_label_issues(y, p, filter_by=filter_by, n_jobs=n_jobs), dtype=bool)
    relabeled = np.where(flags, p.argmax(1), y).astype(np.int64)
    return flags, relabeled


def out_of_sample_probs(x: np.ndarray, labels: np.ndarray, fit: np.ndarray, other: np.ndarray, *,
                        num_classes: int, seed: int = 0) -> np.ndarray:
    """(len(fit) + len(other), C) probabilities no row was fitted with: the `fit` rows by 5-fold
    cross-validated logistic regression among themselves, the `other` rows (validation) by one
    fitted on all `fit` rows. Rows in the order [fit | other]."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from src.baselines.cleanlab_detect import cv_pred_probs
    x = np.asarray(x, dtype=np.float64)
    p_fit = cv_pred_probs(x[fit], labels[fit], num_classes, seed=seed)
    p_other = np.full((len(other), num_classes), 1e-6)
    if len(other):
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x[fit], labels[fit])
        p_other[:, clf.classes_] += clf.predict_proba(x[other])
        p_other /= p_other.sum(1, keepdims=True)
    return np.concatenate([p_fit, p_other])
