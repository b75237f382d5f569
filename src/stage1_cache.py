"""Stage-1 results on disk, keyed by the hash of every setting that changes them, so
stage 2 (and its variants) can be re-run without fine-tuning again; and the per-epoch
checkpoint that lets an interrupted stage 1 resume.

Folder cache/stage1/<hash>/:
  z.npy        (M, E, N_all, D) float16 trajectories, a memory map filled epoch by epoch
  probs.npy    (M, E, N_all, C) float32, written when stage 1 completes
  meta.json    written last: its presence marks a complete cache; carries the hash, the
               settings and the sha256 of z.npy and probs.npy
  ckpt/ckpt.pt while stage 1 runs: the last finished epoch (weights, optimizer, scheduler,
               RNG states, probabilities so far, selection state, sha256 of each finished
               epoch of z.npy); removed once stage 1 completes
  ckpt/progress.json  {"epoch": k, "epochs": E}, written after ckpt.pt

Anything that does not match (hash, settings, shape, checksum) or cannot be read is
reported and rebuilt, never used. Tensors are read with torch.load(weights_only=True)
and arrays with allow_pickle=False.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import torch

from src.config import Config
from src.data.prepare import data_cache_keys
from src.model.train_stage1 import Stage1Result
from src.outputs import atomic_save_npy, atomic_torch_save, atomic_write_json

log = logging.getLogger("dygen")
CKPT_FORMAT = 1


def stage1_keys():
    return data_cache_keys() + ("n_model", "epochs", "lr", "weight_decay", "train_batch_size",
                                "alpha_t_hi", "clip_gradient_norm", "length_bucket", "cpu_dropout",
                                "parallel_models", "cpu_bf16")


def stage1_dir(cfg: Config) -> Path:
    return Path(cfg.output_dir) / "stage1" / cfg.hash(stage1_keys())


def ckpt_path(cfg: Config) -> Path:
    return stage1_dir(cfg) / "ckpt" / "ckpt.pt"


def _settings(cfg: Config) -> dict:
    # through JSON so that tuples/None compare as they were stored
    return json.loads(json.dumps(cfg.key_items(stage1_keys()), default=str))


def file_sha256(path: Path, chunk: int = 1 << 24) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            b = fh.read(chunk)
            if not b:
                return h.hexdigest()
            h.update(b)


def epoch_sha256(z: np.ndarray, epoch: int) -> str:
    """Checksum of one epoch of the trajectories, z[:, epoch]."""
    return hashlib.sha256(np.ascontiguousarray(z[:, epoch]).tobytes()).hexdigest()


def load_stage1(cfg: Config, n_all: int, num_classes: int) -> Optional[Stage1Result]:
    d = stage1_dir(cfg)
    meta_path = d / "meta.json"
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("hash") != d.name or meta.get("hash") != cfg.hash(stage1_keys()):
            raise ValueError(f"configuration hash {meta.get('hash')!r} does not match {d.name!r}")
        if meta.get("config") != _settings(cfg):
            raise ValueError("settings recorded in meta.json differ from this run's")
        sums = meta.get("sha256", {})
        for name in ("z.npy", "probs.npy"):
            if sums.get(name) != file_sha256(d / name):
                raise ValueError(f"{name} is corrupt or truncated (checksum mismatch)")
        z = np.load(d / "z.npy", mmap_mode="r", allow_pickle=False)
        probs = np.load(d / "probs.npy", allow_pickle=False)
        expect = (cfg.n_model, cfg.epochs, n_all)
        if z.shape[:3] != expect or probs.shape != expect + (num_classes,):
            raise ValueError(f"shape mismatch: z {z.shape}, probs {probs.shape}, expected {expect}")
        best = int(meta["best_epoch"])
        val_acc = [float(a) for a in meta["val_acc_noisy"]]
        if not (0 <= best < cfg.epochs and len(val_acc) == cfg.epochs):
            raise ValueError("best epoch / validation accuracies out of range")
    except (OSError, ValueError, KeyError, TypeError, EOFError) as e:
        log.warning("stage-1 cache %s is unusable (%s); recomputing", d, e)
        return None
    log.info("stage-1 results from cache %s", d)
    return Stage1Result(z, probs, best, val_acc)


def new_trajectory_file(cfg: Config, shape) -> np.ndarray:
    """(M, E, N_all, D) float16 memory map under the stage-1 cache folder."""
    d = stage1_dir(cfg)
    d.mkdir(parents=True, exist_ok=True)
    (d / "meta.json").unlink(missing_ok=True)  # not complete until meta.json is written again
    return np.lib.format.open_memmap(d / "z.npy", mode="w+", dtype=np.float16, shape=shape)


def _load_checkpoint(cfg: Config, shape, mmap_mode: str = "r+") -> Tuple[Optional[dict], Optional[np.ndarray]]:
    """(checkpoint, z opened read-write) when a valid checkpoint exists, else (None, None)."""
    d = stage1_dir(cfg)
    path = ckpt_path(cfg)
    if not path.exists():
        return None, None
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(ck, dict) or ck.get("format") != CKPT_FORMAT:
            raise ValueError("unknown checkpoint format")
        if ck.get("hash") != d.name:
            raise ValueError(f"configuration hash {ck.get('hash')!r} does not match {d.name!r}")
        if ck.get("config") != _settings(cfg):
            raise ValueError("settings recorded in the checkpoint differ from this run's")
        if tuple(ck["shape"]) != tuple(shape):
            raise ValueError(f"trajectory shape {tuple(ck['shape'])} differs from {tuple(shape)}")
        k = int(ck["epoch"])
        if not (1 <= k < shape[1]) or len(ck["z_sha256"]) != k or tuple(ck["probs"].shape[:2]) != (shape[0], k):
            raise ValueError(f"inconsistent checkpoint (epoch {k})")
        if cfg.save_model and ck.get("best_states") is None:
            raise ValueError("made without --save_model: the selected epoch's weights were not kept")
        z = np.load(d / "z.npy", mmap_mode=mmap_mode, allow_pickle=False)
        if z.shape != tuple(shape) or z.dtype != np.float16:
            raise ValueError(f"z.npy has shape {z.shape} {z.dtype}, expected {tuple(shape)} float16")
        for e in range(k):
            if epoch_sha256(z, e) != ck["z_sha256"][e]:
                raise ValueError(f"z.npy epoch {e + 1} does not match its checksum")
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is discarded, never used
        log.warning("stage-1 checkpoint %s is unusable (%s: %s); starting stage 1 from epoch 1",
                    path, type(e).__name__, str(e).splitlines()[0] if str(e) else "")
        return None, None
    return ck, z


def read_checkpoint(cfg: Config, shape) -> Optional[dict]:
    """The checkpoint to resume from, read-only (ranks > 0 of a distributed run), or None."""
    return _load_checkpoint(cfg, shape, mmap_mode="r")[0]


def open_stage1(cfg: Config, shape) -> Tuple[np.ndarray, Optional[dict]]:
    """The trajectory memory map and, when a valid checkpoint exists, the state to resume from."""
    ck, z = _load_checkpoint(cfg, shape)
    if ck is not None:
        log.info("resuming stage 1 after epoch %d/%d from %s", ck["epoch"], shape[1], ckpt_path(cfg))
        return z, ck
    shutil.rmtree(ckpt_path(cfg).parent, ignore_errors=True)
    return new_trajectory_file(cfg, shape), None


def checkpoint_writer(cfg: Config, z: np.ndarray):
    """on_epoch_end callback for train_stage1: flush the trajectories, then save the state."""
    d = stage1_dir(cfg)
    path = ckpt_path(cfg)

    def save(state: dict) -> None:
        k = state["epoch"]
        if k >= z.shape[1]:
            return  # stage 1 is complete: save_stage1 takes over
        if hasattr(z, "flush"):
            z.flush()
        sums = [epoch_sha256(z, e) for e in range(k)]
        atomic_torch_save(path, {**state, "format": CKPT_FORMAT, "hash": d.name, "config": _settings(cfg),
                                 "shape": list(z.shape), "z_sha256": sums})
        atomic_write_json(path.parent / "progress.json", {"epoch": k, "epochs": int(z.shape[1])})
        log.info("stage 1: checkpoint after epoch %d/%d in %s", k, z.shape[1], path.parent)

    return save


def save_stage1(cfg: Config, res: Stage1Result) -> Path:
    d = stage1_dir(cfg)
    if hasattr(res.z, "flush"):
        res.z.flush()
    atomic_save_npy(d / "probs.npy", res.probs)
    # meta.json last: its presence marks a complete cache.
    atomic_write_json(d / "meta.json", {"hash": d.name, "best_epoch": res.best_epoch,
                                        "val_acc_noisy": res.val_acc_noisy,
                                        "config": _settings(cfg),
                                        "sha256": {"z.npy": file_sha256(d / "z.npy"),
                                                   "probs.npy": file_sha256(d / "probs.npy")}})
    shutil.rmtree(d / "ckpt", ignore_errors=True)  # the heavy checkpoint is no longer needed
    return d
