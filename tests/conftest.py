"""Shared fixtures: a tiny random BERT (fast stand-in for the real model) and helpers."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def embedded_model_dir() -> str:
    from src.model.loading import resolve_model_dir
    return resolve_model_dir("embedded")


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory, embedded_model_dir) -> str:
    """A 2-layer, width-32 BERT with random weights and the real MiniLM tokenizer."""
    from transformers import BertConfig, BertModel
    import torch
    d = tmp_path_factory.mktemp("tiny_bert")
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=512)
    BertModel(cfg).save_pretrained(d)
    for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        src = Path(embedded_model_dir) / f
        if src.exists():
            shutil.copy(src, d / f)
    return str(d)


def tiny_args(tiny_bert_dir: str, out: Path, *extra: str) -> list:
    """Arguments of a small, fast, real end-to-end run on 20 Newsgroups documents."""
    return ["--bert", tiny_bert_dir, "--output_dir", str(out / "cache"), "--model_dir", str(out / "model_save"),
            "--path", str(out / "datasets"), "--max_train_samples", "80", "--max_test_samples", "40",
            "--max_len", "32", "--epochs", "2", "--train_batch_size", "16", "--eval_batch_size", "64",
            "--vae_epochs", "3", "--lr", "1e-3", *extra]
