import numpy as np
import pytest

from src.data import noise


def _binomial_ok(flips: int, n: int, p: float, z: float = 5.0) -> bool:
    return abs(flips - n * p) <= z * np.sqrt(n * p * (1 - p)) + 1


@pytest.mark.parametrize("ratio", [0.0, 0.2, 0.4, 0.6])
@pytest.mark.parametrize("C", [2, 6, 20])
def test_symmetric_rate_within_binomial_tolerance(ratio, C):
    if ratio > (C - 1) / C:
        with pytest.raises(ValueError, match="unreachable"):
            noise.symmetric(np.zeros(10, np.int64), ratio, C, np.random.default_rng(0))
        return
    rng = np.random.default_rng(0)
    y = rng.integers(0, C, 20000)
    ny = noise.symmetric(y, ratio, C, np.random.default_rng(1))
    assert ny.min() >= 0 and ny.max() < C
    assert _binomial_ok(int((ny != y).sum()), len(y), ratio)


def test_symmetric_flipped_labels_are_uniform_over_other_classes():
    C = 5
    y = np.zeros(50000, dtype=np.int64)
    ny = noise.symmetric(y, 0.4, C, np.random.default_rng(2))
    counts = np.bincount(ny[ny != 0], minlength=C)[1:]
    assert counts.min() / counts.max() > 0.9


def test_asymmetric_exact_mapping_and_rate():
    C = 7
    y = np.random.default_rng(0).integers(0, C, 30000)
    ny = noise.asymmetric(y, 0.3, C, np.random.default_rng(3))
    flipped = ny != y
    assert np.array_equal(ny[flipped], (y[flipped] + 1) % C)
    assert _binomial_ok(int(flipped.sum()), len(y), 0.3)


@pytest.mark.parametrize("ratio", [0.2, 0.4])
def test_idn_mean_flip_rate_and_range(ratio):
    rng = np.random.default_rng(0)
    C, n = 10, 20000
    y = rng.integers(0, C, n)
    feats = rng.standard_normal((n, 16))
    ny = noise.instance_dependent(y, ratio, C, feats, np.random.default_rng(4))
    assert ny.min() >= 0 and ny.max() < C
    # q ~ TruncNormal(r, 0.1, [0, 1]) has mean ~r for these r; flips happen with prob q.
    assert abs((ny != y).mean() - ratio) < 0.02


def test_idn_depends_on_the_instance():
    rng = np.random.default_rng(0)
    C, n = 4, 4000
    y = np.zeros(n, dtype=np.int64)
    f1 = rng.standard_normal((n, 8))
    a = noise.instance_dependent(y, 0.4, C, f1, np.random.default_rng(5))
    b = noise.instance_dependent(y, 0.4, C, -f1, np.random.default_rng(5))
    assert not np.array_equal(a, b)  # same rng, other features -> other target classes


def test_same_seed_same_noise():
    y = np.arange(1000) % 10
    for t in ("SN", "ASN"):
        a = noise.corrupt(y, t, 0.3, 10, np.random.default_rng(9))
        b = noise.corrupt(y, t, 0.3, 10, np.random.default_rng(9))
        assert np.array_equal(a, b)
