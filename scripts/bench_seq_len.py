#!/usr/bin/env python3
"""Benchmark (not a test): MiniLM step time against sequence length, side by side in one process.

    python3 scripts/bench_seq_len.py --lengths 16 128 --rounds 2

Times one training step (forward, backward, AdamW) and one forward pass on a random batch at
each length, alternating the lengths for --rounds rounds so that a busy machine slows them
alike; prints seconds per batch and each length's ratio to the first. Used to size a dataset's
grid from a measured one (docs/results.md): only the ratios carry over between machines.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench_common import add_timing_flags, minilm  # noqa: E402  (scripts/, beside this file)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lengths", nargs="+", type=int, default=[16, 128])
    add_timing_flags(p, reps=4)
    a = p.parse_args(argv)
    import torch
    model = minilm(a.threads)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = {L: ([], []) for L in a.lengths}
    for _ in range(a.rounds):
        for L in a.lengths:
            x = torch.randint(1000, 20000, (a.batch, L))
            y = torch.randint(0, 20, (a.batch,))
            mask = torch.ones_like(x)
            model.train()
            t = time.perf_counter()
            for _ in range(a.reps):
                model(input_ids=x, attention_mask=mask, labels=y).loss.backward()
                opt.step()
                opt.zero_grad()
            times[L][0].append((time.perf_counter() - t) / a.reps)
            model.eval()
            t = time.perf_counter()
            with torch.no_grad():
                for _ in range(a.reps):
                    model(input_ids=x, attention_mask=mask)
            times[L][1].append((time.perf_counter() - t) / a.reps)
    med = {L: tuple(sorted(v)[len(v) // 2] for v in times[L]) for L in a.lengths}
    base = med[a.lengths[0]]
    print(f"batch {a.batch}, {a.threads} thread(s), median over {a.rounds} round(s) of {a.reps} steps")
    print("| tokens | train step (s) | forward (s) | train ratio | forward ratio |")
    print("| --- | --- | --- | --- | --- |")
    for L in a.lengths:
        tr, fw = med[L]
        print(f"| {L} | {tr:.3f} | {fw:.3f} | {tr / base[0]:.1f}x | {fw / base[1]:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
