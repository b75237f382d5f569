#!/usr/bin/env python3
"""Rerun one setting of a committed grid from scratch and check it lands within the seed spread.

    python3 scripts/reproduce_cell.py --results docs/grid/trec/results.csv --noise_type SN --ratio 0.2 \\
        --seed 1 --output_dir /tmp/repro

Reads the grid's command from grid_command.txt beside the CSV, runs that grid for the one
(noise type, ratio, seed) in an EMPTY --output_dir (so stage 1 is retrained, nothing is read
from a cache) and prints, per method, the committed value at that seed, the rerun's, and the
committed mean ± std over seeds. Exit status 0 when every method is within its seed spread
(|rerun - committed| <= std over seeds), 1 otherwise, 2 for bad input.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def grid_argv(command: str):
    """The run_grid.py arguments of a saved grid command, without the python/script words."""
    words = shlex.split(command)
    i = next((k for k, w in enumerate(words) if w.endswith("run_grid.py")), None)
    if i is None:
        raise ValueError(f"not a run_grid.py command: {command!r}")
    return words[i + 1:]


def override(argv, **flags):
    """Replace (or add) grid-level flags before the `--` that starts main.py's flags."""
    cut = argv.index("--") if "--" in argv else len(argv)
    head, tail = argv[:cut], argv[cut:]
    out, skip = [], False
    for w in head:
        if w.startswith("--"):
            skip = w[2:] in flags
        if not skip:
            out.append(w)
    for k, v in flags.items():
        out += [f"--{k}", *map(str, v if isinstance(v, (list, tuple)) else [v])]
    return out + tail


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="reproduce_cell.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--results", required=True, help="the committed grid CSV (grid_command.txt beside it)")
    p.add_argument("--noise_type", required=True)
    p.add_argument("--ratio", type=float, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--output_dir", required=True, help="must be empty or absent: nothing may come from a cache")
    p.add_argument("--metric", default="test_acc")
    a = p.parse_args(argv)
    from src import grid
    csv_path = Path(a.results)
    cmd_file = csv_path.parent / "grid_command.txt"
    out = Path(a.output_dir)
    if not csv_path.exists() or not cmd_file.exists():
        print(f"reproduce_cell.py: error: need {csv_path} and {cmd_file}", file=sys.stderr)
        return 2
    if out.exists() and any(out.iterdir()):
        print(f"reproduce_cell.py: error: {out} is not empty; a reproduction must not reuse a cache", file=sys.stderr)
        return 2
    committed = grid.read_rows(csv_path)
    if not any((r["noise_type"], float(r["noise_ratio"]), int(r["seed"])) == (a.noise_type, a.ratio, a.seed)
               for r in committed):
        print(f"reproduce_cell.py: error: {csv_path} has no row for {a.noise_type} {a.ratio:g} seed {a.seed}",
              file=sys.stderr)
        return 2
    import run_grid
    rerun_csv = out / "results.csv"
    argv_grid = override(grid_argv(cmd_file.read_text().strip()), noise_types=a.noise_type, ratios=a.ratio,
                         seeds=a.seed, output_dir=out, results=rerun_csv)
    print("running: python3 scripts/run_grid.py " + " ".join(shlex.quote(w) for w in argv_grid), flush=True)
    rc = run_grid.main(argv_grid)
    if rc:
        return rc
    rep = grid.reproduction(committed, grid.read_rows(rerun_csv), a.noise_type, a.ratio, a.seed, a.metric)
    print(f"\n{a.noise_type} {100 * a.ratio:g}% seed {a.seed}, {a.metric}: committed (this seed) vs rerun, "
          "and the committed spread over seeds")
    print("| method | committed | rerun | diff | seeds mean ± std (n) | within spread | same config |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rep:
        w = "n/a (1 seed)" if r["within"] is None else ("yes" if r["within"] else "NO")
        print(f"| {r['method']} | {r['committed']:.4f} | {r['rerun']:.4f} | {r['diff']:+.4f} | "
              f"{r['seed_mean']:.4f} ± {r['seed_std']:.4f} ({r['n_seeds']}) | {w} | {'yes' if r['same_config'] else 'NO'} |")
    return 0 if rep and all(r["within"] is not False for r in rep) else 1


if __name__ == "__main__":
    from src.runtime.allocator import reexec_with_jemalloc
    reexec_with_jemalloc()
    sys.exit(main())
