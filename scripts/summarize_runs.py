"""Mean and spread over seeds of the runs under an output folder.

    python scripts/summarize_runs.py cache      # reads cache/runs/*/{config,metrics}.json

One row per (dataset, noise type, noise ratio): number of seeds, base and DyGen test
accuracy (mean +- sample std, and the per-seed values), DyGen minus base per seed, the
dynamics score's AUROC, given vs DyGen label accuracy on train+validation, wall time.
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np


def load_runs(output_dir: Path):
    for run in sorted((output_dir / "runs").glob("*/metrics.json")):
        cfg = json.loads((run.parent / "config.json").read_text())
        yield cfg, json.loads(run.read_text())


def fmt(values, digits: int = 4) -> str:
    v = np.asarray(values, dtype=float)
    sd = v.std(ddof=1) if len(v) > 1 else 0.0
    return f"{v.mean():.{digits}f} +- {sd:.{digits}f}"


def summarize(output_dir: Path) -> str:
    groups = defaultdict(dict)
    for cfg, m in load_runs(output_dir):
        if "test" not in m.get("methods", {}).get("dygen", {}):
            continue
        key = (cfg["dataset"], cfg["noise_type"], cfg["noise_ratio"])
        groups[key][cfg["seed"]] = m  # a later run of the same seed replaces an earlier one
    lines = ["| dataset | noise | seeds | cr acc | DyGen acc | DyGen - cr per seed | score AUROC (train) "
             "| given label acc | DyGen label acc | wall time (s) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for (ds, nt, r), by_seed in sorted(groups.items()):
        seeds = sorted(by_seed)
        ms = [by_seed[s] for s in seeds]
        base = [m["methods"]["cr"]["test"]["accuracy"] for m in ms]
        dyg = [m["methods"]["dygen"]["test"]["accuracy"] for m in ms]
        gain = ", ".join(f"{d - b:+.3f}" for d, b in zip(dyg, base))
        auroc = [m["noise_detection"]["train_rows"]["auroc"] for m in ms if "noise_detection" in m]
        lc = [m["methods"]["dygen"]["label_correction"] for m in ms if "label_correction" in m["methods"]["dygen"]]
        lines.append(f"| {ds} | {nt} {r:.0%} | {','.join(map(str, seeds))} | {fmt(base)} | {fmt(dyg)} | {gain} "
                     f"| {fmt(auroc) if auroc else 'n/a'} "
                     f"| {fmt([x['given_label_acc'] for x in lc]) if lc else 'n/a'} "
                     f"| {fmt([x['label_acc'] for x in lc]) if lc else 'n/a'} "
                     f"| {fmt([m['timings_s']['total'] for m in ms], 1)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarize(Path(sys.argv[1] if len(sys.argv) > 1 else "cache")))
