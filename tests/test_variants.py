"""DyGen's stage-2 variants on a synthetic stage 1: what each specification changes (exact
answers), and that each ablation changes exactly one thing."""
from __future__ import annotations

import numpy as np
import pytest

from src.config import make_config
from src.dynamics.euclidean_dist import dynamics_score, own_label_distances
from src.model.generate_prior import dirichlet_prior, knn_proba
from src.variants import VARIANTS, Stage2Inputs, Variant, dynamics, run_variant

M, E, N_TR, N_VA, N_TEST, D, C = 2, 3, 48, 12, 20, 5, 4
N_TRVAL = N_TR + N_VA


def synthetic_stage1(seed: int = 0):
    """Class-clustered embeddings drifting over epochs, 20% of labels flipped; probabilities
    that lean towards the noisy label (a model trained on it)."""
    rng = np.random.default_rng(seed)
    n_all = N_TRVAL + N_TEST
    clean = rng.integers(0, C, n_all)
    centres = rng.normal(0, 3, (C, D))
    z = np.stack([np.stack([centres[clean] + rng.normal(0, 1, (n_all, D)) * (1 + 0.3 * e) for e in range(E)])
                  for _ in range(M)]).astype(np.float16)                # (M, E, N_all, D)
    noisy = clean[:N_TRVAL].copy()
    flip = rng.random(N_TRVAL) < 0.2
    noisy[flip] = (noisy[flip] + 1) % C
    lean = np.concatenate([noisy, clean[N_TRVAL:]])
    probs = rng.dirichlet(np.ones(C), (M, E, n_all)) + 2 * np.eye(C)[lean]
    probs = (probs / probs.sum(-1, keepdims=True)).astype(np.float32)
    return z, probs, noisy, clean


def inputs(z, probs, noisy, fit=None, **cfg):
    cfg = make_config(noise_ratio=0.2, vae_epochs=3, lambda_t=0.7, seed=0, **cfg)
    fit = np.arange(N_TR) if fit is None else fit
    return Stage2Inputs(cfg, z, probs, 1, noisy, fit, np.arange(N_TRVAL, N_TRVAL + N_TEST), C)


@pytest.fixture(scope="module")
def st():
    z, probs, noisy, _ = synthetic_stage1()
    return inputs(z, probs, noisy)


def test_dynamics_centroids_and_flags_come_from_training_rows(st):
    dyn = dynamics(st)
    expect = np.stack([dynamics_score(own_label_distances(st.z[m][:, :N_TRVAL], st.noisy, C, fit=np.arange(N_TR)))
                       for m in range(M)])
    assert np.allclose(dyn.scores, expect)
    assert dyn.n_flag == int(0.2 * N_TR) and (dyn.flags[:, :N_TR].sum(1) == dyn.n_flag).all()
    for m in range(M):   # a validation row is flagged iff its score reaches the lowest flagged training score
        thr = dyn.scores[m, :N_TR][dyn.flags[m, :N_TR]].min()
        assert np.array_equal(dyn.flags[m, N_TR:], dyn.scores[m, N_TR:] >= thr)


def test_dygen_uses_the_trajectory_the_knn_prior_and_coregularisation(st):
    dyn = dynamics(st)
    r = run_variant(st, VARIANTS["dygen"], dyn)
    assert r.in_dim == E * D and r.vaes[0].encoder.in_features == E * D + C and r.lambda_t == 0.7
    emb = np.asarray(st.z[0, 0, :N_TR], np.float32)                   # --prior_epoch 1
    expect = dirichlet_prior(knn_proba(emb, st.noisy[:N_TR], ~dyn.flags[0, :N_TR], C, 10), "onehot", 5.0, 3)
    assert np.array_equal(r.alpha_prior[0], expect) and r.alpha_prior.shape == (M, N_TR, C)
    assert r.test_probs.shape == (N_TEST, C) and np.allclose(r.test_probs.sum(1), 1, atol=1e-5)
    assert len(r.test_probs_per_epoch) == 3 and np.array_equal(r.test_probs_per_epoch[-1], r.test_probs)


def test_each_ablation_changes_exactly_one_thing(st):
    dyn = dynamics(st)
    base = run_variant(st, VARIANTS["dygen"], dyn)
    no_dyn = run_variant(st, VARIANTS["dygen-no-dynamics"], dyn)
    assert no_dyn.in_dim == D and np.array_equal(no_dyn.alpha_prior, base.alpha_prior) and no_dyn.lambda_t == 0.7
    no_prior = run_variant(st, VARIANTS["dygen-no-prior"], dyn)
    onehot = 5.0 * np.eye(C)[st.noisy[:N_TR]] + 1 + 1 / C            # the noisy label's one-hot, not uniform
    assert np.allclose(no_prior.alpha_prior, onehot) and no_prior.in_dim == E * D and no_prior.lambda_t == 0.7
    no_coreg = run_variant(st, VARIANTS["dygen-no-coreg"], dyn)
    assert no_coreg.lambda_t == 0.0 and np.array_equal(no_coreg.alpha_prior, base.alpha_prior)
    assert not np.allclose(no_coreg.test_probs, base.test_probs)
    again = run_variant(st, VARIANTS["dygen"], dyn)                   # variants are order independent
    assert np.array_equal(again.test_probs, base.test_probs)


def test_npc_reconstructs_the_predicted_label_on_one_epoch(st):
    r = run_variant(st, VARIANTS["npc"], None)
    assert r.in_dim == D and r.lambda_t == 0.0
    with pytest.raises(ValueError):
        Variant("x", prior="gaussian")
