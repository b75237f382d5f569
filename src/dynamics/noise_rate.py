"""How many labels are wrong: an estimate from held-out predictions, with a bootstrap CI.

Input: the noisy labels of samples the models were NOT trained on (the validation split) and
the stage-1 ensemble's probabilities there. Two things make the obvious estimates biased:
- the classifier's own errors look like label noise: the disagreement rate, and cleanlab's
  confident joint (which counts much the same disagreements, calibrated), read a classifier
  with 10% error on a clean file as 5-10% noise;
- a classifier trained on noisy labels is neither calibrated to the true classes nor to the
  noisy ones (after a few epochs it is under-confident), so estimates read off the probability
  values (the anchor-point transition matrix, Patrini et al. 2017) are off too.

The estimate kept ("anchor_agreement"): for each predicted class k, the `anchor_frac` most
confident held-out samples predicted k are taken as truly k (a classifier's most confident
predictions are nearly all right, whatever its overall accuracy), and the share of them whose
noisy label is not k estimates P(noisy != k | true = k), the row-k flip rate. It counts noisy
labels, never probability values, so it needs no calibration; on a held-out split the noise
given the true class is independent of the classifier's confidence (exactly so for class-
conditional noise), so the anchors' flip rate is the class's. The rate is the flip rates
weighted by the predicted class shares (an estimate of the true class prior: imbalanced
classes weigh what they hold). Bias left: the classifier's errors among its anchors (small).
Clipped to [0, MAX_ESTIMATED_RATE]: beyond one half the labels carry no signal to clean.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from src.dynamics.flag_count import MAX_ESTIMATED_RATE, mixture_noise_rate

# Share of each predicted class taken as its anchors: fewer anchors, fewer classifier errors
# among them but more sampling noise. Stage-1 ensemble on trec (2000 samples, 3 epochs; validation
# split, true rate 0 / 0.2 / 0.4): 0.3 -> 0.016 / 0.179 / 0.406, 0.5 -> 0.020 / 0.214 / 0.445,
# 0.8 -> 0.068 / 0.261 / 0.439 (cleanlab's confident joint: 0.060 / 0.302 / 0.445).
ANCHOR_FRAC = 0.5
MIN_HELDOUT = 100          # fewer held-out samples: fall back to the mixture on the dynamics scores


@dataclass(frozen=True)
class NoiseRateEstimate:
    rate: float                       # estimated fraction of wrong labels, in [0, MAX_ESTIMATED_RATE]
    ci_low: Optional[float]           # bootstrap percentile interval (None: no interval)
    ci_high: Optional[float]
    method: str
    n: int                            # samples the estimate was made from
    per_class: Optional[Tuple[float, ...]] = None  # P(given label wrong | true class k)

    def to_dict(self) -> dict:
        return {"rate": self.rate, "ci_low": self.ci_low, "ci_high": self.ci_high, "method": self.method,
                "n": self.n, "per_class": list(self.per_class) if self.per_class is not None else None}


def class_flip_rates(noisy_labels: np.ndarray, pred_probs: np.ndarray,
                     anchor_frac: float = ANCHOR_FRAC) -> Tuple[np.ndarray, np.ndarray]:
    """(flip rate per class (C,), predicted class share (C,)). A class nobody predicts gets
    flip rate 0 and share 0."""
    y, p = noisy_labels, pred_probs
    pred = p.argmax(1)
    C = p.shape[1]
    flips, share = np.zeros(C), np.zeros(C)
    for k in range(C):
        idx = np.flatnonzero(pred == k)
        if len(idx) == 0:
            continue
        m = max(1, int(np.ceil(anchor_frac * len(idx))))
        anchors = idx[np.argsort(-p[idx, k], kind="stable")[:m]]
        flips[k] = np.mean(y[anchors] != k)
        share[k] = len(idx) / len(y)
    return flips, share


def anchor_agreement_rate(noisy_labels: np.ndarray, pred_probs: np.ndarray,
                          anchor_frac: float = ANCHOR_FRAC) -> float:
    flips, share = class_flip_rates(noisy_labels, pred_probs, anchor_frac)
    return float(flips @ share)


def confident_joint_rate(noisy_labels: np.ndarray, pred_probs: np.ndarray) -> float:
    """cleanlab's estimate (1 - trace of the calibrated confident joint), for comparison:
    biased up by the classifier's error rate."""
    from cleanlab.count import estimate_joint
    return float(1.0 - np.trace(estimate_joint(np.asarray(noisy_labels), np.asarray(pred_probs))))


def _clip(v: float) -> float:
    return float(np.clip(v, 0.0, MAX_ESTIMATED_RATE))


def estimate_noise_rate(noisy_labels, pred_probs, *, num_classes: int, seed: int = 0,
                        n_bootstrap: int = 500, level: float = 0.95,
                        anchor_frac: float = ANCHOR_FRAC) -> NoiseRateEstimate:
    """noisy_labels: (N,) labels of held-out samples; pred_probs: (N, num_classes)
    probabilities of models not trained on them. CI: percentile interval of the estimate over
    `n_bootstrap` resamples of the rows (seeded)."""
    y = np.asarray(noisy_labels, dtype=np.int64)
    p = np.asarray(pred_probs, dtype=np.float64)
    if p.shape != (len(y), num_classes):
        raise ValueError(f"pred_probs must be ({len(y)}, {num_classes}) (got {p.shape})")
    if len(y) == 0:
        raise ValueError("no held-out samples")
    flips, share = class_flip_rates(y, p, anchor_frac)
    rng = np.random.default_rng(seed)
    boots = [anchor_agreement_rate(y[i], p[i], anchor_frac)
             for i in (rng.integers(0, len(y), len(y)) for _ in range(n_bootstrap))]
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return NoiseRateEstimate(_clip(flips @ share), _clip(lo), _clip(hi), "anchor_agreement", len(y),
                             tuple(float(f) for f in flips))


def choose_noise_rate(heldout_labels, heldout_probs, dynamics_scores, *, num_classes: int, seed: int = 0,
                      min_heldout: int = MIN_HELDOUT) -> NoiseRateEstimate:
    """The held-out estimate when there are at least `min_heldout` held-out samples, else the
    two-component mixture on the dynamics scores (no interval; `n` = the scores it saw)."""
    if heldout_labels is not None and len(heldout_labels) >= min_heldout:
        return estimate_noise_rate(heldout_labels, heldout_probs, num_classes=num_classes, seed=seed)
    scores = np.asarray(dynamics_scores)
    return NoiseRateEstimate(mixture_noise_rate(scores, seed), None, None, "gaussian_mixture_fallback",
                             int(scores.size))
