"""Stage 1: co-regularised fine-tuning of M models that records embedding trajectories.

After every epoch each model embeds every sample (train, validation, test) in one inference
pass that yields both the last layer's [CLS] vector and the softmax (`embed_pass`), and the
epoch whose ensemble is the most accurate on the noisy validation labels is selected.
Where and how the models run (device, AMP, DDP, threads, RNG states) is the business of
`src.runtime.models.ModelRuntime`; this module is the method.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from src.data.batching import bucketed_batches
from src.data.tokenize import Tokens
from src.runtime.amp import autocast
from src.runtime.device import to_device
from src.runtime.distributed import gather_rows
from src.runtime.models import ModelRuntime
from src.runtime.perf import add_counts, count_batch, new_perf

log = logging.getLogger("dygen")


@dataclass(frozen=True)
class Stage1Settings:
    epochs: int
    lr: float
    weight_decay: float
    batch_size: int            # training batch (the global one under torchrun)
    eval_batch_size: int       # batch of the embedding passes
    alpha_t_hi: float          # weight of the agreement term after its warm-up (`coreg_alpha`)
    clip: float                # gradient-norm clip of each model (0: none)
    seed: int                  # batch order (and the models' own dropout generators in threads)
    length_bucket: int = 50    # see `src.data.batching.bucketed_batches` (0: random batches)
    cpu_dropout: str = "bulk"  # "bulk": `src.model.fast_dropout` on CPU; "torch": torch's dropout
    parallel_models: str = "off"  # "auto": the models in threads where `use_model_threads` allows
    keep_best: bool = True     # keep copies of the selected epoch's weights (rank 0)


@dataclass(frozen=True)
class Stage1Data:
    tokens: Tokens             # every sample: train, then validation, then test
    noisy: np.ndarray          # (N_all,) the given labels; only [:n_train + n_val] are read
    n_train: int
    n_val: int
    pad_id: int


@dataclass
class Stage1Result:
    z: np.ndarray            # (M, E, N_all, D) [CLS] trajectories (float16)
    probs: np.ndarray        # (M, E, N_all, C) softmax after each epoch
    best_epoch: int          # 0-based epoch with the best ensemble accuracy on NOISY validation labels
    val_acc_noisy: List[float]
    best_states: Optional[List[dict]] = None  # deep copies of the selected weights


def coreg_alpha(step: int, total_steps: int, alpha_hi: float) -> float:
    """CR warm-up: no agreement term during the first 10% of optimizer steps."""
    return 0.0 if step < 0.1 * total_steps else alpha_hi


def agreement_kl(logits: List[torch.Tensor], reduce: bool = True) -> torch.Tensor:
    """mean over models of KL(p_bar || p_m), averaged over the batch (reduce=False: (B,))."""
    logp = torch.stack([F.log_softmax(l.float(), dim=-1) for l in logits])   # (M, B, C)
    p_bar = logp.exp().mean(0)                                               # (B, C)
    log_p_bar = torch.log(p_bar.clamp_min(1e-12))
    kl = (p_bar.unsqueeze(0) * (log_p_bar.unsqueeze(0) - logp)).sum(-1)      # (M, B)
    return kl.mean() if reduce else kl.mean(0)


def batch_losses(logits: List[torch.Tensor], y: torch.Tensor, alpha: float) -> torch.Tensor:
    """Per-sample stage-1 loss (B,): mean over models of cross-entropy + alpha x the agreement
    KL; its batch mean is the loss of SPEC section 2."""
    ce = torch.stack([F.cross_entropy(l.float(), y, reduction="none") for l in logits]).mean(0)
    if len(logits) > 1 and alpha > 0:
        return ce + alpha * agreement_kl(logits, reduce=False)
    return ce


def make_adamw(params, *, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW (eps 1e-8), fused: one kernel over all parameters instead of a Python loop of
    small ops per tensor (on 2 CPU cores the loop took longer than the forward pass)."""
    try:
        return torch.optim.AdamW(params, lr=lr, eps=1e-8, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError):  # a device or dtype without the fused kernel
        return torch.optim.AdamW(params, lr=lr, eps=1e-8, weight_decay=weight_decay)


def _last_hidden_hook(store: dict):
    """Forward hook on the encoder (model.base_model) keeping its last hidden state, so the
    classifier's own forward gives the logits and no other layer's output is kept."""
    def hook(module, args, output):
        store["h"] = output[0] if isinstance(output, (tuple, list)) else output.last_hidden_state
    return hook


@torch.inference_mode()
def embed_pass(model, tokens: Tokens, pad_id: int, device, batch_size: int, desc: str = "embed",
               perf: Optional[dict] = None, rank: int = 0, world_size: int = 1, show_bar: bool = True):
    """[CLS] of the last layer (N, D) and softmax (N, C), dropout off; one forward pass per
    batch gives both. Length-sorted batches (padding only up to the longest in a batch).

    Under torch.distributed (world_size > 1) every rank embeds every world_size-th sample of
    the length order and the shards are all-gathered back into sample order on every rank.
    """
    model.eval()
    t0 = time.perf_counter()
    lengths = tokens.lengths()
    order = np.argsort(lengths, kind="stable")
    mine = order[rank::world_size]
    store: dict = {}
    handle = model.base_model.register_forward_hook(_last_hidden_hook(store))
    cls_parts, prob_parts = [], []
    try:
        for s in tqdm(range(0, len(mine), batch_size), desc=desc, leave=False,
                      **({"disable": True} if rank or not show_bar else {})):
            idx = mine[s:s + batch_size]
            ids, mask = tokens.batch(idx, pad_id)
            count_batch(perf, "embed", lengths[idx], ids.shape[1])
            ids, mask = to_device(device, ids, mask)
            with autocast(device):
                logits = model(input_ids=ids, attention_mask=mask).logits
            cls_parts.append(store.pop("h")[:, 0].float())
            prob_parts.append(torch.softmax(logits.float(), -1))
    finally:
        handle.remove()
    cls_out, probs_out = _in_sample_order(model, cls_parts, prob_parts, order, len(tokens), device, world_size)
    if perf is not None:
        perf["embed_s"] += time.perf_counter() - t0
    return cls_out, probs_out


def _in_sample_order(model, cls_parts, prob_parts, order, n: int, device, world_size: int):
    """This rank's batches (rows in the order of order[rank::world_size]) as (n, D) and (n, C)
    arrays in sample order, the other ranks' rows gathered in under torch.distributed."""
    D, C = model.config.hidden_size, model.config.num_labels
    cls = torch.cat(cls_parts) if cls_parts else torch.zeros((0, D), device=device)
    probs = torch.cat(prob_parts) if prob_parts else torch.zeros((0, C), device=device)
    cls_out = np.zeros((n, D), np.float32)
    probs_out = np.zeros((n, C), np.float32)
    if world_size == 1:
        cls_out[order], probs_out[order] = cls.cpu().numpy(), probs.cpu().numpy()
    else:
        for r, (c, p) in enumerate(zip(gather_rows(cls), gather_rows(probs))):
            rows = order[r::world_size]
            cls_out[rows], probs_out[rows] = c[:len(rows)], p[:len(rows)]
    return cls_out, probs_out


def embed_models(rt: ModelRuntime, tokens: Tokens, pad_id: int, batch_size: int, epoch: int,
                 perf: Optional[dict] = None) -> Iterable[Tuple[np.ndarray, np.ndarray]]:
    """`embed_pass` of every model of `rt`: at the same time in its threads (perf: the counts
    of all and the wall time), else one after the other (a generator: each model's arrays
    only while they are stored)."""
    M = len(rt.models)
    if rt.pool is None:
        return (embed_pass(m, tokens, pad_id, rt.device, batch_size, desc=f"embed model {mi + 1}/{M} epoch {epoch + 1}",
                           perf=perf, rank=rt.rank, world_size=rt.world) for mi, m in enumerate(rt.models))
    t0 = time.perf_counter()

    def one(mi):
        local = new_perf()
        out = embed_pass(rt.models[mi], tokens, pad_id, rt.device, batch_size, perf=local, show_bar=mi == 0,
                         desc=f"embed {M} models epoch {epoch + 1}")
        return out, local
    results = rt.pool.map(one)
    add_counts(perf, (local for _, local in results), "embed")
    if perf is not None:
        perf["embed_s"] += time.perf_counter() - t0
    return [out for out, _ in results]


@dataclass
class Selection:
    """What the epochs so far recorded, and the epoch selected among them."""
    probs: np.ndarray                         # (M, E, N_all, C) softmax after each epoch
    val_acc: List[float] = field(default_factory=list)
    best_epoch: int = -1
    best_acc: float = -1.0
    best_states: Optional[List[dict]] = None

    def record(self, epoch: int, embedded, z_out: Optional[np.ndarray], data: Stage1Data) -> float:
        """Stores one epoch's embeddings (z_out) and probabilities; returns the ensemble's
        accuracy on the noisy validation labels."""
        for mi, (cls, p) in enumerate(embedded):
            if z_out is not None:
                cls = cls.astype(z_out.dtype)
            if not (np.isfinite(cls).all() and np.isfinite(p).all()):
                raise FloatingPointError(f"stage 1: model {mi + 1}'s embeddings or probabilities after epoch "
                                         f"{epoch + 1} are not finite (NaN, or beyond float16 range)")
            if z_out is not None:
                z_out[mi, epoch] = cls
            self.probs[mi, epoch] = p
        val = slice(data.n_train, data.n_train + data.n_val)
        acc = float((self.probs[:, epoch, val].mean(0).argmax(1) == data.noisy[val]).mean()) if data.n_val else 0.0
        self.val_acc.append(acc)
        return acc

    def select(self, epoch: int, acc: float, models: list, keep: bool) -> None:
        if acc > self.best_acc:
            self.best_acc, self.best_epoch = acc, epoch
            if keep:  # real copies: the live models keep training
                self.best_states = [{k: v.detach().cpu().clone() for k, v in m.state_dict().items()} for m in models]


@dataclass
class Stage1Loop:
    """One fine-tuning's parts: the models' runtime, the data, the optimizer, the learning-rate
    schedule (stepped once per optimizer step; the authors restarted it every epoch) and the
    batch-shuffling generator."""
    rt: ModelRuntime
    data: Stage1Data
    s: Stage1Settings
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    gen: torch.Generator
    total: int                                # optimizer steps of the whole run
    perf: Optional[dict] = None
    step: int = 0

    @classmethod
    def build(cls, rt: ModelRuntime, data: Stage1Data, s: Stage1Settings, perf: Optional[dict]) -> "Stage1Loop":
        from transformers import get_linear_schedule_with_warmup  # where used: importing this module stays light
        opt = make_adamw([p for m in rt.models for p in m.parameters()], lr=s.lr, weight_decay=s.weight_decay)
        total = s.epochs * math.ceil(data.n_train / s.batch_size)
        sched = get_linear_schedule_with_warmup(opt, int(0.06 * total), total)
        return cls(rt, data, s, opt, sched, torch.Generator().manual_seed(s.seed), total, perf)

    def train_epoch(self, epoch: int) -> None:
        self.rt.train_mode(self.s.seed, epoch)
        lengths = self.data.tokens.lengths()
        batches = bucketed_batches(lengths[:self.data.n_train], self.s.batch_size, self.gen, self.s.length_bucket)
        bar = tqdm(batches, desc=f"stage 1 epoch {epoch + 1}/{self.s.epochs}", leave=False,
                   **({"disable": True} if self.rt.rank else {}))
        t0 = time.perf_counter()
        for gidx in bar:
            shown = self.train_step(gidx, lengths, epoch)
            if self.rt.rank == 0:
                bar.set_postfix(loss=f"{shown.item():.3f}")
        if self.perf is not None:
            self.perf["train_s"] += time.perf_counter() - t0

    def train_step(self, gidx: np.ndarray, lengths: np.ndarray, epoch: int) -> torch.Tensor:
        """One optimizer step on the global batch `gidx`; returns its mean loss."""
        idx, weight = self.rt.my_share(gidx)
        ids, mask = self.data.tokens.batch(idx, self.data.pad_id)
        count_batch(self.perf, "train", lengths[idx], ids.shape[1])
        y = torch.from_numpy(self.data.noisy[idx]).long()
        ids, mask, y = to_device(self.rt.device, ids, mask, y)
        logits, model_logits = self.rt.forward(ids, mask)
        alpha = coreg_alpha(self.step, self.total, self.s.alpha_t_hi)
        loss, shown = self.rt.batch_loss(batch_losses(logits, y, alpha), weight, len(gidx))
        if not torch.isfinite(shown):
            raise FloatingPointError(f"stage 1: loss is {shown.item()} at epoch {epoch + 1}, step {self.step}")
        self.rt.update(loss, logits, model_logits, self.opt, self.s.clip)
        self.sched.step()
        self.step += 1
        return shown

    def state(self, n_done: int, sel: Selection) -> dict:
        """Everything needed to continue after `n_done` finished epochs (see `restore`)."""
        return {"epoch": n_done, "step": self.step,
                "models": [{k: v.detach().cpu() for k, v in m.state_dict().items()} for m in self.rt.models],
                "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
                **self.rt.state(self.gen),
                "probs": torch.from_numpy(sel.probs[:, :n_done].copy()),
                "val_acc": list(sel.val_acc), "best_epoch": sel.best_epoch, "best_acc": sel.best_acc,
                "best_states": sel.best_states}

    def restore(self, state: dict, sel: Selection) -> int:
        """Continues from a `state`; returns the number of finished epochs."""
        done, self.step = int(state["epoch"]), int(state["step"])
        for m, sd in zip(self.rt.models, state["models"]):
            m.load_state_dict(sd)
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        sel.probs[:, :done] = state["probs"].numpy()
        sel.val_acc = [float(a) for a in state["val_acc"]]
        sel.best_epoch, sel.best_acc = int(state["best_epoch"]), float(state["best_acc"])
        sel.best_states = state.get("best_states")
        self.rt.restore(state, self.gen)
        return done


def train_stage1(models: list, data: Stage1Data, settings: Stage1Settings, device, *,
                 z_out: Optional[np.ndarray], resume: Optional[dict] = None,
                 on_epoch_end: Optional[Callable[[dict], None]] = None,
                 perf: Optional[dict] = None) -> Stage1Result:
    """Fine-tune `models` on data.tokens[:n_train] with labels data.noisy[:n_train].

    z_out: preallocated (M, E, N_all, D) array (a memory map) that receives the trajectories
    (None on the ranks > 0 of a distributed run: only rank 0 writes).
    on_epoch_end(state): called after every epoch with everything needed to resume
    (`Stage1Loop.state`); resume: such a state, to continue after its last epoch (z_out must
    then already hold the finished epochs). perf: counters (`src.runtime.perf.new_perf`), filled in.

    Under torch.distributed (torchrun) every rank takes its contiguous shard of each global
    batch; the updates are those of one process with the same batches, up to float rounding
    (dropout masks differ: each rank draws its own). See `ModelRuntime`.
    """
    s, M, C = settings, len(models), models[0].config.num_labels
    with ModelRuntime.start(models, device, cpu_dropout=s.cpu_dropout, parallel_models=s.parallel_models,
                            seed=s.seed, resume_rng=resume["rng"] if resume is not None else None) as rt:
        loop = Stage1Loop.build(rt, data, s, perf)
        sel = Selection(np.zeros((M, s.epochs, len(data.tokens), C), np.float32))
        start = loop.restore(resume, sel) if resume is not None else 0
        for epoch in range(start, s.epochs):
            loop.train_epoch(epoch)
            acc = sel.record(epoch, embed_models(rt, data.tokens, data.pad_id, s.eval_batch_size, epoch, perf),
                             z_out, data)
            if rt.rank == 0:
                log.info("stage 1 epoch %d/%d: noisy-validation %s acc %.4f", epoch + 1, s.epochs,
                         "ensemble" if M > 1 else "model", acc)
            sel.select(epoch, acc, models, keep=s.keep_best and rt.rank == 0)
            if on_epoch_end is not None:
                on_epoch_end(loop.state(epoch + 1, sel))
    return Stage1Result(z_out, sel.probs, sel.best_epoch, sel.val_acc, sel.best_states)
