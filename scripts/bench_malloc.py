"""Benchmark (not a test): one embedding batch under glibc's malloc and under jemalloc (src/runtime/allocator.py).

    python scripts/bench_malloc.py               # 6 alternating pairs of processes, ~2 min on 2 cores
    python scripts/bench_malloc.py --pairs 10 --length 150

Each process loads the model, runs one thread (as each model does in stage 1's threads), embeds
one batch as warm-up, then times --reps more (best of them) and counts its minor page faults
per batch. The two mallocs alternate process by process, so the machine's drift hits both alike;
it prints every process and the medians.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def probe(bert: str, batch: int, length: int, reps: int) -> dict:
    """Runs in the child process: best seconds and minor page faults per embedding batch."""
    from src.runtime.allocator import active, reexec_with_jemalloc
    reexec_with_jemalloc()
    import torch
    from src.model.loading import load_classifier, resolve_model_dir
    torch.set_num_threads(1)
    model = load_classifier(resolve_model_dir(bert), 20, seed=0).eval()
    ids = torch.randint(1000, 30000, (batch, length), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    times = []
    with torch.inference_mode():
        model(input_ids=ids, attention_mask=mask)
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(reps):
            t0 = time.perf_counter()
            model(input_ids=ids, attention_mask=mask)
            times.append(time.perf_counter() - t0)
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / reps
    return {"malloc": active(), "seconds": min(times), "faults": faults}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=6)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--length", type=int, default=64)
    p.add_argument("--reps", type=int, default=4)
    p.add_argument("--bert", default="embedded")
    p.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.probe:
        print(json.dumps(probe(args.bert, args.batch, args.length, args.reps)))
        return 0
    from src.runtime.allocator import find_jemalloc
    if find_jemalloc() is None:
        print("bench_malloc: no libjemalloc on this machine (apt-get install libjemalloc2)", file=sys.stderr)
        return 2
    rows = {"system": [], "jemalloc": []}
    cmd = [sys.executable, __file__, "--probe", "--bert", args.bert, "--batch", str(args.batch),
           "--length", str(args.length), "--reps", str(args.reps)]
    for i in range(args.pairs):
        for name in rows:
            env = {k: v for k, v in os.environ.items() if not k.startswith("DYGEN_ALLOCATOR")}
            env["DYGEN_ALLOCATOR"] = "system" if name == "system" else "auto"
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            assert r["malloc"] == name, r
            rows[name].append(r)
            print(f"pair {i + 1}  {name:8s}  {r['seconds']:.3f} s  {r['faults']:,.0f} page faults per batch")
    import numpy as np
    med = {k: float(np.median([r["seconds"] for r in v])) for k, v in rows.items()}
    faults = {k: float(np.median([r["faults"] for r in v])) for k, v in rows.items()}
    wins = sum(j["seconds"] < s["seconds"] for s, j in zip(rows["system"], rows["jemalloc"]))
    print(f"median of {args.pairs} (batch {args.batch} x {args.length} tokens, one thread): system "
          f"{med['system']:.3f} s ({faults['system']:,.0f} faults), jemalloc {med['jemalloc']:.3f} s "
          f"({faults['jemalloc']:,.0f} faults): {med['jemalloc'] / med['system'] - 1:+.1%}; "
          f"jemalloc faster in {wins} of {args.pairs} pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
