#!/usr/bin/env python3
"""Rebuild the grid's figures in README.md and docs/results.md from the grid CSV.

    python3 scripts/update_grid_docs.py                       # docs/grid/trec.csv, 18 settings
    python3 scripts/update_grid_docs.py --check               # exit 1 if the docs are stale

Only settings with every method's row count (a half-run setting never enters a table). Also
rebuilds docs/grid/results.md and grid_accuracy.png (run_grid.py --report_only).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    from src import grid, grid_docs
    p = argparse.ArgumentParser(prog="update_grid_docs.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--results", default=str(ROOT / "docs/grid/trec.csv"))
    p.add_argument("--readme", default=str(ROOT / "README.md"))
    p.add_argument("--results_md", default=str(ROOT / "docs/results.md"))
    p.add_argument("--total", type=int, default=18, help="settings the grid has in all (noise types x ratios x seeds)")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if a generated block is stale")
    args = p.parse_args(argv)
    rows = grid.read_rows(Path(args.results))
    paths = [Path(args.readme), Path(args.results_md)]
    old = [q.read_text() for q in paths]
    new = grid_docs.fill(old[0], old[1], rows, args.total)
    stale = [str(q) for q, a, b in zip(paths, old, new) if a != b]
    if args.check:
        print("stale: " + ", ".join(stale) if stale else "up to date")
        return 1 if stale else 0
    for q, text in zip(paths, new):
        q.write_text(text)
    import run_grid  # noqa: E402  (same folder)
    run_grid.main(["--report_only", "--results", args.results, "--dataset", rows[0]["dataset"] if rows else "trec"])
    print(grid_docs.status_line(grid_docs.complete_rows(rows), args.total))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
