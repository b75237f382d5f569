"""How many train+validation samples to flag noisy.

Synthetic noise: the known rate (the paper's assumption). Real noise: an explicit
`--flag_ratio`, or an estimate from the dynamics scores themselves: a two-component 1-D
Gaussian mixture, the samples whose posterior favours the higher-mean component counted
as noisy (the clean/noisy split DivideMix fits on per-sample losses).
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

MAX_ESTIMATED_RATE = 0.5  # beyond one half the given labels would carry no signal to clean


def n_from_ratio(n: int, ratio: float) -> int:
    return int(np.floor(ratio * n))


def mixture_noise_rate(scores: np.ndarray, seed: int = 0) -> float:
    """Fraction of samples assigned to the high-score component of a 2-component GMM fit on
    the (standardised) scores, capped at MAX_ESTIMATED_RATE; 0 when the scores are constant
    or too few."""
    from sklearn.mixture import GaussianMixture
    x = np.asarray(scores, dtype=np.float64).ravel()
    if len(x) < 4 or not np.isfinite(x).all() or x.std() < 1e-12:
        return 0.0
    x = ((x - x.mean()) / x.std()).reshape(-1, 1)
    gmm = GaussianMixture(n_components=2, covariance_type="full", reg_covar=1e-4,
                          max_iter=200, n_init=3, random_state=seed).fit(x)
    noisy_comp = int(np.argmax(gmm.means_.ravel()))
    p_noisy = gmm.predict_proba(x)[:, noisy_comp]
    return float(min(MAX_ESTIMATED_RATE, (p_noisy > 0.5).mean()))


def flag_count(scores: np.ndarray, *, noise_type: str, noise_ratio: float,
               flag_ratio: Optional[float] = None, seed: int = 0) -> Tuple[int, str]:
    """(number of samples to flag, how it was chosen).

    scores: (N,) dynamics scores (for several models, their mean).
    """
    n = len(scores)
    if flag_ratio is not None:
        return n_from_ratio(n, flag_ratio), f"--flag_ratio {flag_ratio}"
    if noise_type != "REAL":
        return n_from_ratio(n, noise_ratio), f"--noise_ratio {noise_ratio} (known synthetic rate)"
    rate = mixture_noise_rate(scores, seed)
    return n_from_ratio(n, rate), f"2-component Gaussian mixture on the dynamics scores (rate {rate:.4f})"
