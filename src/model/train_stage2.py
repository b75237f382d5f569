"""Stage 2: one Dirichlet VAE per stage-1 model, trained jointly with co-regularisation."""
from __future__ import annotations

import logging
from typing import Callable, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from src.model.network import DirichletCVAE, coreg_kl, dirichlet_kl

log = logging.getLogger("dygen")


def coreg_weight(epoch: int, total_epochs: int, warmup_fraction: float, lambda_t: float) -> float:
    return 0.0 if epoch < warmup_fraction * total_epochs else lambda_t


def train_stage2(w: List[np.ndarray], targets: List[np.ndarray], alpha_prior: np.ndarray, num_classes: int, *,
                 epochs: int, lr: float, batch_size: int, softplus_beta: float, beta: float,
                 lambda_t: float, warmup_fraction: float, seed: int,
                 on_epoch_end: Optional[Callable[[int, List[DirichletCVAE]], None]] = None):
    """w: M arrays (N, width) of the N fitted samples; targets: M arrays (N,), the label each
    model's VAE reconstructs (the noisy label for DyGen, the predicted one for NPC);
    alpha_prior (M, N, C). Returns the M trained VAEs. `on_epoch_end(epoch, vaes)` may record
    diagnostics.
    """
    M, N, C = len(w), len(targets[0]), num_classes
    torch.manual_seed(seed)
    vaes = [DirichletCVAE(w[0].shape[1], C, softplus_beta) for _ in range(M)]
    params = [p for v in vaes for p in v.parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    w_t = [torch.as_tensor(x, dtype=torch.float32) for x in w]
    y1h = [F.one_hot(torch.as_tensor(np.asarray(t, np.int64)), C).float() for t in targets]
    ap = torch.as_tensor(alpha_prior, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    for epoch in tqdm(range(epochs), desc="stage 2", leave=False):
        for v in vaes:
            v.train()
        lam = coreg_weight(epoch, epochs, warmup_fraction, lambda_t)
        perm = torch.randperm(N, generator=gen)
        for s in range(0, N, batch_size):
            idx = perm[s:s + batch_size]
            terms, alphas = [], []
            for m, vae in enumerate(vaes):
                recon, alpha = vae(w_t[m][idx], y1h[m][idx])
                rec = F.binary_cross_entropy_with_logits(recon, y1h[m][idx], reduction="sum")
                kl = dirichlet_kl(alpha, ap[m, idx]).sum()
                terms.append(rec + beta * kl)
                alphas.append(alpha)
            loss = torch.stack(terms).mean()
            if M > 1 and lam > 0:
                loss = loss + lam * coreg_kl(alphas)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"stage 2: loss is {loss.item()} at epoch {epoch + 1}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if on_epoch_end is not None:
            on_epoch_end(epoch, vaes)
    return vaes
