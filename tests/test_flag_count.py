import numpy as np
import pytest

from src.dynamics.flag_count import MAX_ESTIMATED_RATE, flag_rate, mixture_noise_rate
from src.dynamics.noise_rate import NoiseRateEstimate


@pytest.mark.parametrize("rate", [0.1, 0.3])
def test_mixture_recovers_the_share_of_the_high_component(rate):
    rng = np.random.default_rng(0)
    n = 2000
    k = int(rate * n)
    scores = np.concatenate([rng.normal(10, 1, n - k), rng.normal(16, 1, k)])
    assert mixture_noise_rate(rng.permutation(scores)) == pytest.approx(rate, abs=0.02)


def test_mixture_degenerate_inputs_flag_nothing():
    assert mixture_noise_rate(np.full(50, 3.0)) == 0.0
    assert mixture_noise_rate(np.array([1.0, 2.0])) == 0.0


def test_mixture_estimate_is_capped():
    rng = np.random.default_rng(1)
    scores = np.concatenate([rng.normal(0, 1, 200), rng.normal(8, 1, 800)])
    assert mixture_noise_rate(scores) == MAX_ESTIMATED_RATE


def test_flag_rate_precedence():
    est = NoiseRateEstimate(0.27, 0.22, 0.31, "anchor_agreement", 400)
    # explicit --flag_ratio wins for every noise type
    assert flag_rate(noise_type="REAL", noise_ratio=0.4, flag_ratio=0.1, estimate=est)[0] == 0.1
    assert flag_rate(noise_type="SN", noise_ratio=0.4, flag_ratio=0.1, estimate_noise_rate=True)[0] == 0.1
    # synthetic noise: the known rate, unless it is to be estimated
    rate, how = flag_rate(noise_type="SN", noise_ratio=0.4, estimate=est)
    assert rate == 0.4 and "known" in how
    rate, how = flag_rate(noise_type="SN", noise_ratio=0.4, estimate_noise_rate=True, estimate=est)
    assert rate == 0.27 and "anchor_agreement" in how and "[0.220, 0.310]" in how
    # real noise: the estimate, which must exist
    assert flag_rate(noise_type="REAL", noise_ratio=0.2, estimate=est)[0] == 0.27
    with pytest.raises(ValueError):
        flag_rate(noise_type="REAL", noise_ratio=0.2)
