#!/usr/bin/env python3
"""Per-class test recall of each method, averaged over run folders: which classes a method
gives up (macro-F1 says that some class suffers, this says which).

    python3 scripts/per_class_recall.py "cache/runs/*-trec-SN0.4-seed*" --methods cr npc dygen

Reads each run folder's test_predictions.npz and label_map.json; prints one markdown table
(rows: methods; columns: classes with their test count; entries: mean recall % over the runs
that hold the method's predictions, and the per-run values). A grid setting can span two run
folders (`single` alone in one), so a method's runs are those that hold it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    from src.model.evaluate import per_class_recall
    from src.outputs import run_folders
    p = argparse.ArgumentParser(prog="per_class_recall.py", description=__doc__.split("\n\n")[0])
    p.add_argument("runs", help="glob of run folders (quote it)")
    p.add_argument("--methods", nargs="+", default=["cr", "npc", "dygen"])
    args = p.parse_args(argv)
    runs = run_folders(args.runs, "test_predictions.npz")
    if not runs:
        print(f"per_class_recall.py: error: no run folder with test_predictions.npz matches {args.runs!r}",
              file=sys.stderr)
        return 2
    names = None
    rec = {m: [] for m in args.methods}
    for d in runs:
        z = np.load(Path(d) / "test_predictions.npz")
        lm = json.loads((Path(d) / "label_map.json").read_text())
        run_names = [k for k, _ in sorted(lm.items(), key=lambda kv: kv[1])]
        if names is not None and run_names != names:
            print(f"per_class_recall.py: error: {d} has other classes than {runs[0]}", file=sys.stderr)
            return 2
        names, y = run_names, z["test_labels"]
        counts = np.bincount(y[y >= 0], minlength=len(names))
        for m in args.methods:
            key = m.replace("-", "_") + "_probs"
            if key in z.files:
                rec[m].append(per_class_recall(z[key], y, len(names)))
    missing = [m for m in args.methods if not rec[m]]
    if missing:
        print(f"per_class_recall.py: error: no run folder matching {args.runs!r} has {', '.join(missing)} "
              "predictions", file=sys.stderr)
        return 2
    n_runs = sorted({len(v) for v in rec.values()})
    print(f"Test recall per class (%), mean over {'/'.join(map(str, n_runs))} run(s) [per run]:\n")
    print("| method | " + " | ".join(f"{n} ({c})" for n, c in zip(names, counts)) + " |")
    print("| --- |" + " --- |" * len(names))
    for m in args.methods:
        r = 100 * np.array(rec[m])
        cells = [f"{np.nanmean(r[:, c]):.0f} [{'/'.join(f'{v:.0f}' for v in r[:, c])}]" for c in range(len(names))]
        print(f"| {m} | " + " | ".join(cells) + " |")
    print("\nRuns: " + ", ".join(Path(d).name for d in runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
