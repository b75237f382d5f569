"""The stage-1 step: the cached stage 1 of this configuration, or a fine-tuning (resumed from
its checkpoint when one exists) whose results are cached."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional

import torch

from src import outputs, stage1_cache
from src.config import Config
from src.model.loading import load_classifier
from src.model.train_stage1 import Stage1Data, Stage1Result, Stage1Settings, train_stage1
from src.runtime import distributed
from src.runtime.perf import new_perf

log = logging.getLogger("dygen")


def run_stage1(cfg: Config, data, tokenizer, model_dir: str, device, perf: Optional[dict] = None):
    """Stage 1 from its cache, or fine-tuned (resuming from a checkpoint) and cached.
    Under torchrun every rank trains; only rank 0 writes. Returns (Stage1Result, cached,
    resumed_after_epoch); `perf` (if given) receives throughput counters."""
    s1 = stage1_cache.load_stage1(cfg, data.n_all, data.num_classes)
    if s1 is not None:
        return s1, True, None
    models = [load_classifier(model_dir, data.num_classes, cfg.seed + m) for m in range(cfg.n_model)]
    shape = (cfg.n_model, cfg.epochs, data.n_all, models[0].config.hidden_size)
    rank0 = distributed.rank() == 0
    z, resume = stage1_cache.open_stage1(cfg, shape) if rank0 else (None, None)
    resume = agreed_checkpoint(cfg, shape, resume)
    torch.manual_seed(cfg.seed)
    try:
        s1 = train_stage1(models, Stage1Data(data.tokens, data.noisy, data.n_train, data.n_val,
                                             tokenizer.pad_token_id),
                          stage1_settings(cfg, device), device, z_out=z, resume=resume,
                          on_epoch_end=stage1_cache.checkpoint_writer(cfg, z) if rank0 else None,
                          perf=perf if perf is not None else new_perf())
    except KeyboardInterrupt:
        prog = stage1_cache.ckpt_path(cfg).parent / "progress.json"
        done = json.loads(prog.read_text())["epoch"] if prog.exists() else 0
        log.warning("stage 1 interrupted; %d/%d epochs are checkpointed in %s", done, cfg.epochs,
                    stage1_cache.stage1_dir(cfg))
        raise
    if rank0:
        save(cfg, s1)
    return s1, False, int(resume["epoch"]) if resume is not None else None


def agreed_checkpoint(cfg: Config, shape, resume: Optional[dict]) -> Optional[dict]:
    """The checkpoint every rank resumes from: rank 0's (`resume`); under torchrun the other
    ranks read the same file once rank 0 has checked it, and all must agree on its epoch."""
    if distributed.world_size() == 1:
        return resume
    distributed.barrier()
    if distributed.rank() != 0:
        resume = stage1_cache.read_checkpoint(cfg, shape)
    done = int(resume["epoch"]) if resume is not None else 0
    if distributed.broadcast_int(done) != done:
        raise RuntimeError(f"rank {distributed.rank()} sees a different stage-1 checkpoint than rank 0")
    return resume


def save(cfg: Config, s1: Stage1Result) -> None:
    """The stage-1 cache, and with --save_model the selected epoch's weights."""
    stage1_cache.save_stage1(cfg, s1)
    if cfg.save_model:
        wdir = Path(cfg.model_dir) / stage1_cache.stage1_dir(cfg).name
        for m, state in enumerate(s1.best_states):
            outputs.atomic_torch_save(wdir / f"stage1_model{m}_epoch{s1.best_epoch + 1}.pt", state)


def stage1_settings(cfg: Config, device) -> Stage1Settings:
    return Stage1Settings(epochs=cfg.epochs, lr=cfg.lr, weight_decay=cfg.weight_decay,
                          batch_size=cfg.train_batch_size, eval_batch_size=eval_batch(cfg, device),
                          alpha_t_hi=cfg.alpha_t_hi, clip=cfg.clip_gradient_norm, seed=cfg.seed,
                          length_bucket=cfg.length_bucket, cpu_dropout=cfg.cpu_dropout,
                          parallel_models=cfg.parallel_models, keep_best=cfg.save_model)


def eval_batch(cfg: Config, device) -> int:
    """Batch of the embedding passes: --eval_batch_size, at least 512 on a GPU (no gradients,
    so a large batch fits and keeps the GPU busy)."""
    return cfg.eval_batch_size if torch.device(device).type != "cuda" else max(cfg.eval_batch_size, 512)
