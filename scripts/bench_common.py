"""What the side-by-side MiniLM benchmarks (bench_seq_len.py, bench_cpu_bf16.py) share: their
timing flags and the model they time."""
from __future__ import annotations

import argparse


def add_timing_flags(p: argparse.ArgumentParser, reps: int) -> None:
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--reps", type=int, default=reps, help="steps timed per variant and round")
    p.add_argument("--rounds", type=int, default=2, help="rounds, the variants alternating within each")
    p.add_argument("--threads", type=int, default=1)


def minilm(threads: int, num_labels: int = 20):
    """The embedded all-MiniLM-L6-v2 as a classifier, seeded, on `threads` threads."""
    import torch
    from src.model.loading import load_classifier, resolve_model_dir
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    return load_classifier(resolve_model_dir("embedded"), num_labels, 1)
