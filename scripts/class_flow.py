#!/usr/bin/env python3
"""Where one class's training labels go: for each run folder, the rows GIVEN the class (and
what they really are), and the rows that really ARE the class (flagged by the dynamics score,
and what DyGen and cleanlab relabel them to). Reads corrected_labels.csv (needs clean labels).

    python3 scripts/class_flow.py "cache/runs/*-trec-ASN0.2-seed*" --label ABBR
"""
from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def class_flow(rows, label: str) -> dict:
    """Counts for one class from corrected_labels.csv rows (dicts)."""
    given = [r for r in rows if r["given_label"] == label]
    true = [r for r in rows if r["clean_label"] == label]
    return {"given": len(given), "given_really": Counter(r["clean_label"] for r in given),
            "true": len(true), "true_kept": sum(r["given_label"] == label for r in true),
            "true_flagged": sum(r["flagged"] == "1" for r in true),
            "true_dygen": Counter(r["dygen_label"] for r in true),
            "true_cleanlab": Counter(r["cleanlab_label"] for r in true)}


def _top(c: Counter, n: int = 3) -> str:
    return ", ".join(f"{k} {v}" for k, v in c.most_common(n))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="class_flow.py", description=__doc__.split("\n\n")[0])
    p.add_argument("runs", help="glob of run folders (quote it)")
    p.add_argument("--label", required=True, help="the class name, as in corrected_labels.csv")
    args = p.parse_args(argv)
    from src.outputs import run_folders
    runs = run_folders(args.runs, "corrected_labels.csv")
    if not runs:
        print(f"class_flow.py: error: no run folder with corrected_labels.csv matches {args.runs!r}", file=sys.stderr)
        return 2
    print(f"| run | rows given {args.label} (really: top 3) | rows truly {args.label} | kept their label | "
          f"flagged | DyGen relabels them to | cleanlab relabels them to |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for d in runs:
        rows = list(csv.DictReader(open(Path(d) / "corrected_labels.csv")))
        if not rows or rows[0].get("clean_label", "") == "":
            print(f"class_flow.py: error: {d} has no clean labels", file=sys.stderr)
            return 2
        f = class_flow(rows, args.label)
        print(f"| {Path(d).name} | {f['given']} ({_top(f['given_really'])}) | {f['true']} | {f['true_kept']} | "
              f"{f['true_flagged']} | {_top(f['true_dygen'])} | {_top(f['true_cleanlab'])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
