"""Bad inputs: each gives exit code 2, one line naming the problem, no traceback, and leaves
an earlier run's results byte-identical. Plus NaN injection (exit code 3) and run folders."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import main as entry
from conftest import ROOT, tiny_args

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
QUICK = ("--epochs", "1", "--vae_epochs", "1")


@pytest.fixture(scope="module")
def earlier(tiny_bert_dir, tmp_path_factory):
    """An output folder holding one finished run, and bad model folders to point --bert at."""
    out = tmp_path_factory.mktemp("earlier")
    r = subprocess.run([sys.executable, "main.py", *tiny_args(tiny_bert_dir, out, *QUICK)], cwd=ROOT, env=ENV,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    bad = out / "bad"
    for name in ("no_config", "bad_json", "no_weights", "no_tokenizer"):
        shutil.copytree(tiny_bert_dir, bad / name)
    (bad / "no_config" / "config.json").unlink()
    (bad / "bad_json" / "config.json").write_text('{"model_type": "bert", ')
    (bad / "no_weights" / "model.safetensors").unlink()
    for f in ("tokenizer.json", "vocab.txt"):
        (bad / "no_tokenizer" / f).unlink(missing_ok=True)
    (out / "a_file").write_text("not a folder\n")
    return out


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """In-process runs: one thread (pipeline.run respects OMP_NUM_THREADS)."""
    n = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def snapshot(out: Path) -> dict:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((out / "cache").rglob("*")) if p.is_file()}


F = "{out}/a_file"
# (flags added after a valid tiny run's flags (the last value wins), words the error line must hold)
BAD_INPUTS = [
    (["--epochs", "abc"], "argument --epochs: invalid int value: 'abc'"),
    (["--no_such_flag", "1"], "unrecognized arguments: --no_such_flag 1"),
    (["--device", "tpu"], "argument --device: invalid choice: 'tpu'"),
    (["--saved_dataset", "maybe"], "argument --saved_dataset: invalid choice: 'maybe'"),
    (["--preset", "fast"], "argument --preset: invalid choice: 'fast'"),
    (["--noise_type", "XYZ"], "--noise_type must be one of SN, ASN, IDN, REAL (got 'XYZ')"),
    (["--noise_ratio", "1.0"], "--noise_ratio must be in [0, 1) (got 1.0)"),
    (["--noise_ratio", "-0.1"], "--noise_ratio must be in [0, 1) (got -0.1)"),
    (["--noise_ratio", "nan"], "--noise_ratio must be in [0, 1) (got nan)"),
    (["--n_model", "0"], "--n_model must be >= 1 (got 0)"),
    (["--epochs", "0"], "--epochs must be >= 1 (got 0)"),
    (["--train_batch_size", "0"], "--train_batch_size must be >= 1 (got 0)"),
    (["--k", "0"], "--k must be >= 1 (got 0)"),
    (["--lr", "0"], "--lr must be > 0 (got 0.0)"),
    (["--lr", "inf"], "--lr must be a finite number (got inf)"),
    (["--weight_decay", "-1"], "--weight_decay must be >= 0 (got -1.0)"),
    (["--softplus_beta", "0"], "--softplus_beta must be > 0 (got 0.0)"),
    (["--knn_mode", "cosine"], "--knn_mode must be one of onehot, proba (got 'cosine')"),
    (["--dataset", "nosuch"], "unknown --dataset 'nosuch'; known: 20news"),
    (["--prior_epoch", "5"], "--prior_epoch (5) exceeds --epochs (2)"),
    (["--vae_epochs", "3", "--total_iter", "4"], "--vae_epochs (3) and its older name --total_iter (4) disagree"),
    (["--warmup_epochs", "1.5"], "--warmup_epochs is a fraction of the stage-2 epochs, in [0, 1] (got 1.5)"),
    (["--max_len", "4"], "--max_len must be >= 8 (got 4)"),
    (["--seed", "-1"], "--seed must be in [0, 2**32) (got -1)"),
    (["--bert", "/nonexistent/model"], "--bert /nonexistent/model: no such directory"),
    (["--bert", "{out}/bad/no_config"], "directory has no config.json"),
    (["--bert", "{out}/bad/bad_json"], "config.json is not valid JSON"),
    (["--bert", "{out}/bad/no_weights"], "holds no weights"),
    (["--bert", "{out}/bad/no_tokenizer"], "holds no tokenizer"),
    (["--bert", "nosuch/model"], "cannot load tokenizer from nosuch/model"),
    (["--output_dir", F], "--output_dir {out}/a_file is a file, not a directory"),
    (["--output_dir", F + "/sub"], "--output_dir {out}/a_file/sub is not a writable directory (Not a directory)"),
    (["--path", F], "--path {out}/a_file is a file, not a directory"),
    (["--save_model", "--model_dir", F], "--model_dir {out}/a_file is a file, not a directory"),
    (["--max_len", "100000"], "--max_len 100000 exceeds the model's 512 positions"),
    (["--max_train_samples", "2"], "--max_train_samples 2 is smaller than the number of classes (20)"),
    (["--epochs", "100000000"], "not enough free disk under --output_dir"),
]
if not torch.cuda.is_available():
    BAD_INPUTS.append((["--device", "cuda"], "--device cuda asked for, but no CUDA device is available"))


def run_main(argv, capsys):
    rc = entry.main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.mark.parametrize("flags,expected", BAD_INPUTS, ids=[" ".join(f) for f, _ in BAD_INPUTS])
def test_bad_input(flags, expected, earlier, tiny_bert_dir, capsys):
    before = snapshot(earlier)
    flags = [f.format(out=earlier) for f in flags]
    rc, out, err = run_main(tiny_args(tiny_bert_dir, earlier, *flags), capsys)
    assert rc == 2
    assert "Traceback" not in err and out == ""
    lines = [l for l in err.splitlines() if l.startswith("main.py: error:")]
    assert len(lines) == 1, err
    assert expected.format(out=earlier) in lines[0]
    assert "(python main.py --help lists every flag)" in err
    assert snapshot(earlier) == before  # earlier results untouched, no new run folder


@pytest.mark.parametrize("flags,expected", [
    (["--epochs", "abc"], "main.py: error: argument --epochs: invalid int value: 'abc'"),
    (["--noise_ratio", "2"], "main.py: error: --noise_ratio must be in [0, 1) (got 2.0)"),
    (["--bert", "/nonexistent/model"], "main.py: error: --bert /nonexistent/model: no such directory"),
])
def test_bad_input_real_process(flags, expected, earlier, tiny_bert_dir):
    """As a real process: exactly two stderr lines (the problem, the hint), exit code 2."""
    before = snapshot(earlier)
    r = subprocess.run([sys.executable, "main.py", *tiny_args(tiny_bert_dir, earlier, *flags)], cwd=ROOT, env=ENV,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [expected, "(python main.py --help lists every flag)"]
    assert r.stdout == ""
    assert snapshot(earlier) == before


def test_not_enough_memory_is_refused(earlier, tiny_bert_dir, tmp_path, capsys, monkeypatch):
    from src import preflight
    from src.config import Config
    monkeypatch.setattr(preflight, "_mem_available", lambda: 1000)
    before = snapshot(earlier)
    rc, _, err = run_main(tiny_args(tiny_bert_dir, earlier), capsys)
    assert rc == 2 and "not enough memory: need about" in err and "Traceback" not in err
    assert snapshot(earlier) == before
    monkeypatch.setenv(preflight.SKIP_ENV, "1")  # the escape hatch turns the refusal into a warning
    est = preflight.check_resources(Config(output_dir=str(tmp_path)), 100, 20, 32, 10)
    assert est["memory"] > 1000


def test_resource_estimate_known_answer():
    from src.config import Config
    from src.preflight import resource_estimate
    cfg = Config(n_model=2, epochs=10)
    est = resource_estimate(cfg, n_all=18821, num_classes=20, hidden=384, model_bytes=0)
    assert est["trajectories"] == 2 * 10 * 18821 * 384 * 2            # M*E*N*D float16 = 289 MB
    assert est["memory"] == 2 * 10 * 18821 * 20 * 4 + 2 * 18821 * 10 * 384 * 4


@pytest.mark.parametrize("where", ["stage1", "stage2"])
def test_nan_stops_the_run(where, earlier, tiny_bert_dir, tmp_path, capsys, monkeypatch):
    """A NaN injected into a model's weights (stage 1) or into the trajectories (stage 2)
    stops the run with exit code 3 and a line naming the step; no results are written."""
    from src import stage1, variants
    if where == "stage1":
        real = stage1.load_classifier

        def poisoned(*a, **k):
            m = real(*a, **k)
            with torch.no_grad():
                m.classifier.bias[0] = float("nan")
            return m
        monkeypatch.setattr(stage1, "load_classifier", poisoned)
        expected = "stage 1: loss is nan at epoch 1, step 0"
    else:
        real = variants.trajectory_features

        def poisoned(z_m):
            w = real(z_m)
            w[3, 0] = np.nan
            return w
        monkeypatch.setattr(variants, "trajectory_features", poisoned)
        expected = "stage 2: loss is nan at epoch 1"
    out = tmp_path
    rc, stdout, err = run_main(tiny_args(tiny_bert_dir, out, *QUICK), capsys)
    assert rc == 3
    assert "Traceback" not in err and stdout == ""
    lines = [l for l in err.splitlines() if l.startswith("main.py: error:")]
    assert len(lines) == 1 and expected in lines[0], err
    assert not (out / "cache" / "runs").exists() or not any((out / "cache" / "runs").iterdir())
    assert not list((out / "cache").glob("*-results.logs"))


def test_rerun_never_overwrites_an_earlier_run(tmp_path):
    from src.outputs import append_results_log, new_run_dir
    a = new_run_dir(tmp_path, "same-name")
    (a / "metrics.json").write_text("first\n")
    b = new_run_dir(tmp_path, "same-name")  # same second, same name
    assert a != b and (a / "metrics.json").read_text() == "first\n"
    log = tmp_path / "20news-results.logs"
    append_results_log(log, {"seed": 1}, 0.5, 0.6)
    first = log.read_bytes()
    append_results_log(log, {"seed": 2}, 0.7, 0.8)
    assert log.read_bytes().startswith(first) and log.read_bytes().count(b"DyGen: ") == 2


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    from src.outputs import _atomic_write, atomic_write_json
    p = atomic_write_json(tmp_path / "m.json", {"a": 1})

    def crash(fh):
        fh.write(b"partial")
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        _atomic_write(p, crash)
    assert json.loads(p.read_text()) == {"a": 1}
    assert [f.name for f in tmp_path.iterdir()] == ["m.json"]  # no temporary file left


def test_full_disk_during_a_run_is_one_line_and_a_bug_still_raises(monkeypatch, capsys):
    import errno
    from src import pipeline

    def full(cfg):
        raise OSError(errno.ENOSPC, "No space left on device", "cache/stage1/x/z.npy")
    monkeypatch.setattr(pipeline, "run", full)
    rc, out, err = run_main(["--epochs", "1"], capsys)
    assert rc == 2 and "Traceback" not in err
    assert err.splitlines()[0] == "main.py: error: No space left on device (cache/stage1/x/z.npy)"

    def bug(cfg):
        raise ValueError("internal")
    monkeypatch.setattr(pipeline, "run", bug)
    with pytest.raises(ValueError):
        entry.main(["--epochs", "1"])
