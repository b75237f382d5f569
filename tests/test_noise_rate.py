"""Noise-rate estimate and safety valve on held-out probabilities whose answer is known.

The simulated classifier: right with a known accuracy about the TRUE class, its errors less
confident than its right answers (as a real classifier's); `lean` = 1 makes its probabilities
those of a model fit to the noisy labels (its belief pushed through the noise matrix T).
"""
from __future__ import annotations

import numpy as np
import pytest

from src.dynamics.flag_count import mixture_noise_rate
from src.dynamics.noise_rate import (NoiseRateEstimate, anchor_agreement_rate, choose_noise_rate,
                                     class_flip_rates, confident_joint_rate, estimate_noise_rate)
from src.dynamics.safety_valve import final_labels, valve_closed

C = 6
BALANCED = np.full(C, 1 / C)
IMBALANCED = np.array([0.4, 0.25, 0.15, 0.1, 0.06, 0.04])


def symmetric_T(r, c=C):
    T = np.full((c, c), r / (c - 1))
    np.fill_diagonal(T, 1 - r)
    return T


def asymmetric_T(r, c=C):
    """y -> y+1 with probability r (the hard case for a classifier trained on it)."""
    return (1 - r) * np.eye(c) + r * np.roll(np.eye(c), 1, axis=1)


def heldout(T, prior=BALANCED, n=2000, acc=0.9, lean=0.0, seed=0):
    """(true, noisy, probs) of n held-out samples."""
    rng = np.random.default_rng(seed)
    c = len(prior)
    true = rng.choice(c, n, p=prior)
    noisy = (rng.random((n, 1)) > np.cumsum(T[true], 1)).sum(1)
    right = rng.random(n) < acc
    belief = np.where(right, true, (true + rng.integers(1, c, n)) % c)
    margin = np.where(right, rng.normal(4.0, 1.0, n), rng.normal(1.5, 1.0, n))
    logits = rng.normal(0, 0.5, (n, c))
    logits[np.arange(n), belief] += margin
    q = np.exp(logits - logits.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    return true, noisy, (1 - lean) * q + lean * q @ T


def test_flip_rates_by_hand():
    # predicted class 0: p0 = .9 .8 .7 .6 -> anchors (top half) the first two, labels 0 and 1
    # predicted class 1: p1 = .95 .55 -> anchor the first, label 1
    p = np.array([[.9, .1], [.8, .2], [.7, .3], [.6, .4], [.05, .95], [.45, .55]])
    y = np.array([0, 1, 1, 1, 1, 0])
    flips, share = class_flip_rates(y, p)
    assert flips.tolist() == [0.5, 0.0] and share.tolist() == pytest.approx([4 / 6, 2 / 6])
    assert anchor_agreement_rate(y, p) == pytest.approx(0.5 * 4 / 6)
    # every sample as an anchor: the plain disagreement rate of argmax vs label
    assert anchor_agreement_rate(y, p, anchor_frac=1.0) == pytest.approx(np.mean(p.argmax(1) != y))


@pytest.mark.parametrize("make_T", [symmetric_T, asymmetric_T])
@pytest.mark.parametrize("prior", [BALANCED, IMBALANCED], ids=["balanced", "imbalanced"])
@pytest.mark.parametrize("lean", [0.0, 1.0], ids=["clean-like", "trained-on-noise"])
def test_estimate_within_005_of_the_known_rate(make_T, prior, lean):
    for r in (0.1, 0.2, 0.3, 0.4):
        true, noisy, p = heldout(make_T(r), prior, acc=0.9, lean=lean, seed=int(r * 10))
        est = estimate_noise_rate(noisy, p, num_classes=C, seed=0, n_bootstrap=50)
        realised = np.mean(noisy != true)
        assert abs(est.rate - realised) <= 0.05, (r, est.rate, realised)


def test_no_noise_reads_near_zero_despite_classifier_errors():
    true, noisy, p = heldout(symmetric_T(0.0), acc=0.85)
    assert (noisy == true).all()
    est = estimate_noise_rate(noisy, p, num_classes=C, seed=0)
    assert est.rate <= 0.05 and est.ci_high <= 0.05
    assert np.mean(p.argmax(1) != noisy) > 0.1        # the naive estimate: the classifier's errors
    assert 0 < confident_joint_rate(noisy, p) < 0.1   # cleanlab counts the confident ones


def test_forty_percent_and_the_cap():
    true, noisy, p = heldout(symmetric_T(0.4), lean=1.0, seed=4)
    assert estimate_noise_rate(noisy, p, num_classes=C).rate == pytest.approx(np.mean(noisy != true), abs=0.05)
    _, noisy, p = heldout(symmetric_T(0.7), seed=5)                # most labels wrong
    est = estimate_noise_rate(noisy, p, num_classes=C)
    assert est.rate == 0.5 and est.ci_high == 0.5


def test_interval_covers_the_truth_and_is_seeded():
    true, noisy, p = heldout(symmetric_T(0.2), n=400, seed=7)     # the validation split's size
    est = estimate_noise_rate(noisy, p, num_classes=C, seed=3)
    realised = np.mean(noisy != true)
    assert est.ci_low <= realised <= est.ci_high and est.ci_low <= est.rate <= est.ci_high
    assert 0.02 < est.ci_high - est.ci_low < 0.2
    assert est == estimate_noise_rate(noisy, p, num_classes=C, seed=3)
    assert est.method == "anchor_agreement" and est.n == 400 and len(est.per_class) == C
    assert set(est.to_dict()) == {"rate", "ci_low", "ci_high", "method", "n", "per_class"}


def test_per_class_rates_follow_the_noise_matrix():
    T = np.eye(C)
    T[2] = [0, 0, 0.6, 0.4, 0, 0]                  # only class 2 is corrupted, at 40%
    true, noisy, p = heldout(T, n=3000, acc=0.95, seed=8)
    est = estimate_noise_rate(noisy, p, num_classes=C, n_bootstrap=20)
    assert est.per_class[2] == pytest.approx(0.4, abs=0.06)
    assert max(np.delete(est.per_class, 2)) <= 0.03


def test_shape_is_checked():
    with pytest.raises(ValueError, match="pred_probs"):
        estimate_noise_rate(np.zeros(5, int), np.full((5, 3), 1 / 3), num_classes=4)


def test_choice_falls_back_to_the_mixture_without_enough_heldout_samples():
    _, noisy, p = heldout(symmetric_T(0.2), n=150)
    scores = np.r_[np.zeros(80), np.ones(20)] + np.random.default_rng(0).normal(0, 0.05, 100)
    held = choose_noise_rate(noisy, p, scores, num_classes=C)
    assert held.method == "anchor_agreement" and held.n == 150
    few = choose_noise_rate(noisy[:50], p[:50], scores, num_classes=C)
    assert few == NoiseRateEstimate(mixture_noise_rate(scores, 0), None, None, "gaussian_mixture_fallback", 100)
    assert few.rate == pytest.approx(0.2)
    assert choose_noise_rate(None, None, scores, num_classes=C).method == "gaussian_mixture_fallback"


# ---- safety valve -------------------------------------------------------------------------

def test_valve_by_hand():
    given = np.array([0, 0, 1, 2])
    probs = np.array([[.02, .95, .03], [.3, .6, .1], [.05, .1, .85], [.05, .92, .03]])
    votes = np.array([[1, 1, 2, 1], [1, 1, 2, 0]])   # row 2: agreed, not sure; row 3: disagreed
    closed = final_labels(given, probs, votes, rate=0.01)
    assert closed.guarded and closed.labels.tolist() == [1, 0, 1, 2]     # only row 0 is sure enough
    assert closed.changed.tolist() == [True, False, False, False] and closed.n_changed == 1
    assert closed.confidence.tolist() == pytest.approx([.95, .3, .1, .03])
    opened = final_labels(given, probs, votes, rate=0.2, ci_low=0.12)
    assert not opened.guarded and opened.labels.tolist() == [1, 1, 2, 1] and opened.n_changed == 4
    # the interval's lower bound decides when there is one
    assert valve_closed(0.08, 0.03) and not valve_closed(0.08, None) and valve_closed(0.04, None)


def test_clean_file_is_left_almost_untouched():
    true, noisy, p = heldout(symmetric_T(0.0), acc=0.85, seed=11)
    est = estimate_noise_rate(noisy, p, num_classes=C, seed=0)
    rng = np.random.default_rng(1)
    votes = np.stack([p.argmax(1), np.where(rng.random(len(p)) < 0.9, p.argmax(1), rng.integers(0, C, len(p)))])
    out = final_labels(noisy, p, votes, rate=est.rate, ci_low=est.ci_low)
    assert out.guarded and np.mean(p.argmax(1) != noisy) > 0.1     # the argmax alone would break >10%
    assert out.n_changed <= 0.01 * len(noisy) and (out.confidence[out.changed] >= 0.9).all()
