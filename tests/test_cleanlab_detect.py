"""cleanlab detection on synthetic data whose answer is known."""
from __future__ import annotations

import numpy as np
import pytest

from src.baselines.cleanlab_detect import (cleanlab_detection, compare_detection, cv_pred_probs,
                                           detection_at_true_count)


def _clusters(n=300, C=3, D=5, rate=0.2, seed=0):
    rng = np.random.default_rng(seed)
    clean = np.arange(n) % C
    x = np.eye(C, D)[clean] * 6 + rng.normal(0, 1, (n, D))
    noisy = clean.copy()
    flip = rng.permutation(n)[: int(rate * n)]
    noisy[flip] = (clean[flip] + 1 + rng.integers(0, C - 1, len(flip))) % C
    return x, clean, noisy, noisy != clean


def test_detection_at_the_true_count():
    is_noisy = np.array([0, 1, 0, 1, 0, 0], bool)
    perfect = detection_at_true_count(is_noisy + np.linspace(0, 0.1, 6), is_noisy)
    assert perfect == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "auroc": 1.0}
    backwards = detection_at_true_count(-is_noisy.astype(float), is_noisy)
    assert backwards["precision"] == 0.0 and backwards["auroc"] == 0.0
    half = detection_at_true_count(np.array([0, 1, 0, 0, 1, 0.0]), is_noisy)  # one of the two top-2 is noisy
    assert half["precision"] == half["recall"] == half["f1"] == 0.5


def test_pred_probs_are_out_of_sample():
    """Pure noise: 100 samples, 60 random features, random labels. A logistic regression fit on
    all of them would reproduce nearly every label; out-of-sample it is at chance."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(100, 60)), rng.integers(0, 2, 100)
    p = cv_pred_probs(x, y, 2, seed=0)
    assert np.allclose(p.sum(1), 1)
    assert (p.argmax(1) == y).mean() < 0.65
    from sklearn.linear_model import LogisticRegression
    assert LogisticRegression(max_iter=2000).fit(x, y).score(x, y) > 0.95   # what in-sample would claim


def test_cleanlab_finds_flipped_labels_in_separated_clusters():
    x, clean, noisy, is_noisy = _clusters()
    # a missing class in a fold's training part must not break the column mapping
    p = cv_pred_probs(x, noisy, 4, seed=0)
    assert p.shape == (300, 4) and p[:, 3].max() < 1e-5
    oracle = is_noisy.astype(float)                       # a detector that knows the answer
    cl = cleanlab_detection(x, noisy, 3, seed=0)          # sees features and noisy labels only
    out = compare_detection(oracle, cl["noise_score"], cl["issues"], is_noisy=is_noisy)
    assert out["n_corrupted"] == 60 and out["dygen_at_true_count"]["precision"] == 1.0
    assert out["cleanlab_at_true_count"]["auroc"] > 0.97 and out["cleanlab_at_true_count"]["precision"] > 0.9
    fli = out["cleanlab_find_label_issues"]
    assert fli["precision"] > 0.9 and fli["recall"] > 0.9 and abs(fli["n_flagged"] - 60) <= 10
    assert cl["cv_accuracy_vs_noisy_labels"] == pytest.approx(0.8, abs=0.03)  # it predicts the clean class
