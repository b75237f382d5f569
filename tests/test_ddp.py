"""Stage 1 under torchrun (DDP, gloo, 2 CPU processes) gives the single-process results.

A tiny BERT without dropout (dropout masks are drawn per rank, so with dropout the two runs
are equivalent in distribution, not equal), TREC questions of varied lengths (bucketed
batches, per-rank padding) and an odd batch size (uneven shards).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def tiny_bert_nodrop(tmp_path_factory, embedded_model_dir) -> str:
    from transformers import BertConfig, BertModel
    import torch
    d = tmp_path_factory.mktemp("tiny_bert_nodrop")
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=512, hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0)
    BertModel(cfg).save_pretrained(d)
    for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (Path(embedded_model_dir) / f).exists():
            shutil.copy(Path(embedded_model_dir) / f, d / f)
    return str(d)


def _args(model: str, out: Path) -> list:
    return ["main.py", "--dataset", "trec", "--bert", model, "--output_dir", str(out / "cache"),
            "--path", str(out / "ds"), "--max_train_samples", "90", "--max_test_samples", "30",
            "--max_len", "32", "--epochs", "2", "--train_batch_size", "15", "--eval_batch_size", "16",
            "--vae_epochs", "2", "--lr", "1e-3", "--length_bucket", "2"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stage1(out: Path):
    (s1,) = list((out / "cache" / "stage1").iterdir())
    meta = json.loads((s1 / "meta.json").read_text())
    return np.load(s1 / "z.npy"), np.load(s1 / "probs.npy"), meta


def test_torchrun_two_processes_match_one(tiny_bert_nodrop, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    r = subprocess.run([sys.executable, *_args(tiny_bert_nodrop, one)], cwd=ROOT, env=ENV,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), *_args(tiny_bert_nodrop, two)]
    r2 = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert "2 processes (rank 0)" in r2.stderr

    z1, p1, m1 = _stage1(one)
    z2, p2, m2 = _stage1(two)
    assert z1.shape == z2.shape and p1.shape == p2.shape
    assert np.abs(p1 - p2).max() < 1e-4
    # float16 trajectories: a last-bit float32 difference may round to the neighbouring half
    assert np.abs(z1.astype(np.float32) - z2.astype(np.float32)).max() < 2e-3
    assert m1["best_epoch"] == m2["best_epoch"]
    assert np.allclose(m1["val_acc_noisy"], m2["val_acc_noisy"])
    # only rank 0 wrote: one run folder, one results block
    assert len(list((two / "cache" / "runs").iterdir())) == 1
    assert (two / "cache" / "trec-results.logs").read_text().count("DyGen:") == 1
    assert r2.stdout.count("test DyGen") == 1
