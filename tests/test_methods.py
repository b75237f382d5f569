"""Every method on one synthetic stage 1, and the fairness rule: each method fits on the
noisy TRAINING rows only. Validation rows may select a hyper-parameter (fixed here to one
value) but never enter a fit; test rows never enter anything but their own prediction."""
from __future__ import annotations

import numpy as np
import pytest

import src.methods as methods
from src.config import config_from_args
from src.errors import UserError
from src.methods import METHODS, MethodInputs, parse_methods, run_methods
from src.model.train_stage1 import Stage1Result
from test_variants import N_TEST, N_TR, N_TRVAL, C, inputs, synthetic_stage1


def run_all(z, probs, noisy):
    st = inputs(z, probs, noisy, fit=methods.fit_rows(N_TR))
    s1 = Stage1Result(z, probs, 1, [0.1, 0.3, 0.2])
    single = Stage1Result(z[:1], probs[:1], 2, [0.1, 0.2, 0.3])      # stands in for `single`'s own stage 1
    outs, _, _, _ = run_methods(MethodInputs(st.cfg, s1, st, stage1_of=lambda cfg: single), list(METHODS))
    return outs


def perturbed(z, probs, noisy, rows, seed):
    """Arbitrary embeddings, probabilities and (for train/validation rows) labels at `rows`."""
    rng = np.random.default_rng(seed)
    z, probs, noisy = z.copy(), probs.copy(), noisy.copy()
    z[:, :, rows] = rng.normal(0, 5, z[:, :, rows].shape)
    probs[:, :, rows] = rng.dirichlet(np.ones(C), probs[:, :, rows].shape[:3])
    lab = rows[rows < len(noisy)]
    noisy[lab] = rng.integers(0, C, len(lab))
    return z, probs, noisy


@pytest.fixture(scope="module")
def stage1():
    z, probs, noisy, _ = synthetic_stage1(seed=3)
    return z, probs, noisy


def assert_fits_on_training_rows_only(z, probs, noisy):
    ref = run_all(z, probs, noisy)
    val_rows = np.arange(N_TR, N_TRVAL)
    moved = run_all(*perturbed(z, probs, noisy, val_rows, seed=1))
    for name in METHODS:
        assert np.array_equal(ref[name].test_probs, moved[name].test_probs), f"{name}'s fit saw validation rows"
        assert np.array_equal(ref[name].corrected[:N_TR], moved[name].corrected[:N_TR]), name
    test_row = np.array([N_TRVAL])
    moved = run_all(*perturbed(z, probs, noisy, test_row, seed=2))
    for name in METHODS:   # only the moved test row's own prediction may change
        assert np.array_equal(ref[name].test_probs[1:], moved[name].test_probs[1:]), f"{name}'s fit saw a test row"


def test_every_method_fits_on_the_training_rows_only(stage1, monkeypatch):
    monkeypatch.setattr(methods, "LR_CS", (0.1,))   # C selection on validation is allowed: fix it here
    assert_fits_on_training_rows_only(*stage1)


def test_the_old_train_plus_validation_fit_is_caught(stage1, monkeypatch):
    """Mutation: stage 2 and the baselines fitted on train + validation, as before."""
    monkeypatch.setattr(methods, "LR_CS", (0.1,))
    monkeypatch.setattr(methods, "fit_rows", lambda n_train: np.arange(N_TRVAL))
    with pytest.raises(AssertionError, match="saw validation rows"):
        assert_fits_on_training_rows_only(*stage1)


def test_every_method_gives_probabilities_and_lr_methods_choose_c_on_validation(stage1):
    z, probs, noisy = stage1
    outs = run_all(z, probs, noisy)
    assert list(outs) == list(METHODS)
    for name, o in outs.items():
        assert o.test_probs.shape == (N_TEST, C) and np.allclose(o.test_probs.sum(1), 1, atol=1e-5), name
        assert o.corrected.shape == (N_TRVAL, C), name
    for name in ("traj_lr", "cleanlab_lr"):
        info = outs[name].info
        for c, per_c in zip(info["C_per_model"], info["val_acc_noisy_per_C"]):
            assert per_c[f"{c:g}"] == max(per_c.values())            # the chosen C is the best on validation
    # `cr` and `single` are stage-1 ensembles at their selected epochs; the last epoch is kept too
    assert np.allclose(outs["cr"].test_probs, probs[:, 1, N_TRVAL:].mean(0))
    assert np.allclose(outs["cr"].test_probs_last, probs[:, -1, N_TRVAL:].mean(0))
    assert np.allclose(outs["single"].test_probs, probs[0, 2, N_TRVAL:])


def test_parse_methods():
    assert parse_methods("dygen-no-prior, npc,single,npc") == ["single", "npc", "dygen-no-prior"]
    with pytest.raises(UserError, match="unknown nope"):
        parse_methods("dygen,nope")
    with pytest.raises(UserError, match="now called 'single'"):
        parse_methods("base")
    assert config_from_args(["--variants", "npc,cr"]).variants == "cr,npc"


def test_label_cleaning_behind_the_safety_valve(stage1):
    z, probs, noisy = stage1
    st = inputs(z, probs, noisy, fit=methods.fit_rows(N_TR))
    inp = MethodInputs(st.cfg, Stage1Result(z, probs, 1, [0.1, 0.3, 0.2]), st, stage1_of=None)
    outs, dyn, opened, _ = run_methods(inp, ["cr", "dygen"])          # known rate 0.2: the valve stays open
    dy = outs["dygen"]
    assert not opened.valve_closed and np.array_equal(opened.dygen, dy.corrected.argmax(1))
    closed = methods.clean_labels(inp, dy, rate=0.01, ci_low=0.0)   # a near-clean file
    ch = closed.changed
    assert closed.valve_closed and ch.sum() <= opened.changed.sum()
    assert np.array_equal(closed.dygen[~ch], noisy[~ch])             # everything else keeps its given label
    assert (dy.model_labels[:, ch] == closed.dygen[ch]).all() and (closed.confidence[ch] >= 0.9).all()
    # cleanlab: only flagged rows may change
    assert np.array_equal(closed.cleanlab[~closed.cleanlab_flagged], noisy[~closed.cleanlab_flagged])
