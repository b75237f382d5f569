"""Everything written to disk: atomic files, the results log, the run folder."""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Iterable, Sequence

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


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence]) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    return atomic_write_text(path, buf.getvalue())
