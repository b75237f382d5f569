"""cleanlab's flag-and-relabel baseline on probabilities whose answer is known."""
from __future__ import annotations

import numpy as np
import pytest

from src.baselines.cleanlab_relabel import cleanlab_relabel


def _probs_of(classes, C, rng, sure=0.9):
    """Probabilities confident in `classes` (out-of-sample probabilities of a good model)."""
    p = rng.dirichlet(np.ones(C), len(classes)) * (1 - sure)
    p[np.arange(len(classes)), classes] += sure
    return p


def test_flags_the_flipped_rows_and_restores_their_class():
    rng = np.random.default_rng(0)
    C, n = 4, 400
    clean = np.arange(n) % C
    noisy = clean.copy()
    flip = rng.permutation(n)[:60]
    noisy[flip] = (clean[flip] + rng.integers(1, C, 60)) % C
    flags, relabeled = cleanlab_relabel(noisy, _probs_of(clean, C, rng))
    assert flags.dtype == bool and relabeled.dtype == np.int64
    assert set(np.flatnonzero(flags)) == set(flip)
    assert (relabeled == clean).all()


def test_agreeing_labels_are_kept_and_only_flagged_rows_change():
    rng = np.random.default_rng(1)
    y = np.arange(90) % 3
    flags, relabeled = cleanlab_relabel(y, _probs_of(y, 3, rng))
    assert not flags.any() and (relabeled == y).all()
    p = _probs_of(y, 3, rng)
    p[0] = [0.02, 0.96, 0.02]                                  # one label contradicted
    flags, relabeled = cleanlab_relabel(y, p)
    assert flags.tolist() == [True] + [False] * 89
    assert relabeled[0] == 1 and (relabeled[1:] == y[1:]).all()


def test_shape_is_checked():
    with pytest.raises(ValueError, match="pred_probs"):
        cleanlab_relabel(np.zeros(4, int), np.full((3, 2), 0.5))
