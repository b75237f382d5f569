"""Benchmark (not a test): the held-out noise-rate estimate against the true rate on real
data corrupted at known rates.

    python3 scripts/bench_noise_rate.py --output_dir /work/nr_bench      # about 4 minutes a row

For each dataset x noise type (SN, IDN) x rate (0 .. 0.4) it runs the real stage 1 (cached by
configuration under --output_dir, so a rerun is cheap), takes the stage-1 ensemble's
probabilities on the validation split at the selected epoch (the models never trained on
it), estimates the noise rate from them and the validation split's noisy labels
(src/dynamics/noise_rate.py) and compares with the rate realised on that split (beside it,
cleanlab's confident-joint estimate on the same probabilities). Each
finished row is appended to <output_dir>/bench_noise_rate.csv and rows already there are
skipped, so an interrupted run resumes. The table and the worst absolute error are
printed at the end. Target: |error| <= 0.05 everywhere, estimate never above 0.5.
"""
from __future__ import annotations

import argparse
import csv
import logging
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from src.config import make_config  # noqa: E402
from src.data.prepare import prepare_data  # noqa: E402
from src.dynamics.noise_rate import confident_joint_rate, estimate_noise_rate  # noqa: E402
from src.model.loading import load_tokenizer, resolve_model_dir  # noqa: E402
from src.stage1 import run_stage1  # noqa: E402

FIELDS = ("dataset", "noise_type", "noise_ratio", "true_rate", "estimate", "ci_low", "ci_high",
          "abs_error", "method", "cleanlab_joint", "n_val", "val_acc_noisy")
# Sized so the validation split holds 800-1,000 samples: with 400, the estimate's sampling error
# alone (bootstrap half-width ~0.06 at a 20% rate) spanned the +-0.05 target. trec: all 5,452
# questions (990 validation); r8: 4,000 documents (800). Max length 32 keeps a row to a few
# minutes on 2 CPU cores (an r8 document opens with its title).
DATASET_SETTINGS = {"trec": dict(max_len=32, max_train_samples=None), "r8": dict(max_len=32, max_train_samples=4000)}


def prepare(cfg, tokenizer, model_dir, device):
    """(the method's data, the clean train+validation labels: only to score the estimate)."""
    data, oracle = prepare_data(cfg, tokenizer, model_dir, device)
    return data, oracle.clean_trval


def bench_row(dataset: str, noise_type: str, ratio: float, args, tokenizer, model_dir, device) -> dict:
    settings = dict(DATASET_SETTINGS[dataset])
    if args.max_train_samples is not None:
        settings["max_train_samples"] = args.max_train_samples
    cfg = make_config(dataset=dataset, noise_type=noise_type, noise_ratio=ratio, seed=args.seed,
                      max_test_samples=args.max_test_samples,
                      epochs=args.epochs, train_batch_size=args.train_batch_size, lr=args.lr,
                      n_model=args.n_model, output_dir=args.output_dir, path=str(ROOT / "datasets"),
                      **settings)
    data, clean_trval = prepare(cfg, tokenizer, model_dir, device)
    s1, _, _ = run_stage1(cfg, data, tokenizer, model_dir, device)
    val = slice(data.n_train, data.n_trval)
    probs = np.asarray(s1.probs[:, s1.best_epoch, val], dtype=np.float64).mean(0)   # (N_val, C)
    noisy = np.asarray(data.noisy[val])
    est = estimate_noise_rate(noisy, probs, num_classes=data.num_classes, seed=args.seed)
    true = float((noisy != clean_trval[val]).mean())
    return {"dataset": dataset, "noise_type": noise_type, "noise_ratio": ratio, "true_rate": round(true, 4),
            "estimate": round(est.rate, 4), "ci_low": round(est.ci_low, 4), "ci_high": round(est.ci_high, 4),
            "abs_error": round(abs(est.rate - true), 4), "method": est.method,
            "cleanlab_joint": round(confident_joint_rate(noisy, probs), 4), "n_val": data.n_val,
            "val_acc_noisy": round(float(s1.val_acc_noisy[s1.best_epoch]), 4)}


def done_rows(path: Path) -> dict:
    if not path.exists():
        return {}
    with open(path, newline="") as fh:
        return {(r["dataset"], r["noise_type"], float(r["noise_ratio"])): r for r in csv.DictReader(fh)}


def append_row(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        if new:
            w.writeheader()
        w.writerow(row)


def print_table(rows) -> None:
    print(f"{'dataset':8} {'noise':5} {'given':>5} {'true':>6} {'est':>6} {'95% CI':>15} {'|err|':>6} "
          f"{'cleanlab':>8} {'val acc':>7}  method")
    for r in rows:
        ci = f"[{float(r['ci_low']):.3f}, {float(r['ci_high']):.3f}]"
        print(f"{r['dataset']:8} {r['noise_type']:5} {float(r['noise_ratio']):5.2f} {float(r['true_rate']):6.3f} "
              f"{float(r['estimate']):6.3f} {ci:>15} {float(r['abs_error']):6.3f} "
              f"{float(r['cleanlab_joint']):8.3f} {float(r['val_acc_noisy']):7.3f}  {r['method']}")
    if rows:
        worst = max(rows, key=lambda r: float(r["abs_error"]))
        print(f"worst |error| {float(worst['abs_error']):.3f} ({worst['dataset']} {worst['noise_type']} "
              f"{float(worst['noise_ratio']):.2f}); highest estimate "
              f"{max(float(r['estimate']) for r in rows):.3f}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="trec,r8")
    p.add_argument("--noise_types", default="SN,IDN")
    p.add_argument("--ratios", default="0,0.1,0.2,0.3,0.4")
    p.add_argument("--output_dir", default="/tmp/h4_bench")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max_train_samples", type=int, default=None,
                   help="documents per dataset (default: DATASET_SETTINGS')")
    p.add_argument("--max_test_samples", type=int, default=200)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--train_batch_size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--n_model", type=int, default=2)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    csv_path = Path(args.output_dir) / "bench_noise_rate.csv"
    model_dir = resolve_model_dir("embedded")
    tokenizer, device = load_tokenizer(model_dir), torch.device("cpu")
    rows = done_rows(csv_path)
    for dataset in args.datasets.split(","):
        for noise_type in args.noise_types.split(","):
            for ratio in (float(r) for r in args.ratios.split(",")):
                key = (dataset, noise_type, ratio)
                if key not in rows:
                    rows[key] = bench_row(dataset, noise_type, ratio, args, tokenizer, model_dir, device)
                    append_row(csv_path, rows[key])
                    print(",".join(str(rows[key][f]) for f in FIELDS), flush=True)
    print_table(list(rows.values()))


if __name__ == "__main__":
    main()
