"""Everything written to disk: atomic files, the results log, the run folder."""
from __future__ import annotations

import csv
import glob
import io
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np


def _atomic_write(path: Path, write) -> Path:
    """Write through a temporary file in the same folder, fsync, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return _atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def atomic_write_json(path: Path, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def atomic_save_npy(path: Path, arr: np.ndarray) -> Path:
    return _atomic_write(path, lambda fh: np.save(fh, arr, allow_pickle=False))


def atomic_save_npz(path: Path, **arrays) -> Path:
    return _atomic_write(path, lambda fh: np.savez(fh, **arrays))


def atomic_torch_save(path: Path, obj) -> Path:
    """torch.save through a temporary file; read it back with torch.load(weights_only=True)."""
    import torch
    return _atomic_write(path, lambda fh: torch.save(obj, fh))


def _jsonable(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o))


def append_results_log(path: Path, config: dict, base_acc: float, dygen_acc: float) -> None:
    """cache/<dataset>-results.logs: one block per run, only ever appended."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    block = (f"==== {time.strftime('%Y-%m-%d %H:%M:%S')} ====\n"
             + "".join(f"{k}: {v}\n" for k, v in sorted(config.items()))
             + f"base: {base_acc:.4f}\nDyGen: {dygen_acc:.4f}\n\n")
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(block)
        fh.flush()
        os.fsync(fh.fileno())


def new_run_dir(output_dir: Path, name: str) -> Path:
    """A fresh folder under output_dir/runs; never reuses an existing one."""
    base = Path(output_dir) / "runs"
    base.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        d = base / (f"{stamp}-{name}" + (f"-{i}" if i else ""))
        try:
            d.mkdir()
            return d
        except FileExistsError:
            continue
    raise RuntimeError("could not create a run folder")


def run_folders(pattern: str, needs: str) -> List[str]:
    """The run folders matching a glob that hold the file `needs`, sorted (so oldest first:
    folder names start with their time stamp). An unfinished run lacks its outputs and is skipped."""
    return sorted(d for d in glob.glob(pattern) if (Path(d) / needs).is_file())


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence]) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    return atomic_write_text(path, buf.getvalue())


def save_acc_per_epoch(output_dir: Path, run_dir: Path, name: str, acc: Sequence[float]) -> None:
    """`<run_dir>/<name>` and `<output_dir>/<name>`; never overwrites an earlier run's top-level
    file (a later run's copy gets the run folder's name appended)."""
    arr = np.asarray(acc, dtype=np.float64)
    atomic_save_npy(run_dir / name, arr)
    top = Path(output_dir) / name
    if top.exists():
        top = top.with_name(f"{top.stem}-{run_dir.name}{top.suffix}")
    atomic_save_npy(top, arr)


def write_corrected_labels(path: Path, data, labels: np.ndarray, confidence: np.ndarray, score: np.ndarray,
                           flagged: np.ndarray, clean_names: Sequence[str],
                           extra: Optional[Dict[str, Sequence]] = None) -> Path:
    """One line per train+validation sample, most suspect first (highest dynamics score);
    `row` is the sample's row in the source file (0-based, header excluded), `suspect_rank` 1
    the most suspect, `changed` whether DyGen's label differs from the given one, `confidence`
    the corrected probability of DyGen's label; `extra`: more columns (name -> one value per
    sample, in sample order)."""
    names, n_tr = data.class_names, data.n_train
    extra = extra or {}
    header = ["row", "split", "text", "given_label", "dygen_label", "confidence", "dynamics_score",
              "flagged", "changed", "suspect_rank", *extra, "clean_label"]
    rows = []
    for rank, i in enumerate(np.argsort(-score, kind="stable"), 1):
        pred = int(labels[i])
        rows.append([int(data.row_ids[i]), "train" if i < n_tr else "validation",
                     data.texts[i][:200].replace("\n", " "), names[data.noisy[i]], names[pred],
                     f"{confidence[i]:.4f}", f"{score[i]:.4f}", int(flagged[i]), int(pred != data.noisy[i]),
                     rank, *(col[i] for col in extra.values()), clean_names[i]])
    return write_csv(path, header, rows)


def summary_table(metrics: dict) -> str:
    """The few lines main.py prints at the end of a run."""
    lines = []
    methods = metrics.get("methods", {})
    if any("test" in m for m in methods.values()):
        lines.append(f"{'':22s}{'accuracy':>10s}{'macro-F1':>10s}{'ECE':>8s}")
        for name, m in methods.items():
            if "test" in m:
                t = m["test"]
                label = {"cr": "cr (stage 1)", "dygen": "DyGen"}.get(name, name)
                lines.append(f"{'test ' + label:22s}{t['accuracy']:10.4f}{t['macro_f1']:10.4f}{t['ece']:8.4f}")
    nr = metrics["realised_noise_rate"]
    lines.append(f"realised noise rate   train {nr['train']:.4f}  validation {nr['validation']:.4f}")
    if "train_rows" in metrics.get("noise_detection", {}):
        d = metrics["noise_detection"]["train_rows"]
        auroc = f"{d['auroc']:.4f}" if d["auroc"] is not None else "n/a"
        lines.append(f"noise detection (train) P {d['precision']:.4f}  R {d['recall']:.4f}  "
                     f"F1 {d['f1']:.4f}  AUROC {auroc}")
    lc = metrics.get("label_cleaning", {})
    if "all_rows" in lc:
        a = lc["all_rows"]
        lines.append(f"train+val label acc   given {a['given_label_acc']:.4f}  DyGen {a['dygen_label_acc']:.4f}  "
                     f"cleanlab {a['cleanlab_label_acc']:.4f}")
    if lc:
        lines.append(f"labels changed        DyGen {lc['n_changed_dygen']}{' (safety valve closed)' if lc['valve_closed'] else ''}"
                     f"  cleanlab {lc['n_changed_cleanlab']}")
    est = metrics.get("noise_rate_estimate")
    if est:
        ci = f" [{est['ci_low']:.3f}, {est['ci_high']:.3f}]" if est["ci_low"] is not None else ""
        lines.append(f"noise rate estimate   {est['rate']:.4f}{ci} ({est['method']}); flagged: {metrics['flag_rate']['how']}")
    if "detection_comparison" in metrics:
        dc = metrics["detection_comparison"]
        for name in ("dygen", "cleanlab"):
            d = dc[f"{name}_at_true_count"]
            auroc = f"{d['auroc']:.4f}" if d["auroc"] is not None else "n/a"
            lines.append(f"{'detection ' + ('dynamics' if name == 'dygen' else 'cleanlab'):22s}"
                         f"P@{dc['n_corrupted']} {d['precision']:.4f}  AUROC {auroc}")
    t = metrics["timings_s"]
    lines.append("time (s)              " + "  ".join(f"{k} {v:.1f}" for k, v in t.items()))
    lines.append(f"run folder            {metrics['run_dir']}")
    return "\n".join(lines)
