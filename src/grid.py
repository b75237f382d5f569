"""A grid of experiments: noise types x ratios x seeds x methods, resumable, aggregated.

One *setting* (noise type, ratio, seed) is one `pipeline.run` with `--variants` listing the
methods still missing for it: its co-regularised stage 1 (and `single`'s own one-model stage
1) is computed once, cached, and shared by every stage-2 variant. When only `single` is
missing, `pipeline.run_single_only` trains its one model and no ensemble. One *cell* (a setting
and a method) is one row of results.csv. A cell whose row exists with the same
configuration hash is never recomputed.
"""
from __future__ import annotations

import csv
import io
import logging
import math
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from src.config import Config, make_config
from src.outputs import atomic_write_text
from src.runtime import allocator
from src.methods import METHODS

log = logging.getLogger("dygen")

# Settings that do not change a result: excluded from the configuration hash.
NOT_RESULT_KEYS = ("output_dir", "model_dir", "save_model", "variants", "compare_cleanlab", "no_plots",
                   "preset", "device", "saved_dataset", "eval_batch_size")

GRID_PRESETS = {
    # 3 noise types x 2 ratios x 3 seeds = 18 settings, each main.py --preset grid
    "quick": dict(noise_types=("SN", "ASN", "IDN"), ratios=(0.2, 0.4), seeds=(1, 2, 3), preset="grid"),
}

COLUMNS = ["dataset", "noise_type", "noise_ratio", "seed", "method", "config_hash",
           "test_acc", "test_macro_f1", "test_ece", "test_acc_last_epoch",
           "det_precision", "det_recall", "det_f1", "det_auroc", "det_precision_at_true_count",
           "label_acc_given", "label_acc_corrected", "realised_noise_train",
           "n_flagged", "stage1_cached", "wall_s", "setting_wall_s", "run_dir"]


def config_hash(cfg: Config) -> str:
    return cfg.hash([k for k in cfg.to_dict() if k not in NOT_RESULT_KEYS])


def cell_key(row: dict) -> Tuple:
    return (row["noise_type"], f"{float(row['noise_ratio']):g}", int(row["seed"]), row["method"], row["config_hash"])


def _get(d: dict, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def rows_from_metrics(metrics: dict, cfg: Config, methods: Sequence[str], setting_wall_s: float) -> List[dict]:
    """One row per method (and one `cleanlab` detection-only row when it was compared)."""
    common = {"dataset": cfg.dataset, "noise_type": cfg.noise_type, "noise_ratio": cfg.noise_ratio,
              "seed": cfg.seed, "config_hash": config_hash(cfg), "run_dir": metrics.get("run_dir", ""),
              "realised_noise_train": _get(metrics, "realised_noise_rate", "train"),
              "setting_wall_s": round(setting_wall_s, 1), "stage1_cached": metrics.get("stage1_cached")}
    t = metrics.get("timings_s", {})
    stage1_s = t.get("data", 0) + t.get("stage1", 0)
    dc = metrics.get("detection_comparison")
    rows = []
    for method in methods:
        v = metrics["methods"][method]
        row = {**common, "method": method, "test_acc": _get(v, "test", "accuracy"),
               "test_macro_f1": _get(v, "test", "macro_f1"), "test_ece": _get(v, "test", "ece"),
               "test_acc_last_epoch": _get(v, "test_last_epoch", "accuracy"),
               "label_acc_given": _get(v, "label_correction", "given_label_acc"),
               "label_acc_corrected": _get(v, "label_correction", "label_acc"),
               "n_flagged": v.get("n_flagged_train"), "wall_s": round(stage1_s + v.get("seconds", 0), 1)}
        if method == "dygen" and "train_rows" in metrics.get("noise_detection", {}):
            det = metrics["noise_detection"]["train_rows"]
            row.update(det_precision=det["precision"], det_recall=det["recall"], det_f1=det["f1"],
                       det_auroc=det["auroc"])
            if dc is not None:
                row["det_precision_at_true_count"] = dc["dygen_at_true_count"]["precision"]
        rows.append(row)
    if dc is not None:
        cl = dc["cleanlab_find_label_issues"]
        rows.append({**common, "method": "cleanlab", "det_precision": cl["precision"], "det_recall": cl["recall"],
                     "det_f1": cl["f1"], "det_auroc": dc["cleanlab_at_true_count"]["auroc"],
                     "det_precision_at_true_count": dc["cleanlab_at_true_count"]["precision"],
                     "n_flagged": cl["n_flagged"], "wall_s": round(t.get("cleanlab", 0), 1)})
    return rows


def read_rows(path: Path) -> List[dict]:
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def write_rows(path: Path, rows: Iterable[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in COLUMNS})
    atomic_write_text(path, buf.getvalue())


def run_grid(output_dir: Path, *, noise_types: Sequence[str], ratios: Sequence[float], seeds: Sequence[int],
             methods: Sequence[str] = METHODS, main_args: Optional[dict] = None, compare_cleanlab: bool = True,
             run_fn: Optional[Callable] = None, csv_path: Optional[Path] = None) -> List[dict]:
    """Run every missing cell; rows are saved after each setting (csv_path, default
    <output_dir>/results.csv), so an interrupted grid resumes where it stopped. A setting whose
    only missing cell is `single` (cleanlab's row done, or the grid asked for `single` only)
    runs `pipeline.run_single_only` (no ensemble stage 1). Returns all rows."""
    from src import pipeline
    output_dir = Path(output_dir)
    csv_path = Path(csv_path) if csv_path is not None else output_dir / "results.csv"
    rows = read_rows(csv_path)
    done = {cell_key(r) for r in rows}
    main_args = {k: v for k, v in (main_args or {}).items()   # the grid sets these itself
                 if k not in ("noise_type", "noise_ratio", "seed", "output_dir", "variants", "compare_cleanlab",
                              "no_plots")}
    for nt in noise_types:
        for ratio in ratios:
            for seed in seeds:
                cfg = make_config(**main_args, noise_type=nt, noise_ratio=float(ratio), seed=int(seed),
                                  output_dir=str(output_dir), no_plots=False)
                h = config_hash(cfg)
                todo = [m for m in methods if (nt, f"{float(ratio):g}", int(seed), m, h) not in done]
                # cleanlab's row compares its detection with DyGen's score, which needs the ensemble:
                # a grid asked for `single` only leaves it to the call that runs the other methods
                want_cl = (compare_cleanlab and list(methods) != ["single"]
                           and (nt, f"{float(ratio):g}", int(seed), "cleanlab", h) not in done)
                if not todo and not want_cl:
                    log.info("grid: %s %.0f%% seed %d: done, skipped", nt, 100 * ratio, seed)
                    continue
                log.info("grid: %s %.0f%% seed %d: running %s", nt, 100 * ratio, seed, ", ".join(todo))
                cfg.variants = ",".join(todo) if todo else "dygen"
                cfg.compare_cleanlab = want_cl
                t0 = time.perf_counter()
                alone = todo == ["single"] and not want_cl     # no ensemble stage 1 to train
                metrics = (run_fn or (pipeline.run_single_only if alone else pipeline.run))(cfg)
                allocator.release_free_memory()   # else each setting's peak stays resident
                new = [r for r in rows_from_metrics(metrics, cfg, todo, time.perf_counter() - t0)
                       if r["method"] in todo or (want_cl and r["method"] == "cleanlab")]
                rows.extend(new)
                done |= {cell_key({**r, "noise_ratio": r["noise_ratio"]}) for r in new}
                write_rows(csv_path, rows)
    return rows


# ---- aggregation --------------------------------------------------------------------------

def _num(x) -> Optional[float]:
    if x is None or x == "":
        return None
    v = float(x)
    return None if math.isnan(v) else v


def mean_std(values: Sequence[float]) -> Tuple[float, float, int]:
    """(mean, sample std (ddof 1; 0 for one value), n)."""
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0, len(a)


def settings_of(rows: Sequence[dict]) -> List[Tuple[str, float]]:
    order = {"SN": 0, "ASN": 1, "IDN": 2, "REAL": 3}
    s = {(r["noise_type"], float(r["noise_ratio"])) for r in rows}
    return sorted(s, key=lambda x: (order.get(x[0], 9), x[0], x[1]))


def per_seed(rows: Sequence[dict], metric: str) -> Dict[Tuple[str, float, str], Dict[int, float]]:
    """{(noise type, ratio, method): {seed: value}} for the rows where the metric is present."""
    out: Dict[Tuple[str, float, str], Dict[int, float]] = {}
    for r in rows:
        v = _num(r.get(metric))
        if v is not None:
            out.setdefault((r["noise_type"], float(r["noise_ratio"]), r["method"]), {})[int(r["seed"])] = v
    return out


def aggregate(rows: Sequence[dict], metric: str) -> Dict[Tuple[str, float, str], Tuple[float, float, int]]:
    return {k: mean_std(list(v.values())) for k, v in per_seed(rows, metric).items()}


def paired(a: Dict[int, float], b: Dict[int, float]) -> Optional[dict]:
    """DyGen (a) vs another method (b) on the seeds both have: mean and std of the paired
    differences, paired t-test p-value (scipy.stats.ttest_rel; None below 2 seeds or for
    identical differences), wins/ties/losses."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    d = np.array([a[s] - b[s] for s in seeds])
    p = None
    if len(d) >= 2 and d.std(ddof=1) > 0:
        from scipy.stats import ttest_rel
        p = float(ttest_rel([a[s] for s in seeds], [b[s] for s in seeds]).pvalue)
    return {"n": len(d), "mean_diff": float(d.mean()), "std_diff": float(d.std(ddof=1)) if len(d) > 1 else 0.0,
            "p": p, "wins": int((d > 0).sum()), "ties": int((d == 0).sum()), "losses": int((d < 0).sum())}


def beats_outside_spread(a: Tuple[float, float, int], b: Tuple[float, float, int]) -> bool:
    """a's mean minus its std over seeds exceeds b's mean plus its std: the +-1 std bands
    do not overlap and a is above."""
    return a[0] - a[1] > b[0] + b[1]


def _fmt(ms: Optional[Tuple[float, float, int]], bold: bool = False, pct: bool = True) -> str:
    if ms is None:
        return "-"
    m, s, n = ms
    k = 100 if pct else 1
    txt = f"{k * m:.1f}" if pct else f"{m:.3f}"
    if n > 1:  # one seed has no spread: print none rather than a misleading "± 0.0"
        txt += f" ± {k * s:.1f}" if pct else f" ± {s:.3f}"
    txt = f"**{txt}**" if bold else txt
    return f"{txt} ({n})"


def signed_points(x: float) -> str:
    """A difference of two accuracies in points, signed; a second decimal where one decimal
    would print "-0.0"/"+0.0" for a difference that is not zero (the sign must stay readable)."""
    pp = 100 * x
    return f"{pp:+.2f}" if pp != 0 and round(pp, 1) == 0 else f"{pp:+.1f}"


def _diff(t: dict) -> str:
    """A paired difference in points: mean ± std over seeds (the mean alone for one seed)."""
    return signed_points(t["mean_diff"]) + (f" ± {100 * t['std_diff']:.1f}" if t["n"] > 1 else "")


def table(rows: Sequence[dict], metric: str, methods: Sequence[str], *, higher_better: bool = True,
          pct: bool = True) -> str:
    """Markdown: one row per method, one column per noise setting; mean ± std (number of
    seeds); the best mean of each column in bold."""
    agg = aggregate(rows, metric)
    settings = settings_of(rows)
    methods = [m for m in methods if any((nt, r, m) in agg for nt, r in settings)]
    head = "| method | " + " | ".join(f"{nt} {100 * r:g}%" for nt, r in settings) + " |"
    lines = [head, "|" + " --- |" * (len(settings) + 1)]
    best = {}
    for s in settings:
        vals = [agg[(s[0], s[1], m)][0] for m in methods if (s[0], s[1], m) in agg]
        if vals:
            best[s] = max(vals) if higher_better else min(vals)
    for m in methods:
        cells = [_fmt(agg.get((nt, r, m)), bold=(nt, r, m) in agg and agg[(nt, r, m)][0] == best.get((nt, r)),
                      pct=pct) for nt, r in settings]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def significance_table(rows: Sequence[dict], metric: str, ref: str, others: Sequence[str]) -> str:
    """Markdown: per setting and method, ref - method (paired over seeds): mean ± std of the
    difference, wins/ties/losses, paired t-test p, and whether ref is above outside the spread."""
    ps = per_seed(rows, metric)
    agg = aggregate(rows, metric)
    lines = [f"| setting | {ref} vs | diff (pp, mean ± std) | wins/ties/losses | paired t p | outside spread |",
             "| --- | --- | --- | --- | --- | --- |"]
    for nt, r in settings_of(rows):
        for o in others:
            a, b = ps.get((nt, r, ref)), ps.get((nt, r, o))
            if not a or not b:
                continue
            t = paired(a, b)
            if t is None:
                continue
            p = f"{t['p']:.3f}" if t["p"] is not None else "n/a"
            if min(agg[(nt, r, ref)][2], agg[(nt, r, o)][2]) < 2:
                out = "n/a (1 seed)"
            else:
                out = "yes" if beats_outside_spread(agg[(nt, r, ref)], agg[(nt, r, o)]) else "no"
            lines.append(f"| {nt} {100 * r:g}% | {o} | {_diff(t)} | "
                         f"{t['wins']}/{t['ties']}/{t['losses']} | {p} | {out} |")
    return "\n".join(lines)


RIVALS = ("single", "cr", "traj_lr", "cleanlab_lr", "npc")   # the non-DyGen methods (ablations excluded)


def best_rival_table(rows: Sequence[dict], metric: str, ref: str = "dygen", rivals: Sequence[str] = RIVALS) -> str:
    """Markdown: per setting, `ref` against the non-DyGen method with the best mean there, paired
    over seeds (difference, wins/ties/losses, paired t-test p)."""
    ps, agg = per_seed(rows, metric), aggregate(rows, metric)
    lines = [f"| setting | {ref} | best other method | its score | diff (pp, mean ± std) | wins/ties/losses | paired t p |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for nt, r in settings_of(rows):
        have = [m for m in rivals if (nt, r, m) in agg]
        if (nt, r, ref) not in agg or not have:
            continue
        best = max(have, key=lambda m: agg[(nt, r, m)][0])
        t = paired(ps[(nt, r, ref)], ps[(nt, r, best)])
        p = f"{t['p']:.3f}" if t["p"] is not None else "n/a"
        lines.append(f"| {nt} {100 * r:g}% | {_fmt(agg[(nt, r, ref)])} | {best} | {_fmt(agg[(nt, r, best)])} | "
                     f"{_diff(t)} | {t['wins']}/{t['ties']}/{t['losses']} "
                     f"| {p} |")
    return "\n".join(lines)


def results_markdown(rows: Sequence[dict], methods: Sequence[str] = METHODS, command: str = "") -> str:
    n_settings = len({(r["noise_type"], r["noise_ratio"], r["seed"]) for r in rows})
    walls = {}
    for r in rows:  # one wall time per pipeline run; a setting topped up later (a new method) had two
        if _num(r.get("setting_wall_s")) is not None:
            key = r.get("run_dir") or (r["noise_type"], r["noise_ratio"], r["seed"], r["config_hash"])
            walls[key] = float(r["setting_wall_s"])
    datasets = sorted({r["dataset"] for r in rows})
    parts = [f"# Results: {', '.join(datasets)}",
             f"{len(rows)} cells from {n_settings} settings (noise type x ratio x seed); "
             f"wall time of the runs that produced them: {sum(walls.values()) / 60:.1f} min."
             + (f"\n\nCommand: `{command}`" if command else ""),
             "Entries: mean ± sample std (ddof 1) over seeds, (number of seeds); best per column in **bold**.",
             "## Test accuracy (%)", table(rows, "test_acc", methods),
             "## DyGen against the best other method of each setting (paired over seeds)",
             best_rival_table(rows, "test_acc"),
             "## Stage-1 methods at their LAST epoch instead of the one selected on noisy validation: test accuracy (%)",
             table(rows, "test_acc_last_epoch", ["single", "cr"]),
             "## Test macro-F1 (%)", table(rows, "test_macro_f1", methods),
             "## Test ECE (%; lower is better)", table(rows, "test_ece", methods, higher_better=False),
             "## Label correction: agreement of each method's train+validation labels with the clean labels (%)",
             table(rows, "label_acc_corrected", methods),
             "## Label-error detection: AUROC (%)",
             "`dygen` = the dynamics score (mean + std over epochs of the distance to the own-label "
             "centroid, averaged over models); `cleanlab` = 1 - self-confidence label quality from 5-fold "
             "logistic regression on frozen pretrained embeddings; both on the training rows.",
             table(rows, "det_auroc", ["dygen", "cleanlab"]),
             "## Label-error detection: precision at the true number of corrupted labels (%) (= recall = F1)",
             table(rows, "det_precision_at_true_count", ["dygen", "cleanlab"]),
             "## Label-error detection: F1 of each method's own flags (%)",
             "`dygen`: the top noise-ratio x N scores; `cleanlab`: find_label_issues (prune_by_noise_rate), "
             "its own count.",
             table(rows, "det_f1", ["dygen", "cleanlab"]),
             "## Paired comparison over seeds: DyGen test accuracy minus each method's",
             "'outside spread' = DyGen's mean - std above the other's mean + std.",
             significance_table(rows, "test_acc", "dygen", [m for m in methods if m != "dygen"]),
             "## Paired comparison: detection AUROC, dynamics score minus cleanlab",
             significance_table(rows, "det_auroc", "dygen", ["cleanlab"])]
    return "\n\n".join(parts) + "\n"


def accuracy_series(rows: Sequence[dict], methods: Sequence[str] = METHODS) -> dict:
    """{noise type: {method: [(ratio, mean acc, std), ...]}} for plots.accuracy_vs_noise."""
    agg = aggregate(rows, "test_acc")
    out: dict = {}
    for (nt, r, m), (mean, std, _) in agg.items():
        if m in methods:
            out.setdefault(nt, {}).setdefault(m, []).append((r, mean, std))
    order = {"SN": 0, "ASN": 1, "IDN": 2}
    return {nt: {m: out[nt][m] for m in methods if m in out[nt]} for nt in sorted(out, key=lambda x: order.get(x, 9))}


# ---- reproduction check -------------------------------------------------------------------

def reproduction(committed: Sequence[dict], rerun: Sequence[dict], noise_type: str, ratio: float, seed: int,
                 metric: str = "test_acc") -> List[dict]:
    """Rerun of one setting (noise type, ratio, seed) against the committed grid, per method:
    the committed value at that seed, the rerun's, their difference, and the committed spread
    over seeds (mean, sample std, n). `within` = |difference| <= that std: a rerun differs
    from the committed value by less than one seed differs from another (None below 2 seeds).
    `same_config` says whether both rows carry the same configuration hash."""
    ps = per_seed(committed, metric)
    def at(rows, m):
        for r in rows:
            if (r["noise_type"], float(r["noise_ratio"]), int(r["seed"]), r["method"]) == (noise_type, float(ratio), int(seed), m):
                return r
        return None
    out = []
    for m in dict.fromkeys(r["method"] for r in rerun):
        new, old = at(rerun, m), at(committed, m)
        a, b = _num((new or {}).get(metric)), _num((old or {}).get(metric))
        if a is None or b is None:
            continue
        mean, std, n = mean_std(list(ps[(noise_type, float(ratio), m)].values()))
        d = a - b
        out.append({"method": m, "committed": b, "rerun": a, "diff": d, "seed_mean": mean, "seed_std": std,
                    "n_seeds": n, "within": (abs(d) <= std + 1e-12) if n >= 2 else None,
                    "same_config": new["config_hash"] == old["config_hash"]})
    return out
