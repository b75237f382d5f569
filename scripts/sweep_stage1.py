#!/usr/bin/env python3
"""Stage-1 learning-rate / epoch sweep, chosen on NOISY validation accuracy (never test, never
clean labels). Each (lr, epochs) is one cached stage 1 (the grid reuses it when it matches).

    python scripts/sweep_stage1.py --dataset trec --lrs 3e-5 1e-4 3e-4 --epochs 5 \\
        --out docs/sweeps/trec.csv -- --train_batch_size 32      # flags after -- go to main.py

Prints and appends one row per (lr, epochs): the best noisy-validation ensemble accuracy, its
epoch, and the last epoch's; the chosen setting is the row with the highest best accuracy.
"""
from __future__ import annotations

import argparse
import csv
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COLUMNS = ["dataset", "noise_type", "noise_ratio", "seed", "lr", "epochs", "train_batch_size",
           "best_epoch", "val_acc_noisy_best", "val_acc_noisy_last", "val_acc_noisy_per_epoch", "stage1_hash"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="trec")
    p.add_argument("--lrs", nargs="+", type=float, default=[3e-5, 1e-4, 3e-4])
    p.add_argument("--epochs", nargs="+", type=int, default=[5])
    p.add_argument("--noise_type", default="SN")
    p.add_argument("--noise_ratio", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--output_dir", default="cache")
    p.add_argument("--out", required=True, help="CSV the rows are appended to")
    argv = list(sys.argv[1:] if argv is None else argv)
    rest = argv[argv.index("--") + 1:] if "--" in argv else []
    args = p.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    from src import pipeline
    from src.config import build_parser, make_config
    from src.runtime import allocator
    extra = vars(build_parser().parse_args(rest))
    out = Path(args.out)
    done = set()
    if out.exists():
        done = {(float(r["lr"]), int(r["epochs"])) for r in csv.DictReader(open(out))}
    for epochs in args.epochs:
        for lr in args.lrs:
            if (lr, epochs) in done:
                continue
            cfg = make_config(**{**extra, "dataset": args.dataset, "lr": lr, "epochs": epochs,
                                 "noise_type": args.noise_type, "noise_ratio": args.noise_ratio,
                                 "seed": args.seed, "output_dir": args.output_dir})
            rt = pipeline.setup(cfg)
            cfg, data, _ = pipeline.step_data(cfg, rt)      # the oracle is not looked at
            s1, info = pipeline.step_stage1(cfg, data, rt, pipeline.train_stage1_perf())
            allocator.release_free_memory()   # else each fine-tuning's peak stays resident
            acc = s1.val_acc_noisy
            row = [args.dataset, cfg.noise_type, cfg.noise_ratio, cfg.seed, lr, epochs, cfg.train_batch_size,
                   s1.best_epoch + 1, f"{max(acc):.4f}", f"{acc[-1]:.4f}", " ".join(f"{a:.4f}" for a in acc),
                   info["stage1_hash"]]
            new = not out.exists()
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(out, "a", newline="") as fh:
                w = csv.writer(fh)
                if new:
                    w.writerow(COLUMNS)
                w.writerow(row)
            print(dict(zip(COLUMNS, row)), flush=True)
    rows = list(csv.DictReader(open(out)))
    best = max(rows, key=lambda r: float(r["val_acc_noisy_best"]))
    print(f"chosen on noisy validation: lr {best['lr']}, epochs {best['epochs']} "
          f"(best epoch {best['best_epoch']}, noisy-validation acc {best['val_acc_noisy_best']})")
    return 0


if __name__ == "__main__":
    from src.runtime.allocator import reexec_with_jemalloc
    reexec_with_jemalloc()  # as main.py and run_grid.py do: stage 1 runs in this process
    sys.exit(main())
