"""Label-error detection with cleanlab, the field's standard tool, as a yardstick for
DyGen's dynamics score.

cleanlab needs out-of-sample predicted probabilities: here K-fold cross-validated
logistic regression on frozen features (the pretrained encoder's mean-pooled embeddings),
trained on the NOISY labels only. Pure functions on arrays; keyword-only options.
"""
from __future__ import annotations

import logging
import warnings
from typing import Dict, Optional

import numpy as np

from src.dynamics.euclidean_dist import flag_top
from src.model.evaluate import detection_metrics

log = logging.getLogger("dygen")


def cv_pred_probs(features: np.ndarray, labels: np.ndarray, num_classes: int, *, n_folds: int = 5,
                  seed: int = 0, C: float = 1.0) -> np.ndarray:
    """(N, num_classes) out-of-sample probabilities: each sample scored by a logistic regression
    fit on the other folds (standardised features, stratified folds). A class missing from a
    fold's training part gets a tiny probability; rows sum to 1."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    out = np.zeros((len(y), num_classes))
    n_folds = min(n_folds, int(np.bincount(y).max()))   # StratifiedKFold needs a class this large
    if n_folds < 2 or len(np.unique(y)) < 2:             # nothing to hold out: no information
        return np.full((len(y), num_classes), 1.0 / num_classes)
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # "least populated class has fewer members than n_splits"
        warnings.simplefilter("ignore", UserWarning)
        splits = list(folds.split(x, y))
    for fit_idx, held_idx in splits:
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
        clf.fit(x[fit_idx], y[fit_idx])
        out[np.ix_(held_idx, clf.classes_)] = clf.predict_proba(x[held_idx])
    out = out + 1e-6
    return out / out.sum(1, keepdims=True)


def cleanlab_scores(labels: np.ndarray, pred_probs: np.ndarray) -> Dict[str, np.ndarray]:
    """cleanlab's verdicts: `issues` (find_label_issues, prune_by_noise_rate, its own count of
    issues) and `noise_score` = 1 - label-quality score (self-confidence): higher = more suspect."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores
    labels = np.asarray(labels)
    issues = find_label_issues(labels, pred_probs, filter_by="prune_by_noise_rate")
    quality = get_label_quality_scores(labels, pred_probs, method="self_confidence")
    return {"issues": np.asarray(issues, dtype=bool), "noise_score": 1.0 - np.asarray(quality, dtype=np.float64)}


def detection_at_true_count(scores: np.ndarray, is_noisy: np.ndarray) -> Dict[str, Optional[float]]:
    """Precision/recall/F1 of the top-k scores, k = the true number of corrupted labels (so
    P = R = F1), and the AUROC of the scores."""
    is_noisy = np.asarray(is_noisy, dtype=bool)
    return detection_metrics(flag_top(scores, int(is_noisy.sum())), np.asarray(scores), is_noisy)


def cleanlab_detection(features: np.ndarray, noisy: np.ndarray, num_classes: int, *, n_folds: int = 5,
                       seed: int = 0) -> dict:
    """cleanlab's verdicts on the rows given (the training split): out-of-sample probabilities by
    cross-validation on these rows only, then `cleanlab_scores`. No clean label enters."""
    probs = cv_pred_probs(features, noisy, num_classes, n_folds=n_folds, seed=seed)
    return {**cleanlab_scores(noisy, probs), "cv_accuracy_vs_noisy_labels": float((probs.argmax(1) == noisy).mean())}


def compare_detection(dynamics_score: np.ndarray, cleanlab_score: np.ndarray, cleanlab_issues: np.ndarray,
                      *, is_noisy: np.ndarray) -> dict:
    """DyGen's dynamics score against cleanlab's on the same samples (evaluation only)."""
    return {"n_samples": int(len(is_noisy)), "n_corrupted": int(np.sum(is_noisy)),
            "dygen_at_true_count": detection_at_true_count(dynamics_score, is_noisy),
            "cleanlab_at_true_count": detection_at_true_count(cleanlab_score, is_noisy),
            "cleanlab_find_label_issues": {**detection_metrics(cleanlab_issues, cleanlab_score, is_noisy),
                                           "n_flagged": int(np.sum(cleanlab_issues))}}
