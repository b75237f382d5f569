"""Stage 1: co-regularised fine-tuning of M models that records embedding trajectories.

After every epoch each model embeds every sample (train, validation, test) in one
inference pass that yields both the last layer's [CLS] vector and the softmax.
"""
from __future__ import annotations

import logging
import math
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from src.data.batching import bucketed_batches, shard
from src.data.tokenize import Tokens
from src.model import fast_dropout
from src.model.loading import amp_dtype, autocast

log = logging.getLogger("dygen")


@dataclass
class Stage1Result:
    z: np.ndarray            # (M, E, N_all, D) [CLS] trajectories (float16)
    probs: np.ndarray        # (M, E, N_all, C) softmax after each epoch
    best_epoch: int          # 0-based epoch with the best ensemble accuracy on NOISY validation labels
    val_acc_noisy: List[float]
    best_states: Optional[List[dict]] = None  # deep copies of the selected weights
    perf: Optional[dict] = None  # wall time and token counts of this run's passes (scripts/bench.py)


def new_perf() -> dict:
    """Counters of one stage-1 run: seconds, sequences, real (non-pad) tokens, padded tokens
    (batch x width, what the model computes on) and the sum of squared real lengths (attention
    FLOPs), for the training steps (per model) and the embedding passes (all models)."""
    return {f"{part}_{k}": 0 for part in ("train", "embed") for k in ("s", "seqs", "tokens", "padded", "len_sq")}


def count_batch(perf: Optional[dict], part: str, lens: np.ndarray, width: int) -> None:
    if perf is not None:
        lens = np.asarray(lens, dtype=np.int64)
        perf[f"{part}_seqs"] += len(lens)
        perf[f"{part}_tokens"] += int(lens.sum())
        perf[f"{part}_padded"] += len(lens) * int(width)
        perf[f"{part}_len_sq"] += int((lens ** 2).sum())


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


def linear_warmup_decay(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return step / max(1, warmup)
    return max(0.0, (total - step) / max(1, total - warmup))


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
            if device.type == "cuda":
                ids, mask = ids.pin_memory(), mask.pin_memory()
            ids = ids.to(device, non_blocking=True)
            mask = mask.to(device, non_blocking=True)
            with autocast(device):
                logits = model(input_ids=ids, attention_mask=mask).logits
            cls_parts.append(store.pop("h")[:, 0].float())
            prob_parts.append(torch.softmax(logits.float(), -1))
    finally:
        handle.remove()
    D, C = model.config.hidden_size, model.config.num_labels
    cls = torch.cat(cls_parts) if cls_parts else torch.zeros((0, D), device=device)
    probs = torch.cat(prob_parts) if prob_parts else torch.zeros((0, C), device=device)
    cls_out = np.zeros((len(tokens), D), np.float32)
    probs_out = np.zeros((len(tokens), C), np.float32)
    if world_size == 1:
        cls_out[mine], probs_out[mine] = cls.cpu().numpy(), probs.cpu().numpy()
    else:
        for r, (c, p) in enumerate(zip(_gather_rows(cls), _gather_rows(probs))):
            rows = order[r::world_size]
            cls_out[rows], probs_out[rows] = c[:len(rows)], p[:len(rows)]
    if perf is not None:
        perf["embed_s"] += time.perf_counter() - t0
    return cls_out, probs_out


def _gather_rows(x: torch.Tensor) -> List[np.ndarray]:
    """all_gather of every rank's (n_r, K) rows (n_r differ by at most one): each padded to the
    largest n_r, gathered, returned per rank (padding rows included, callers cut them)."""
    import torch.distributed as dist
    world = dist.get_world_size()
    n = torch.tensor([x.shape[0]], device=x.device)
    width = n.clone()
    dist.all_reduce(width, op=dist.ReduceOp.MAX)
    padded = torch.zeros((int(width), x.shape[1]), dtype=x.dtype, device=x.device)
    padded[:x.shape[0]] = x
    out = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(out, padded.contiguous())
    return [o.cpu().numpy() for o in out]


def dist_info() -> tuple:
    """(rank, world_size) of torch.distributed's default group, (0, 1) without one."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class ModelThreads:
    """Runs one call per model at the same time, each in its own thread with threads // M of
    torch's intra-op threads (a thread's count is its own: the caller's is left as it was).

    Why: on a few CPU cores two models each on one core run a step 10-20% faster than both
    models one after the other on all cores (small matrix products and the element-wise ops
    between them use one core better than two). Each model must draw its dropout masks from
    its own generator (`fast_dropout.set_generator`), or the masks depend on thread timing.
    """

    def __init__(self, n_models: int, threads: int):
        self.n = n_models
        self.per_model = max(1, threads // n_models)
        self.pool = ThreadPoolExecutor(n_models, thread_name_prefix="dygen-model")

    def map(self, fn: Callable[[int], object]) -> list:
        def run(i):
            torch.set_num_threads(self.per_model)
            return fn(i)
        return list(self.pool.map(run, range(self.n)))

    def close(self) -> None:
        self.pool.shutdown()


def use_model_threads(parallel_models: str, device, world: int, n_models: int, cpu_dropout: str,
                      threads: Optional[int] = None) -> bool:
    """Whether stage 1 trains the models in threads (`ModelThreads`): asked for (auto), on CPU,
    one process (DDP's collectives would interleave), M > 1, bulk masks (torch's dropout only
    draws from the global generator) and at least one of torch's `threads` (default: its
    current count) per model."""
    threads = torch.get_num_threads() if threads is None else threads
    return (parallel_models == "auto" and torch.device(device).type == "cpu" and world == 1
            and n_models > 1 and cpu_dropout == "bulk" and threads >= n_models)


def dropout_seed(seed: int, model: int) -> int:
    """Seed of model `model`'s dropout generator when the models train in threads."""
    return (seed * 1_000_003 + 7_919 * (model + 1)) % 2 ** 63


def _batch_losses(logits: List[torch.Tensor], y: torch.Tensor, alpha: float, M: int) -> torch.Tensor:
    """Per-sample stage-1 loss (B,): mean over models of cross-entropy + alpha x the agreement
    KL; its batch mean is the loss of SPEC section 2."""
    ce = torch.stack([F.cross_entropy(l.float(), y, reduction="none") for l in logits]).mean(0)
    if M > 1 and alpha > 0:
        return ce + alpha * agreement_kl(logits, reduce=False)
    return ce


def make_adamw(params, *, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW (eps 1e-8), fused: one kernel over all parameters instead of a Python loop of
    small ops per tensor (on 2 CPU cores the loop took longer than the forward pass)."""
    try:
        return torch.optim.AdamW(params, lr=lr, eps=1e-8, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError):  # a device or dtype without the fused kernel
        return torch.optim.AdamW(params, lr=lr, eps=1e-8, weight_decay=weight_decay)


def train_stage1(models: list, tokens: Tokens, noisy: np.ndarray, n_train: int, n_val: int,
                 pad_id: int, device, *, epochs: int, lr: float, weight_decay: float,
                 batch_size: int, eval_batch_size: int, alpha_t_hi: float, clip: float,
                 seed: int, z_out: Optional[np.ndarray], keep_best: bool = True,
                 resume: Optional[dict] = None,
                 on_epoch_end: Optional[Callable[[dict], None]] = None,
                 perf: Optional[dict] = None, length_bucket: int = 50,
                 cpu_dropout: str = "bulk", parallel_models: str = "off") -> Stage1Result:
    """Fine-tune `models` on tokens[:n_train] with labels noisy[:n_train].

    z_out: preallocated (M, E, N_all, D) array (a memory map) that receives the trajectories
    (None on the ranks > 0 of a distributed run: only rank 0 writes).
    on_epoch_end(state): called after every epoch with everything needed to resume
    (see `training_state`); resume: such a state, to continue after its last epoch
    (z_out must then already hold the finished epochs). perf: counters (see `new_perf`),
    filled in. length_bucket: see `src.data.batching.bucketed_batches` (0: random batches).
    cpu_dropout: "bulk" puts `src.model.fast_dropout` into the models when training on CPU
    (bulk-drawn masks, same distribution); "torch" keeps torch's dropout.
    parallel_models: "auto" trains and embeds the models at the same time, one thread each
    (`ModelThreads`), where `use_model_threads` allows; each model then draws its masks from its
    own generator seeded by `dropout_seed`. The backward starts from the loss's gradient with
    respect to each model's logits (the co-regularisation couples the models only there), so
    every model's backward runs in its own thread. "off": one model after the other.

    Under torch.distributed (torchrun) every rank takes its contiguous shard of each global
    batch of `batch_size`; each model is wrapped in DistributedDataParallel and the per-rank
    losses are weighted so that the averaged gradient is the global batch's: the same
    updates as one process with the same batches, up to float rounding (dropout masks
    differ: each rank draws its own, reseeded from (seed, epoch, rank) every epoch).
    """
    M = len(models)
    n_all = len(tokens)
    C = models[0].config.num_labels
    rank, world = dist_info()
    for m in models:
        m.to(device)
        if cpu_dropout == "bulk" and torch.device(device).type == "cpu":
            fast_dropout.install(m)
    fwd = models
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP
        ids_ = [device.index] if device.type == "cuda" else None
        fwd = [DDP(m, device_ids=ids_, broadcast_buffers=False) for m in models]
    in_threads = use_model_threads(parallel_models, device, world, M, cpu_dropout)
    if resume is not None and "dropout" in resume["rng"] and not in_threads:
        # a checkpoint made with the models in threads continues that way (each model's own masks),
        # with fewer threads than models if need be: the same run as an uninterrupted one
        in_threads = use_model_threads(parallel_models, device, world, M, cpu_dropout, threads=M)
    elif resume is not None and "dropout" not in resume["rng"] and in_threads:
        in_threads = False  # made one model after the other (fewer threads then): continue so
    # the models' own dropout generators (their states come from `resume` below, if any)
    drop_gens = ([torch.Generator().manual_seed(dropout_seed(seed, mi)) for mi in range(M)]
                 if in_threads else None)
    params = [p for m in models for p in m.parameters()]
    opt = make_adamw(params, lr=lr, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(n_train / batch_size)
    total = epochs * steps_per_epoch
    warmup = int(0.06 * total)
    # Stepped once per optimizer step (the authors restarted it every epoch).
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: linear_warmup_decay(s, warmup, total))
    # fp16 autocast (CUDA GPUs without bf16) needs loss scaling; a no-op otherwise
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype(device) == torch.float16)
    pin = device.type == "cuda"  # page-locked batches: asynchronous host-to-GPU copies
    gen = torch.Generator().manual_seed(seed)
    y_train = torch.from_numpy(noisy[:n_train]).long()
    lengths = tokens.lengths()
    val_noisy = noisy[n_train:n_train + n_val]
    probs_all = np.zeros((M, epochs, n_all, C), np.float32)
    val_acc, best_epoch, best_acc, best_states = [], -1, -1.0, None
    step, start = 0, 0
    if resume is not None:
        start, step = int(resume["epoch"]), int(resume["step"])
        for m, sd in zip(models, resume["models"]):
            m.load_state_dict(sd)
        opt.load_state_dict(resume["optimizer"])
        sched.load_state_dict(resume["scheduler"])
        probs_all[:, :start] = resume["probs"].numpy()
        val_acc = [float(a) for a in resume["val_acc"]]
        best_epoch, best_acc = int(resume["best_epoch"]), float(resume["best_acc"])
        best_states = resume.get("best_states")
        set_rng_states(resume["rng"], gen, device, drop_gens)
        if scaler.is_enabled() and resume.get("scaler"):
            scaler.load_state_dict(resume["scaler"])
    threads = None
    if in_threads:
        for m, g in zip(models, drop_gens):
            fast_dropout.set_generator(m, g)
        threads = ModelThreads(M, torch.get_num_threads())
        log.info("stage 1: the %d models train at the same time, %d thread(s) each", M, threads.per_model)
    try:
        for epoch in range(start, epochs):
            for m in fwd:
                m.train()
            if world > 1:  # each rank its own dropout stream, reproducible on resume
                torch.manual_seed((seed * 1_000_003 + epoch * 1_009 + rank) % 2 ** 63)
            batches = bucketed_batches(lengths[:n_train], batch_size, gen, length_bucket)
            bar = tqdm(batches, desc=f"stage 1 epoch {epoch + 1}/{epochs}", leave=False,
                       **({"disable": True} if rank else {}))
            t_train = time.perf_counter()
            for gidx in bar:
                idx = shard(gidx, rank, world) if world > 1 else gidx
                weight = 1.0
                if len(idx) == 0:  # a short last batch: take part in the all-reduce with zero weight
                    idx, weight = gidx[:1], 0.0
                ids, mask = tokens.batch(idx, pad_id)
                count_batch(perf, "train", lengths[idx], ids.shape[1])
                if pin:
                    ids, mask = ids.pin_memory(), mask.pin_memory()
                ids = ids.to(device, non_blocking=True)
                mask = mask.to(device, non_blocking=True)
                y = y_train[idx].to(device, non_blocking=True)
                logits, model_logits = forward_models(fwd, ids, mask, device, threads)
                alpha = coreg_alpha(step, total, alpha_t_hi)
                per_sample = _batch_losses(logits, y, alpha, M)
                if world == 1:
                    loss = per_sample.mean()
                    shown = loss.detach()
                else:  # DDP averages gradients over ranks: weight each rank by its share of the batch
                    loss = per_sample.sum() * (weight * world / len(gidx))
                    shown = loss.detach() / world
                    torch.distributed.all_reduce(shown)
                if not torch.isfinite(shown):
                    raise FloatingPointError(f"stage 1: loss is {shown.item()} at epoch {epoch + 1}, step {step}")
                opt.zero_grad(set_to_none=True)
                backward_models(loss, logits, model_logits, models, threads, scaler, opt, clip)
                scaler.step(opt)
                scaler.update()
                sched.step()
                step += 1
                if rank == 0:
                    bar.set_postfix(loss=f"{shown.item():.3f}")
            if perf is not None:
                perf["train_s"] += time.perf_counter() - t_train
            if threads:
                embedded = _embed_in_threads(threads, models, tokens, pad_id, device, eval_batch_size, epoch, perf)
            else:
                embedded = (embed_pass(m, tokens, pad_id, device, eval_batch_size,
                                       desc=f"embed model {mi + 1}/{M} epoch {epoch + 1}", perf=perf,
                                       rank=rank, world_size=world) for mi, m in enumerate(models))
            for mi, (cls, p) in enumerate(embedded):
                if z_out is not None:
                    cls = cls.astype(z_out.dtype)
                if not (np.isfinite(cls).all() and np.isfinite(p).all()):
                    raise FloatingPointError(f"stage 1: model {mi + 1}'s embeddings or probabilities after epoch "
                                             f"{epoch + 1} are not finite (NaN, or beyond float16 range)")
                if z_out is not None:
                    z_out[mi, epoch] = cls
                probs_all[mi, epoch] = p
            ens_val = probs_all[:, epoch, n_train:n_train + n_val].mean(0).argmax(1)
            acc = float((ens_val == val_noisy).mean()) if n_val else 0.0
            val_acc.append(acc)
            if rank == 0:
                log.info("stage 1 epoch %d/%d: noisy-validation ensemble acc %.4f", epoch + 1, epochs, acc)
            if acc > best_acc:
                best_acc, best_epoch = acc, epoch
                if keep_best and rank == 0:  # real copies: the live models keep training
                    best_states = [{k: v.detach().cpu().clone() for k, v in m.state_dict().items()} for m in models]
            if on_epoch_end is not None:
                state = training_state(epoch + 1, step, models, opt, sched, gen, device, probs_all,
                                       val_acc, best_epoch, best_acc, best_states, drop_gens)
                if scaler.is_enabled():
                    state["scaler"] = scaler.state_dict()
                on_epoch_end(state)
    finally:
        if threads:
            threads.close()
            for m in models:  # back to torch's global generator
                fast_dropout.set_generator(m, None)
    return Stage1Result(z_out, probs_all, best_epoch, val_acc, best_states, perf)


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


def _embed_in_threads(threads: ModelThreads, models, tokens, pad_id, device, eval_batch_size, epoch, perf):
    """embed_pass of every model at the same time; perf gets the counts of all and the wall time."""
    t0 = time.perf_counter()

    def one(mi):
        local = new_perf()
        out = embed_pass(models[mi], tokens, pad_id, device, eval_batch_size, perf=local, show_bar=mi == 0,
                         desc=f"embed {len(models)} models epoch {epoch + 1}")
        return out, local
    results = threads.map(one)
    if perf is not None:
        for _, local in results:
            for k in perf:
                if k.startswith("embed_") and k != "embed_s":
                    perf[k] += local[k]
        perf["embed_s"] += time.perf_counter() - t0
    return [out for out, _ in results]


def training_state(n_done: int, step: int, models, opt, sched, gen, device, probs_all, val_acc,
                   best_epoch, best_acc, best_states, drop_gens=None) -> dict:
    """Everything train_stage1 needs to continue after `n_done` finished epochs; plain
    tensors, numbers and lists only, so torch.load(weights_only=True) reads it back."""
    return {"epoch": n_done, "step": step,
            "models": [{k: v.detach().cpu() for k, v in m.state_dict().items()} for m in models],
            "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "rng": get_rng_states(gen, device, drop_gens),
            "probs": torch.from_numpy(probs_all[:, :n_done].copy()),
            "val_acc": list(val_acc), "best_epoch": best_epoch, "best_acc": best_acc,
            "best_states": best_states}


def get_rng_states(gen: torch.Generator, device, drop_gens=None) -> dict:
    """The batch-shuffling generator, torch's global RNG (dropout), numpy's and Python's, and the
    models' own dropout generators where they have them."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    states = {"generator": gen.get_state(), "torch": torch.get_rng_state(),
              "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                        "has_gauss": int(has_gauss), "gauss": float(gauss)},
              "python": random.getstate()}
    if torch.device(device).type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state_all()
    if drop_gens:
        states["dropout"] = [g.get_state() for g in drop_gens]
    return states


def set_rng_states(states: dict, gen: torch.Generator, device, drop_gens=None) -> None:
    gen.set_state(states["generator"])
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    random.setstate(states["python"])
    if torch.device(device).type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state_all(states["cuda"])
    if drop_gens:  # train_stage1 uses them only when the checkpoint has them
        for g, st in zip(drop_gens, states["dropout"]):
            g.set_state(st)
