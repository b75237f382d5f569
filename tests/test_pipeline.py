"""End-to-end runs on real 20 Newsgroups documents, and the properties that show the
protocol is clean (test labels and clean train labels never reach a prediction)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_args
from src import pipeline
from src.config import config_from_args
from src.data.datasets import load_dataset


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
    for key in ("base", "dygen", "realised_noise_rate", "noise_detection", "label_correction", "timings_s"):
        assert key in metrics
    for step in ("data", "stage1", "dynamics", "prior", "stage2", "evaluate", "outputs", "total"):
        assert step in metrics["timings_s"]
    assert 0 <= metrics["dygen"]["accuracy"] <= 1 and 0 <= metrics["noise_detection"]["auroc"] <= 1
    acc = np.load(cache / "dygen_acc_0.2_3.npy")
    assert acc.shape == (3,) and np.isclose(acc[-1], metrics["dygen"]["accuracy"])  # last epoch reported
    assert json.loads((run_dir / "config.json").read_text())["seed"] == 3
    rows = list(csv.DictReader(open(run_dir / "corrected_labels.csv")))
    assert len(rows) == metrics["n_train"] + metrics["n_validation"] == 80
    assert sum(int(r["flagged"]) for r in rows) >= metrics["n_flagged"]


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
    assert m1["dygen"] == m2["dygen"] and m1["noise_detection"] == m2["noise_detection"]
    m3, p3, _ = _run(tiny_args(tiny_bert_dir, tmp_path / "c", "--seed", "2"))
    assert not np.array_equal(p1["dygen_probs"], p3["dygen_probs"])


def test_real_minilm_on_a_few_dozen_documents(tmp_path):
    args = ["--bert", "embedded", "--output_dir", str(tmp_path / "cache"), "--path", str(tmp_path / "ds"),
            "--max_train_samples", "40", "--max_test_samples", "20", "--max_len", "32", "--epochs", "2",
            "--train_batch_size", "8", "--vae_epochs", "3", "--noise_ratio", "0.4"]
    m, preds, rows = _run(args)
    assert m["n_train"] == 32 and m["n_validation"] == 8 and m["n_test"] == 20
    assert preds["dygen_probs"].shape == (20, 20)
    assert np.allclose(preds["dygen_probs"].sum(1), 1, atol=1e-5)
    assert np.allclose(preds["base_probs"].sum(1), 1, atol=1e-5)
    assert m["n_flagged"] == int(0.4 * 40)


# ---- the protocol is clean ------------------------------------------------------------
# Through the user's path: a CSV whose `label` column is noisy and whose `gold` column is
# clean, plus a test CSV. The method may see texts and noisy labels only.

@pytest.fixture(scope="module")
def small_20news():
    """120 training and 30 test documents of the real 20 Newsgroups, 30% of labels noisy."""
    raw = load_dataset("20news", Path("datasets"))
    rng = np.random.default_rng(0)
    tr = rng.choice(len(raw.train_texts), 120, replace=False)
    te = rng.choice(len(raw.test_texts), 30, replace=False)
    gold = raw.train_labels[tr]
    noisy = np.where(rng.random(120) < 0.3, rng.integers(0, 20, 120), gold)
    names = np.array(raw.class_names)
    return ([raw.train_texts[i][:400] for i in tr], names[noisy], names[gold],
            [raw.test_texts[i][:400] for i in te], names[raw.test_labels[te]])


def _write(path, header, columns):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(zip(*columns))
    return str(path)


def _run_csv(data, tiny_bert_dir, out: Path):
    texts, noisy, gold, test_texts, test_gold = data
    out.mkdir(parents=True)
    train = _write(out / "train.csv", ["text", "label", "gold"], [texts, noisy, gold])
    test = _write(out / "test.csv", ["text", "label"], [test_texts, test_gold])
    args = tiny_args(tiny_bert_dir, out, "--dataset", "csv", "--train_file", train, "--test_file", test,
                     "--flag_ratio", "0.3")
    for flag in ("--max_train_samples", "--max_test_samples"):  # every row is used
        i = args.index(flag)
        del args[i:i + 2]
    return _run(args)


def test_permuting_test_labels_changes_no_prediction(small_20news, tiny_bert_dir, tmp_path):
    m1, p1, r1 = _run_csv(small_20news, tiny_bert_dir, tmp_path / "a")
    texts, noisy, gold, test_texts, test_gold = small_20news
    perm = np.random.default_rng(1).permutation(len(test_gold))
    m2, p2, r2 = _run_csv((texts, noisy, gold, test_texts, test_gold[perm]), tiny_bert_dir, tmp_path / "b")
    assert not m2["stage1_cached"]
    assert np.array_equal(p1["dygen_probs"], p2["dygen_probs"])
    assert np.array_equal(p1["base_probs"], p2["base_probs"])
    assert r1 == r2
    assert not np.array_equal(p1["test_labels"], p2["test_labels"])  # only the scores may differ


def test_permuting_clean_train_labels_changes_no_prediction(small_20news, tiny_bert_dir, tmp_path):
    m1, p1, r1 = _run_csv(small_20news, tiny_bert_dir, tmp_path / "a")
    texts, noisy, gold, test_texts, test_gold = small_20news
    perm = np.random.default_rng(2).permutation(len(gold))
    m2, p2, r2 = _run_csv((texts, noisy, gold[perm], test_texts, test_gold), tiny_bert_dir, tmp_path / "b")
    assert np.array_equal(p1["dygen_probs"], p2["dygen_probs"])
    strip = lambda rows: [{k: v for k, v in r.items() if k != "clean_label"} for r in rows]
    assert strip(r1) == strip(r2)
    assert m1["label_correction"] != m2["label_correction"]  # the diagnostics do change
