import numpy as np
import pytest

from src.dynamics.flag_count import MAX_ESTIMATED_RATE, flag_count, mixture_noise_rate, n_from_ratio


def test_n_from_ratio_floors():
    assert n_from_ratio(10, 0.25) == 2
    assert n_from_ratio(100, 0.2) == 20
    assert n_from_ratio(7, 0.0) == 0


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


def test_flag_count_precedence():
    rng = np.random.default_rng(2)
    scores = np.concatenate([rng.normal(0, 1, 80), rng.normal(6, 1, 20)])
    # explicit --flag_ratio wins for every noise type
    assert flag_count(scores, noise_type="REAL", noise_ratio=0.4, flag_ratio=0.1)[0] == 10
    assert flag_count(scores, noise_type="SN", noise_ratio=0.4, flag_ratio=0.1)[0] == 10
    # synthetic noise: the known rate
    n, how = flag_count(scores, noise_type="SN", noise_ratio=0.4)
    assert n == 40 and "noise_ratio" in how
    # real noise: the mixture estimate (20 of 100 come from the high component)
    n, how = flag_count(scores, noise_type="REAL", noise_ratio=0.4)
    assert 18 <= n <= 22 and "mixture" in how
