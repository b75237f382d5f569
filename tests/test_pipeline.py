"""End-to-end runs on real 20 Newsgroups documents, and the properties that show the
protocol is clean: the oracle labels (gold test, clean train/validation) never reach a
prediction, checked with a real fine-tuned model, and a re-injected leak is caught."""
from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_args
from src import pipeline
from src.config import config_from_args
from src.data.prepare import Oracle


def _run(args):
    cfg = config_from_args(args)
    metrics = pipeline.run(cfg)
    run_dir = Path(metrics["run_dir"])
    preds = dict(np.load(run_dir / "test_predictions.npz"))
    with open(run_dir / "corrected_labels.csv") as fh:
        rows = list(csv.DictReader(fh))
    return metrics, preds, rows


def test_tiny_end_to_end_writes_every_output(tiny_bert_dir, tmp_path):
    import main
    assert main.main(tiny_args(tiny_bert_dir, tmp_path, "--seed", "3")) == 0
    cache = tmp_path / "cache"
    log = (cache / "20news-results.logs").read_text()
    assert "base:" in log and "DyGen:" in log and "noise_type: SN" in log
    (run_dir,) = list((cache / "runs").iterdir())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert list(metrics["methods"]) == ["cr", "dygen"]          # always run: the stage-1 ensemble and DyGen
    for key in ("realised_noise_rate", "noise_detection", "timings_s", "stage1_best_epoch"):
        assert key in metrics
    for step in ("data", "stage1", "methods", "evaluate", "outputs", "total"):
        assert step in metrics["timings_s"]
    dy = metrics["methods"]["dygen"]
    acc = np.load(cache / "dygen_acc_0.2_3.npy")
    assert acc.shape == (3,) and acc[-1] == dy["test"]["accuracy"]          # the last epoch is reported
    assert acc.tolist() == dy["test_acc_per_epoch"]
    assert json.loads((run_dir / "config.json").read_text())["seed"] == 3
    rows = list(csv.DictReader(open(run_dir / "corrected_labels.csv")))
    assert len(rows) == metrics["n_train"] + metrics["n_validation"] == 80
    # flags: floor(0.2 x 64 training rows) per model; validation rows by the same threshold
    assert dy["n_flagged_train"] == int(0.2 * 64)
    assert sum(int(r["flagged"]) for r in rows if r["split"] == "train") >= dy["n_flagged_train"]


def test_rerun_uses_stage1_cache_and_never_overwrites(tiny_bert_dir, tmp_path):
    args = tiny_args(tiny_bert_dir, tmp_path)
    m1, p1, r1 = _run(args)
    m2, p2, r2 = _run(args)
    assert not m1["stage1_cached"] and m2["stage1_cached"]
    assert m1["run_dir"] != m2["run_dir"]
    assert np.array_equal(p1["dygen_probs"], p2["dygen_probs"]) and r1 == r2
    log = (tmp_path / "cache" / "20news-results.logs").read_text()
    assert log.count("DyGen:") == 2
    assert len(list((tmp_path / "cache").glob("dygen_acc_0.2_3*.npy"))) == 2


def test_same_seed_same_outputs_other_seed_other_outputs(tiny_bert_dir, tmp_path):
    m1, p1, r1 = _run(tiny_args(tiny_bert_dir, tmp_path / "a"))
    m2, p2, r2 = _run(tiny_args(tiny_bert_dir, tmp_path / "b"))
    assert np.array_equal(p1["dygen_probs"], p2["dygen_probs"]) and r1 == r2
    assert m1["methods"] == {k: {**v, "seconds": m1["methods"][k]["seconds"]} for k, v in m2["methods"].items()}
    m3, p3, _ = _run(tiny_args(tiny_bert_dir, tmp_path / "c", "--seed", "2"))
    assert not np.array_equal(p1["dygen_probs"], p3["dygen_probs"])


def test_single_alone_trains_no_ensemble_and_scores_as_the_full_run(tiny_bert_dir, tmp_path, caplog):
    full, p_full, _ = _run(tiny_args(tiny_bert_dir, tmp_path / "full", "--variants", "single"))
    with caplog.at_level(logging.INFO, logger="dygen"):
        alone = pipeline.run_single_only(config_from_args(tiny_args(tiny_bert_dir, tmp_path / "alone")))
    (res,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("resources:")]
    assert "(M=1 x" in res                           # the estimate is of the one model that trains
    assert list(alone["methods"]) == ["single"]
    drop = lambda m: {k: v for k, v in m.items() if k != "seconds"}
    assert drop(alone["methods"]["single"]) == drop(full["methods"]["single"])     # accuracy, ECE, labels, epochs
    assert alone["realised_noise_rate"] == full["realised_noise_rate"]
    p_alone = np.load(Path(alone["run_dir"]) / "test_predictions.npz")
    assert np.array_equal(p_alone["single_probs"], p_full["single_probs"])
    assert np.array_equal(p_alone["test_labels"], p_full["test_labels"])
    label_map = lambda m: json.loads((Path(m["run_dir"]) / "label_map.json").read_text())
    assert label_map(alone) == label_map(full)       # the per-class script reads it
    # the full run cached two stage-1 configurations (ensemble, single); the single-only run one
    assert len(list((tmp_path / "full" / "cache" / "stage1").iterdir())) == 2
    (only,) = list((tmp_path / "alone" / "cache" / "stage1").iterdir())
    assert (tmp_path / "full" / "cache" / "stage1" / only.name).is_dir()           # the same (single's) cache
    assert alone["stage1_hash"] == only.name and alone["stage1_overrides"]["n_model"] == 1


# ---- the oracle never reaches a method ----------------------------------------------------
# A real fine-tuned MiniLM on 40 real documents. The second run gets arbitrary oracle labels
# (other classes, other counts, some unknown): every prediction and every corrected label
# must be bit-identical, while the scores computed from the oracle change.

REAL = ["--bert", "embedded", "--max_train_samples", "40", "--max_test_samples", "24", "--max_len", "32",
        "--epochs", "2", "--train_batch_size", "8", "--vae_epochs", "3", "--noise_ratio", "0.3", "--no_plots",
        "--variants", "traj_lr,npc,dygen-no-dynamics,dygen-no-prior,dygen-no-coreg"]


def _arbitrary(oracle: Oracle, C: int) -> Oracle:
    rng = np.random.default_rng(123)
    clean = rng.integers(-1, C, len(oracle.clean_trval))        # -1: unknown
    return Oracle(clean, rng.integers(0, C, len(oracle.test_gold)))


def _real_run(tmp_path, monkeypatch, name, change_oracle=False, leak=None):
    """One pipeline run with the real model; `leak(monkeypatch, seen)` may re-inject a leak."""
    seen = {}
    real_prepare = pipeline.prepare_data

    def prepare(*a, **k):
        data, oracle = real_prepare(*a, **k)
        seen["oracle"] = _arbitrary(oracle, data.num_classes) if change_oracle else oracle
        return data, seen["oracle"]
    with monkeypatch.context() as mp:
        mp.setattr(pipeline, "prepare_data", prepare)
        if leak is not None:
            leak(mp, seen)
        out = tmp_path / name
        m, preds, rows = _run([*REAL, "--output_dir", str(out / "cache"), "--path", str(tmp_path / "ds")])
    strip = [{k: v for k, v in r.items() if k != "clean_label"} for r in rows]
    return m, {k: v for k, v in preds.items() if k != "test_labels"}, strip


def _assert_same_predictions(a, b):
    (_, p1, r1), (_, p2, r2) = a, b
    assert set(p1) == set(p2) and len(p1) >= 7
    for k in p1:
        assert np.array_equal(p1[k], p2[k]), f"{k} changed with the oracle labels"
    assert r1 == r2, "corrected labels changed with the oracle labels"


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    tmp = tmp_path_factory.mktemp("oracle")
    try:
        yield tmp, mp, _real_run(tmp, mp, "a"), _real_run(tmp, mp, "b", change_oracle=True)
    finally:
        mp.undo()


def test_arbitrary_oracle_labels_change_no_prediction_of_a_trained_model(real_runs):
    tmp, _, a, b = real_runs
    assert not a[0]["stage1_cached"] and not b[0]["stage1_cached"]   # stage 1 fine-tuned twice
    assert a[0]["stage1_val_acc_noisy"] == b[0]["stage1_val_acc_noisy"]
    _assert_same_predictions(a, b)
    assert a[0]["methods"]["dygen"]["test"] != b[0]["methods"]["dygen"]["test"]    # only the scores move
    assert a[0]["realised_noise_rate"] != b[0]["realised_noise_rate"]


def test_a_reinjected_leak_is_caught(real_runs):
    """Mutation: the authors' flaw 1 (gold test labels in the class centroids) put back; the
    same comparison must now fail."""
    tmp, mp, a, _ = real_runs
    import src.methods
    from src.dynamics import euclidean_dist
    from src.variants import dynamics_scores as real_scores

    def leak(mp_, seen):
        def leaky(inp):
            real_own = euclidean_dist.own_label_distances

            def own(z, labels, C, fit=None):   # centroids of the training rows AND the test rows' gold labels
                zt = np.asarray(inp.z[0][:, inp.test], np.float32)
                both = np.concatenate([np.asarray(z, np.float32), zt], axis=1)
                lab = np.concatenate([labels, seen["oracle"].test_gold])
                fit_all = np.concatenate([fit, np.arange(len(labels), len(lab))])
                return real_own(both, lab, C, fit=fit_all)[:, :len(labels)]
            mp_.setattr("src.variants.own_label_distances", own)
            return real_scores(inp)
        mp_.setattr(src.methods, "dynamics_scores", leaky)

    leaked_a = _real_run(tmp, mp, "a", leak=leak)                     # stage 1 from run a's cache
    leaked_b = _real_run(tmp, mp, "a", change_oracle=True, leak=leak)
    assert leaked_a[0]["stage1_cached"] and leaked_b[0]["stage1_cached"]
    with pytest.raises(AssertionError):
        _assert_same_predictions(leaked_a, leaked_b)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_own_csv_with_few_classes_runs_with_default_flags(n_classes, tiny_bert_dir, tmp_path):
    """A two- or three-class file: --selected_class (default 3) is clamped to the classes, the
    noise rate is estimated, and both cleaners' labels are written."""
    rng = np.random.default_rng(n_classes)
    names = ["neg", "pos", "mixed"][:n_classes]
    words = {"neg": "awful bad boring", "pos": "great lovely fun", "mixed": "fine okay average"}
    gold = rng.integers(0, n_classes, 120)
    given = np.where(rng.random(120) < 0.2, rng.integers(0, n_classes, 120), gold)
    path = tmp_path / "reviews.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label", "gold"])
        for g, y in zip(gold, given):
            w.writerow([f"a {words[names[g]]} film, {rng.integers(0, 99)} minutes", names[y], names[g]])
    args = ["--dataset", "csv", "--train_file", str(path), "--bert", tiny_bert_dir, "--output_dir",
            str(tmp_path / "cache"), "--path", str(tmp_path / "ds"), "--epochs", "2", "--vae_epochs", "2",
            "--max_len", "16", "--no_plots"]
    m, _, rows = _run(args)
    assert m["num_classes"] == n_classes and "estimated" in m["flag_rate"]["how"]
    assert m["noise_rate_estimate"]["method"] in ("anchor_agreement", "gaussian_mixture_fallback")
    assert len(rows) == 120 and {r["cleanlab_label"] for r in rows} <= set(names)
    lc = m["label_cleaning"]
    assert lc["n_changed_dygen"] == sum(int(r["changed"]) for r in rows)
    assert lc["all_rows"]["given_label_acc"] == pytest.approx(np.mean(given == gold))
