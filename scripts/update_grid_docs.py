#!/usr/bin/env python3
"""Rebuild the grids' figures in README.md and docs/results.md from the grid CSVs.

    python3 scripts/update_grid_docs.py            # every grid of src/grid_docs.GRIDS
    python3 scripts/update_grid_docs.py --check    # change nothing; exit 1 if the docs are stale

One CSV per dataset (docs/grid/trec/results.csv, docs/grid/20news/results.csv); a grid whose CSV
does not exist yet reads as "none finished". Only settings with every method's row count (a
half-run setting never enters a table). Also rebuilds each grid's results.md and
grid_accuracy.png beside its CSV (run_grid.py --report_only).
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
    p.add_argument("--readme", default=str(ROOT / "README.md"))
    p.add_argument("--results_md", default=str(ROOT / "docs/results.md"))
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if a generated block is stale")
    args = p.parse_args(argv)
    rows = {s.dataset: grid.read_rows(ROOT / s.csv) if (ROOT / s.csv).exists() else [] for s in grid_docs.GRIDS}
    paths = [Path(args.readme), Path(args.results_md)]
    old = [q.read_text() for q in paths]
    new = grid_docs.fill(old[0], old[1], rows)
    stale = [str(q) for q, a, b in zip(paths, old, new) if a != b]
    if args.check:
        print("stale: " + ", ".join(stale) if stale else "up to date")
        return 1 if stale else 0
    for q, text in zip(paths, new):
        q.write_text(text)
    import run_grid  # noqa: E402  (same folder)
    for spec in grid_docs.GRIDS:
        if rows[spec.dataset]:
            run_grid.main(["--report_only", "--results", str(ROOT / spec.csv), "--dataset", spec.dataset])
        print(f"{spec.dataset}: " + grid_docs.status_line(grid_docs.complete_rows(rows[spec.dataset]), spec.total))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
