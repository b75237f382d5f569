"""Stage-2 variants on one stage 1: what each specification changes, checked on a synthetic
stage 1 (exact answers), and end to end with the tiny BERT (one call, every method)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_args
from src import pipeline
from src.config import config_from_args, make_config
from src.dynamics.euclidean_dist import dynamics_score, own_label_distances
from src.errors import UserError
from src.model.train_stage1 import Stage1Result
from src.variants import METHODS, VARIANTS, Variant, parse_methods

M, E, N_TRVAL, N_TEST, D, C = 2, 3, 60, 20, 5, 4


@pytest.fixture(scope="module")
def shared():
    """A synthetic stage 1: class-clustered embeddings drifting over epochs, 20% of labels flipped."""
    rng = np.random.default_rng(0)
    n_all = N_TRVAL + N_TEST
    clean = rng.integers(0, C, n_all)
    centres = rng.normal(0, 3, (C, D))
    z = np.stack([np.stack([centres[clean] + rng.normal(0, 1, (n_all, D)) * (1 + 0.3 * e) for e in range(E)])
                  for _ in range(M)]).astype(np.float16)                # (M, E, N_all, D)
    probs = rng.dirichlet(np.ones(C), (M, E, n_all)).astype(np.float32)
    noisy = clean[:N_TRVAL].copy()
    flip = rng.random(N_TRVAL) < 0.2
    noisy[flip] = (noisy[flip] + 1) % C
    s1 = Stage1Result(z, probs, best_epoch=1, val_acc_noisy=[0.1, 0.3, 0.2])
    cfg = make_config(noise_ratio=0.2, vae_epochs=3, lambda_t=0.7, seed=0)
    test = np.arange(N_TRVAL, n_all)
    sh = pipeline.Shared(cfg, s1, noisy, C, N_TRVAL, test, probs[:, 1][:, test], clean[test], True)
    return sh, clean


def test_dygen_uses_the_trajectory_the_dynamics_score_and_coregularisation(shared):
    sh, _ = shared
    r = pipeline.run_variant(sh, VARIANTS["dygen"])
    assert r.in_dim == E * D and r.vaes[0].encoder.in_features == E * D + C
    assert r.lambda_t == 0.7
    expect = np.stack([dynamics_score(own_label_distances(sh.s1.z[m][:, :N_TRVAL], sh.noisy, C)) for m in range(M)])
    assert np.allclose(r.scores, expect)
    assert r.n_flag == int(0.2 * N_TRVAL) and (r.flags.sum(1) == r.n_flag).all()
    assert r.alpha_prior.max() == pytest.approx(5 + 1 + 1 / C)   # KNN one-hot prior, prior_norm 5
    assert r.test_probs.shape == (N_TEST, C) and np.allclose(r.test_probs.sum(1), 1, atol=1e-5)


def test_npc_sees_one_epoch_flags_nothing_and_is_not_coregularised(shared):
    sh, _ = shared
    r = pipeline.run_variant(sh, VARIANTS["npc"])
    assert r.in_dim == D and r.vaes[0].encoder.in_features == D + C      # not E*D
    assert r.lambda_t == 0.0 and r.scores is None and r.n_flag == 0 and not r.flags.any()
    # its KNN prior is fit on every sample at the selected epoch: the same as the prior built by hand
    from src.model.generate_prior import dirichlet_prior, knn_proba
    emb = np.asarray(sh.s1.z[0, sh.s1.best_epoch, :N_TRVAL], np.float32)
    expect = dirichlet_prior(knn_proba(emb, sh.noisy, np.ones(N_TRVAL, bool), C, sh.cfg.k), "onehot", 5.0, 3)
    assert np.array_equal(r.alpha_prior[0], expect)


def test_no_prior_is_uniform_no_coreg_has_lambda_zero_no_dynamics_scores_one_epoch(shared):
    sh, _ = shared
    r = pipeline.run_variant(sh, VARIANTS["dygen-no-prior"])
    assert np.allclose(r.alpha_prior, 1 + 1 / C) and r.in_dim == E * D and r.lambda_t == 0.7
    r = pipeline.run_variant(sh, VARIANTS["dygen-no-coreg"])
    assert r.lambda_t == 0.0 and r.in_dim == E * D and r.n_flag == int(0.2 * N_TRVAL)
    r = pipeline.run_variant(sh, VARIANTS["dygen-no-dynamics"])
    one = np.stack([own_label_distances(sh.s1.z[m][1:2, :N_TRVAL], sh.noisy, C)[0] for m in range(M)])
    assert np.allclose(r.scores, one) and r.in_dim == D and r.lambda_t == 0.7


def test_coreg_off_changes_the_result_and_variants_are_order_independent(shared):
    sh, _ = shared
    a = pipeline.run_variant(sh, VARIANTS["dygen"])
    pipeline.run_variant(sh, VARIANTS["npc"])                               # another variant in between
    b = pipeline.run_variant(sh, VARIANTS["dygen"])
    c = pipeline.run_variant(sh, VARIANTS["dygen-no-coreg"])
    assert np.array_equal(a.test_probs, b.test_probs)
    assert not np.allclose(a.test_probs, c.test_probs)


def test_parse_and_validate_methods():
    assert parse_methods("dygen-no-prior, npc,base,npc") == ["base", "npc", "dygen-no-prior"]
    with pytest.raises(UserError, match="unknown nope"):
        parse_methods("dygen,nope")
    with pytest.raises(ValueError):
        Variant("x", prior="gaussian")
    assert set(VARIANTS) | {"base", "cr"} == set(METHODS)
    assert config_from_args(["--variants", "npc,cr"]).variants == "cr,npc"


def test_every_method_in_one_call_on_one_stage1(tiny_bert_dir, tmp_path):
    all_methods = ",".join(METHODS)
    m1 = pipeline.run(config_from_args(tiny_args(tiny_bert_dir, tmp_path, "--variants", all_methods,
                                                 "--compare_cleanlab")))
    v = m1["variants"]
    assert list(v) == list(METHODS)
    assert v["cr"]["test"] == m1["base"]                  # cr = this run's co-regularised stage-1 ensemble
    assert v["dygen"]["test"] == m1["dygen"] and v["dygen"]["noise_detection"] == m1["noise_detection"]
    assert v["npc"]["vae_input_width"] == 32 and v["dygen"]["vae_input_width"] == 2 * 32
    assert v["base"]["stage1_hash"] != v["cr"]["stage1_hash"] and not v["base"]["stage1_cached"]
    assert "noise_detection" not in v["npc"] and "noise_detection" in v["dygen-no-dynamics"]
    dc = m1["detection_comparison"]
    assert dc["n_samples"] == 80 and 0 <= dc["cleanlab_at_true_count"]["auroc"] <= 1
    run_dir = Path(m1["run_dir"])
    preds = np.load(run_dir / "test_predictions.npz")
    assert {"npc_probs", "dygen_no_prior_probs", "base_1model_probs"} <= set(preds.files)
    assert json.loads((run_dir / "metrics.json").read_text())["variants"]["npc"] == json.loads(json.dumps(v["npc"]))
    for png in ("dynamics_score_hist.png", "distance_trajectories.png", "reliability.png"):
        assert (run_dir / png).stat().st_size > 1000
    # A plain run on the same cache: both stage 1s are reused and DyGen is what it was.
    m2 = pipeline.run(config_from_args(tiny_args(tiny_bert_dir, tmp_path, "--no_plots")))
    assert m2["stage1_cached"] and m2["dygen"] == m1["dygen"] and list(m2["variants"]) == ["dygen"]
    assert np.array_equal(np.load(Path(m2["run_dir"]) / "test_predictions.npz")["dygen_probs"], preds["dygen_probs"])
    m3 = pipeline.run(config_from_args(tiny_args(tiny_bert_dir, tmp_path, "--variants", "base", "--no_plots")))
    assert m3["variants"]["base"]["stage1_cached"] and m3["variants"]["base"]["test"] == v["base"]["test"]
