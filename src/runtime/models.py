"""`ModelRuntime`: how the M models of stage 1 run in this process, so the training loop
reads the same whatever the set-up: the device and its precision (AMP and loss scaling on
CUDA), bulk-drawn dropout on CPU, one process or torchrun (DDP), the models one after the
other or in threads (`ModelThreads`), and the random states a resume restores."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np
import torch

from src.data.batching import shard
from src.model import fast_dropout
from src.runtime import distributed
from src.runtime.amp import autocast, grad_scaler
from src.runtime.resume import get_rng_states, set_rng_states
from src.runtime.threads import ModelThreads, dropout_seed, use_model_threads

log = logging.getLogger("dygen")


@dataclass
class ModelRuntime:
    device: torch.device
    models: list                 # the models themselves: their weights, the embedding passes
    fwd: list                    # what the training forward calls: DDP wrappers under torchrun, else the models
    scaler: torch.amp.GradScaler
    rank: int = 0
    world: int = 1
    pool: Optional[ModelThreads] = None                # set: the models run in threads
    drop_gens: Optional[List[torch.Generator]] = None  # each model's own dropout generator (in threads)

    @classmethod
    def start(cls, models: list, device: torch.device, *, cpu_dropout: str, parallel_models: str,
              seed: int, resume_rng: Optional[dict] = None) -> "ModelRuntime":
        """Puts the models on `device` (bulk dropout on CPU if `cpu_dropout` is "bulk"), wraps them
        in DDP under torchrun, and starts their threads where `parallel_models` asks for them and
        `use_model_threads` allows. resume_rng: the RNG states of the checkpoint a run resumes
        from, which decide threads or not (see `_in_threads`). Close it (or use it in `with`)."""
        device = torch.device(device)
        rank, world = distributed.rank(), distributed.world_size()
        for m in models:
            m.to(device)
            if cpu_dropout == "bulk" and device.type == "cpu":
                fast_dropout.install(m)
        fwd = distributed.wrap_ddp(models, device) if world > 1 else models
        rt = cls(device, models, fwd, grad_scaler(device), rank, world)
        if _in_threads(parallel_models, device, world, len(models), cpu_dropout, resume_rng):
            rt.drop_gens = [torch.Generator().manual_seed(dropout_seed(seed, i)) for i in range(len(models))]
            for m, g in zip(models, rt.drop_gens):
                fast_dropout.set_generator(m, g)
            rt.pool = ModelThreads(len(models), torch.get_num_threads())
            log.info("stage 1: the %d models train at the same time, %d thread(s) each",
                     len(models), rt.pool.per_model)
        return rt

    def close(self) -> None:
        if self.pool:
            self.pool.close()
            for m in self.models:  # back to torch's global generator
                fast_dropout.set_generator(m, None)

    def __enter__(self) -> "ModelRuntime":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def train_mode(self, seed: int, epoch: int) -> None:
        for m in self.fwd:
            m.train()
        if self.world > 1:  # each rank its own dropout stream, reproducible on resume
            torch.manual_seed((seed * 1_000_003 + epoch * 1_009 + self.rank) % 2 ** 63)

    def my_share(self, gidx: np.ndarray) -> Tuple[np.ndarray, float]:
        """(this rank's samples of the global batch `gidx`, their weight): under torchrun its
        contiguous shard; a rank left without one (a short last batch) takes one sample with
        weight 0, so that it still joins the gradient all-reduce."""
        if self.world == 1:
            return gidx, 1.0
        idx = shard(gidx, self.rank, self.world)
        return (gidx[:1], 0.0) if len(idx) == 0 else (idx, 1.0)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor):
        return forward_models(self.fwd, ids, mask, self.device, self.pool)

    def batch_loss(self, per_sample: torch.Tensor, weight: float, n_global: int):
        """(the loss to differentiate, the global batch's mean loss to show). DDP averages the
        gradients over the ranks: each rank's sum is weighted by its share of the batch, so the
        average is the gradient of the global batch's mean."""
        if self.world == 1:
            loss = per_sample.mean()
            return loss, loss.detach()
        loss = per_sample.sum() * (weight * self.world / n_global)
        shown = loss.detach() / self.world
        torch.distributed.all_reduce(shown)
        return loss, shown

    def update(self, loss, logits, model_logits, opt: torch.optim.Optimizer, clip: float) -> None:
        """One optimizer step on `loss` (gradients clipped per model to norm `clip`)."""
        opt.zero_grad(set_to_none=True)
        backward_models(loss, logits, model_logits, self.models, self.pool, self.scaler, opt, clip)
        self.scaler.step(opt)
        self.scaler.update()

    def state(self, gen: torch.Generator) -> dict:
        """The checkpoint's part of the runtime: every RNG state (and the loss scaler's)."""
        state = {"rng": get_rng_states(gen, self.device, self.drop_gens)}
        if self.scaler.is_enabled():
            state["scaler"] = self.scaler.state_dict()
        return state

    def restore(self, state: dict, gen: torch.Generator) -> None:
        set_rng_states(state["rng"], gen, self.device, self.drop_gens)
        if self.scaler.is_enabled() and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])


def _in_threads(parallel_models: str, device, world: int, n_models: int, cpu_dropout: str,
                resume_rng: Optional[dict]) -> bool:
    """`use_model_threads`; a resumed run continues as its checkpoint was made: in threads (each
    model's own masks) when it has the models' generators, even with fewer threads than models
    now, else one model after the other."""
    if resume_rng is None:
        return use_model_threads(parallel_models, device, world, n_models, cpu_dropout)
    if "dropout" in resume_rng:
        return use_model_threads(parallel_models, device, world, n_models, cpu_dropout, threads=n_models)
    return False


def forward_models(fwd: list, ids, mask, device, threads: Optional[ModelThreads]):
    """(logits the loss is computed on, each model's own logits). In threads the first are leaf
    copies of the second: the loss's gradient with respect to them starts each model's backward."""
    if threads is None:
        with autocast(device):
            return [m(input_ids=ids, attention_mask=mask).logits for m in fwd], None

    def forward(mi):
        with autocast(device):  # autocast is per thread
            return fwd[mi](input_ids=ids, attention_mask=mask).logits
    model_logits = threads.map(forward)
    return [l.detach().requires_grad_() for l in model_logits], model_logits


def backward_models(loss, logits, model_logits, models, threads: Optional[ModelThreads], scaler, opt, clip: float):
    """Gradients of `loss` in every model, each model's clipped to norm `clip` (each model is
    its own network). In threads (CPU only, so no loss scaling) each model's backward and clip run
    in its own thread."""
    if threads is None:
        scaler.scale(loss).backward()
        if clip > 0:
            scaler.unscale_(opt)
            for m in models:
                torch.nn.utils.clip_grad_norm_(m.parameters(), clip, foreach=True)
        return
    grads = torch.autograd.grad(loss, logits)

    def backward(mi):
        model_logits[mi].backward(grads[mi])
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(models[mi].parameters(), clip, foreach=True)
    threads.map(backward)
