"""A real run killed mid stage 1 (SIGINT, then SIGKILL) resumes and ends with exactly the
outputs of an uninterrupted run with the same seed (CPU: bit-identical)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, tiny_args

EPOCHS = 3
# One thread: fast on a shared 2-core machine, and the same thread count in every run.
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _args(tiny_bert_dir, out):
    return [sys.executable, "main.py", *tiny_args(tiny_bert_dir, out, "--epochs", str(EPOCHS))]


def _progress(out: Path) -> int:
    """Epochs recorded by the stage-1 checkpoint (0 when none)."""
    for p in (out / "cache" / "stage1").glob("*/ckpt/progress.json"):
        try:
            return json.loads(p.read_text())["epoch"]
        except (OSError, ValueError):
            return 0
    return 0


def _run_until(cmd, out: Path, epoch: int, sig, timeout=240):
    """Start cmd, wait for the checkpoint of `epoch`, send `sig`; return (rc, stderr)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while _progress(out) < epoch:
        if proc.poll() is not None:
            pytest.fail(f"run ended before epoch {epoch} was checkpointed: {proc.stderr.read()[-2000:]}")
        if time.time() - t0 > timeout:
            proc.kill()
            pytest.fail("no checkpoint in time")
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def _outputs(out: Path) -> dict:
    run = next((out / "cache" / "runs").iterdir())
    metrics = json.loads((run / "metrics.json").read_text())
    s1 = next((out / "cache" / "stage1").iterdir())
    return {"methods": {k: {**v, "seconds": 0} for k, v in metrics["methods"].items()},
            "val_acc": metrics["stage1_val_acc_noisy"], "best": metrics["stage1_best_epoch"],
            "detection": metrics["noise_detection"], "cleaning": metrics["label_cleaning"],
            "csv": (run / "corrected_labels.csv").read_bytes(),
            "z": (s1 / "z.npy").read_bytes(), "probs": (s1 / "probs.npy").read_bytes(),
            "resumed": metrics["stage1_resumed_after_epoch"], "ckpt_left": (s1 / "ckpt").exists()}


def test_killed_run_resumes_to_identical_outputs(tiny_bert_dir, tmp_path):
    ref, cut = tmp_path / "uninterrupted", tmp_path / "interrupted"
    r = subprocess.run(_args(tiny_bert_dir, ref), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stderr[-2000:]

    # Ctrl-C after epoch 1: clean exit 130, a message on how to resume, no traceback.
    rc, err = _run_until(_args(tiny_bert_dir, cut), cut, 1, signal.SIGINT)
    assert rc == 130, err[-2000:]
    assert "Traceback" not in err
    assert "re-run the same command to resume" in err
    assert not (cut / "cache" / "runs").exists() or not any((cut / "cache" / "runs").iterdir())

    # Same command: resumes after epoch 1; SIGKILL it once epoch 2 is checkpointed.
    rc, err = _run_until(_args(tiny_bert_dir, cut), cut, 2, signal.SIGKILL)
    assert rc == -signal.SIGKILL
    assert f"resuming stage 1 after epoch 1/{EPOCHS}" in err

    # Same command again: resumes after epoch 2 and completes.
    r = subprocess.run(_args(tiny_bert_dir, cut), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"resuming stage 1 after epoch 2/{EPOCHS}" in r.stderr

    a, b = _outputs(ref), _outputs(cut)
    assert a.pop("resumed") is None and b.pop("resumed") == 2
    assert not a.pop("ckpt_left") and not b.pop("ckpt_left")  # the heavy checkpoint is removed
    for key in a:
        assert a[key] == b[key], f"{key} differs after resuming"
