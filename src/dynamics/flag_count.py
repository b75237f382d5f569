"""What fraction of the training samples to flag noisy.

An explicit `--flag_ratio`; synthetic noise: the known rate (the paper's assumption); real noise
(or `--estimate_noise_rate`): the rate estimated on held-out data (`src.dynamics.noise_rate`),
whose fallback is `mixture_noise_rate`: a two-component 1-D Gaussian mixture on the dynamics
scores, the samples whose posterior favours the higher-mean component counted as noisy.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

MAX_ESTIMATED_RATE = 0.5  # beyond one half the given labels would carry no signal to clean


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


def flag_rate(*, noise_type: str, noise_ratio: float, flag_ratio: Optional[float] = None,
              estimate_noise_rate: bool = False, estimate=None) -> Tuple[float, str]:
    """(fraction of the training samples to flag, how it was chosen): an explicit --flag_ratio;
    else the known rate of synthetic noise (the paper's assumption) unless --estimate_noise_rate;
    else `estimate` (a `src.dynamics.noise_rate.NoiseRateEstimate`)."""
    if flag_ratio is not None:
        return float(flag_ratio), f"--flag_ratio {flag_ratio}"
    if noise_type != "REAL" and not estimate_noise_rate:
        return float(noise_ratio), f"--noise_ratio {noise_ratio} (known synthetic rate)"
    if estimate is None:
        raise ValueError("the noise rate is unknown and no estimate was given")
    ci = f", 95% CI [{estimate.ci_low:.3f}, {estimate.ci_high:.3f}]" if estimate.ci_low is not None else ""
    return float(estimate.rate), f"estimated {estimate.rate:.4f} ({estimate.method} on {estimate.n} samples{ci})"
