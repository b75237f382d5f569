#!/usr/bin/env python3
"""Benchmark (not a test): MiniLM on the CPU in fp32 against bf16 autocast, side by side.

    python3 scripts/bench_cpu_bf16.py --length 128 --rounds 2

Times one training step (forward, backward, AdamW) and one forward pass on the same random
batch in both precisions, alternating them for --rounds rounds so that a busy machine slows
them alike; prints seconds per batch, the bf16/fp32 speed ratio, and how far bf16's [CLS]
embeddings and logits are from fp32's on that batch. Only the ratio carries over between
machines, and only between CPUs alike: bf16 is fast only where the CPU has bf16 instructions
(`avx512_bf16` / `amx_bf16` in /proc/cpuinfo, printed below).
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench_common import add_timing_flags, minilm  # noqa: E402  (scripts/, beside this file)


def cpu_bf16_flags() -> str:
    try:
        flags = next(l for l in open("/proc/cpuinfo") if l.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown"
    have = [f for f in flags if f in ("avx512_bf16", "amx_bf16", "avx512_fp16", "amx_tile")]
    return " ".join(have) or "none"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--length", type=int, default=128)
    add_timing_flags(p, reps=3)
    a = p.parse_args(argv)
    import torch
    base = minilm(a.threads)
    models = {"fp32": base, "bf16": copy.deepcopy(base)}
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-4) for k, m in models.items()}
    x = torch.randint(1000, 20000, (a.batch, a.length))
    y = torch.randint(0, 20, (a.batch,))
    mask = torch.ones_like(x)
    ctx = {"fp32": lambda: torch.autocast("cpu", enabled=False),
           "bf16": lambda: torch.autocast("cpu", dtype=torch.bfloat16)}

    # accuracy first, on the untouched weights: the same batch through both precisions
    outs = {}
    for k, m in models.items():
        m.eval()
        with torch.no_grad(), ctx[k]():
            o = m(input_ids=x, attention_mask=mask, output_hidden_states=True)
        outs[k] = (o.hidden_states[-1][:, 0].float(), o.logits.float())
    cls_err = ((outs["bf16"][0] - outs["fp32"][0]).norm(dim=1) / outs["fp32"][0].norm(dim=1)).max().item()
    logit_err = (outs["bf16"][1] - outs["fp32"][1]).abs().max().item()

    times = {k: ([], []) for k in models}
    for _ in range(a.rounds):
        for k, m in models.items():
            m.train()
            t = time.perf_counter()
            for _ in range(a.reps):
                with ctx[k]():
                    loss = m(input_ids=x, attention_mask=mask, labels=y).loss
                loss.backward()
                opts[k].step()
                opts[k].zero_grad()
            times[k][0].append((time.perf_counter() - t) / a.reps)
            m.eval()
            t = time.perf_counter()
            with torch.no_grad(), ctx[k]():
                for _ in range(a.reps):
                    m(input_ids=x, attention_mask=mask)
            times[k][1].append((time.perf_counter() - t) / a.reps)
    med = {k: tuple(sorted(v)[len(v) // 2] for v in times[k]) for k in models}
    print(f"CPU bf16 flags: {cpu_bf16_flags()}; batch {a.batch} x {a.length} tokens, {a.threads} thread(s), "
          f"median over {a.rounds} round(s) of {a.reps} steps")
    print("| precision | train step (s) | forward (s) |")
    print("| --- | --- | --- |")
    for k in models:
        print(f"| {k} | {med[k][0]:.3f} | {med[k][1]:.3f} |")
    print(f"bf16 speed-up: train step {med['fp32'][0] / med['bf16'][0]:.2f}x, forward {med['fp32'][1] / med['bf16'][1]:.2f}x")
    print(f"bf16 vs fp32 on the same batch: [CLS] embedding relative error max {cls_err:.4f}, "
          f"logit abs error max {logit_err:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
