#!/usr/bin/env python3
"""The experiment grid: noise types x ratios x seeds x methods, on one dataset.

    python scripts/run_grid.py --preset quick            # SN/ASN/IDN x 20%/40% x seeds 1-3, 20news
    python scripts/run_grid.py --noise_types SN --ratios 0.2 --seeds 1 2 --methods dygen,cr \\
        -- --max_train_samples 200 --epochs 4          # anything after -- goes to main.py's flags

Resumable: a cell (setting, method) already in <output_dir>/results.csv with the same
configuration hash is never recomputed; stage 1 is cached per setting, so adding a method
later costs only its stage 2. Writes results.csv (one row per cell), results.md (mean ±
std over seeds, best in bold, paired comparisons) and grid_accuracy.png.
"""
from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def parse(argv):
    from src.grid import GRID_PRESETS
    from src.methods import METHODS
    p = argparse.ArgumentParser(prog="run_grid.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(GRID_PRESETS), help="quick: SN/ASN/IDN x 0.2/0.4 x seeds 1 2 3 with "
                   "main.py --preset grid (200 documents of 20news, 200 test)")
    p.add_argument("--noise_types", nargs="+", help="default: the preset's, else SN")
    p.add_argument("--ratios", nargs="+", type=float, help="default: the preset's, else 0.2")
    p.add_argument("--seeds", nargs="+", type=int, help="default: the preset's, else 1")
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated, from: " + ", ".join(METHODS))
    p.add_argument("--dataset", default="20news")
    p.add_argument("--output_dir", default="cache", help="results.csv, results.md, the caches and run folders")
    p.add_argument("--results", default=None, help="the results CSV (default <output_dir>/results.csv); "
                   "results.md and grid_accuracy.png go beside it")
    p.add_argument("--no_cleanlab", action="store_true", help="skip the cleanlab detection baseline")
    p.add_argument("--report_only", action="store_true", help="only rebuild results.md and the plot")
    argv = list(sys.argv[1:] if argv is None else argv)
    rest = []
    if "--" in argv:
        i = argv.index("--")
        argv, rest = argv[:i], argv[i + 1:]
    return p.parse_args(argv), rest


def main_flags(rest):
    """main.py flags after `--` -> make_config keyword arguments (types from the Config parser)."""
    from src.config import build_parser
    return vars(build_parser().parse_args(rest))


def main(argv=None) -> int:
    from src import grid, plots
    from src.errors import UserError
    from src.methods import parse_methods
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    args, rest = parse(argv)
    preset = grid.GRID_PRESETS.get(args.preset, {})
    try:
        methods = parse_methods(args.methods)
        main_args = {"dataset": args.dataset, **({"preset": preset["preset"]} if preset else {}), **main_flags(rest)}
    except UserError as e:
        print(f"run_grid.py: error: {e}", file=sys.stderr)
        return 2
    out = Path(args.output_dir)
    csv_path = Path(args.results) if args.results else out / "results.csv"
    report = csv_path.parent
    command = "python scripts/run_grid.py " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    t0 = time.perf_counter()
    from src.outputs import atomic_write_text
    if args.report_only:   # the table names the command that ran the grid, not this one
        rows = grid.read_rows(csv_path)
        saved = report / "grid_command.txt"
        command = saved.read_text().strip() if saved.exists() else command
    else:
        atomic_write_text(report / "grid_command.txt", command + "\n")
        rows = grid.run_grid(out, noise_types=args.noise_types or preset.get("noise_types", ("SN",)),
                             ratios=args.ratios or preset.get("ratios", (0.2,)),
                             seeds=args.seeds or preset.get("seeds", (1,)), methods=methods, main_args=main_args,
                             compare_cleanlab=not args.no_cleanlab, csv_path=csv_path)
    atomic_write_text(report / "results.md", grid.results_markdown(rows, methods, command))
    series = grid.accuracy_series(rows, methods)
    if series:
        plots.accuracy_vs_noise(series, report / "grid_accuracy.png",
                                title=f"{args.dataset}: test accuracy vs noise ratio (mean +- std over seeds)")
    logging.info("grid: %d rows in %s (this call %.1f min); table %s", len(rows), csv_path,
                 (time.perf_counter() - t0) / 60, report / "results.md")
    return 0


if __name__ == "__main__":
    from src.runtime.allocator import reexec_with_jemalloc
    reexec_with_jemalloc()  # as main.py does: the grid runs pipeline.run in this process
    sys.exit(main())
