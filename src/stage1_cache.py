"""Stage-1 results on disk, keyed by the hash of every setting that changes them, so
stage 2 (and its variants) can be re-run without fine-tuning again."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional

import numpy as np

from src.config import Config
from src.data.prepare import data_cache_keys
from src.model.train_stage1 import Stage1Result
from src.outputs import atomic_save_npy, atomic_write_json

log = logging.getLogger("dygen")


def stage1_keys():
    return data_cache_keys() + ("n_model", "epochs", "lr", "weight_decay", "train_batch_size",
                                "alpha_t_hi", "clip_gradient_norm")


def stage1_dir(cfg: Config) -> Path:
    return Path(cfg.output_dir) / "stage1" / cfg.hash(stage1_keys())


def load_stage1(cfg: Config, n_all: int, num_classes: int) -> Optional[Stage1Result]:
    d = stage1_dir(cfg)
    meta_path = d / "meta.json"
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        z = np.load(d / "z.npy", mmap_mode="r", allow_pickle=False)
        probs = np.load(d / "probs.npy", allow_pickle=False)
        expect = (cfg.n_model, cfg.epochs, n_all)
        if meta.get("hash") != d.name or z.shape[:3] != expect or probs.shape != expect + (num_classes,):
            raise ValueError(f"shape/hash mismatch: z {z.shape}, probs {probs.shape}, expected {expect}")
    except (OSError, ValueError, KeyError) as e:
        log.warning("stage-1 cache %s is unusable (%s); recomputing", d, e)
        return None
    log.info("stage-1 results from cache %s", d)
    return Stage1Result(z, probs, int(meta["best_epoch"]), list(meta["val_acc_noisy"]))


def new_trajectory_file(cfg: Config, shape) -> np.ndarray:
    """(M, E, N_all, D) float16 memory map under the stage-1 cache folder."""
    d = stage1_dir(cfg)
    d.mkdir(parents=True, exist_ok=True)
    (d / "meta.json").unlink(missing_ok=True)  # not complete until meta.json is written again
    return np.lib.format.open_memmap(d / "z.npy", mode="w+", dtype=np.float16, shape=shape)


def save_stage1(cfg: Config, res: Stage1Result) -> Path:
    d = stage1_dir(cfg)
    res.z.flush()
    atomic_save_npy(d / "probs.npy", res.probs)
    # meta.json last: its presence marks a complete cache.
    atomic_write_json(d / "meta.json", {"hash": d.name, "best_epoch": res.best_epoch,
                                        "val_acc_noisy": res.val_acc_noisy,
                                        "config": {k: getattr(cfg, k) for k in stage1_keys()}})
    return d
