"""The Dirichlet conditional VAE of stage 2 and its loss terms (pure tensor functions)."""
from __future__ import annotations

from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F

ALPHA_MAX = 1e4  # keeps lgamma/digamma finite


class DirichletCVAE(nn.Module):
    """Encoder q(y | w, y~) -> Dirichlet alphas; decoder p(y~ | w, y) reconstructs y~."""

    def __init__(self, in_dim: int, num_classes: int, softplus_beta: float = 1.0):
        super().__init__()
        self.C = num_classes
        self.softplus_beta = softplus_beta
        self.encoder = nn.Linear(in_dim + num_classes, num_classes)
        self.decoder = nn.Linear(in_dim + num_classes, num_classes)

    def alpha(self, w: torch.Tensor, y_onehot: torch.Tensor) -> torch.Tensor:
        return self._alpha_from(self.encoder(torch.cat([w, y_onehot], -1)))

    def alpha_all_candidates(self, w: torch.Tensor) -> torch.Tensor:
        """(B, C~, C) alphas for every candidate noisy label y~ at once. The encoder is linear
        in [w, onehot(y~)]: W_w w + b once per sample, plus column y~ of W_y (C times fewer
        FLOPs than encoding B x C concatenated copies)."""
        D = w.shape[1]
        W = self.encoder.weight                                            # (C, D + C)
        h = (w @ W[:, :D].T + self.encoder.bias).unsqueeze(1) + W[:, D:].T.unsqueeze(0)
        return self._alpha_from(h)

    def _alpha_from(self, h: torch.Tensor) -> torch.Tensor:
        a = F.softplus(h, beta=self.softplus_beta) + 1.0 + 1.0 / self.C
        return a.clamp(max=ALPHA_MAX)

    def forward(self, w: torch.Tensor, y_onehot: torch.Tensor):
        alpha = self.alpha(w, y_onehot)
        v = dirichlet_sample_approx(alpha, torch.rand_like(alpha))
        recon = self.decoder(torch.cat([w, v], -1))
        return recon, alpha


def dirichlet_sample_approx(alpha: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """DirVAE's inverse-Gamma-CDF approximation: v_k = (u_k alpha_k Gamma(alpha_k))^(1/alpha_k)."""
    u = u.clamp(1e-8, 1.0)
    return torch.exp((torch.log(u * alpha) + torch.lgamma(alpha)) / alpha)


def dirichlet_kl(alpha: torch.Tensor, alpha_p: torch.Tensor) -> torch.Tensor:
    """Per-sample multi-Gamma KL (NPC/DirVAE):
    sum_k lgamma(ap_k) - lgamma(a_k) + (a_k - ap_k) digamma(a_k)."""
    return (torch.lgamma(alpha_p) - torch.lgamma(alpha)
            + (alpha - alpha_p) * torch.digamma(alpha)).sum(-1)


def coreg_kl(alphas: List[torch.Tensor]) -> torch.Tensor:
    """Sum over the batch of the mean over models of KL(a_bar || a_m),
    a_m = (alpha_m - 1) normalised."""
    a = torch.stack([(x - 1.0) / (x - 1.0).sum(-1, keepdim=True) for x in alphas])  # (M, B, C)
    a = a.clamp_min(1e-12)
    a_bar = a.mean(0)
    kl = (a_bar.unsqueeze(0) * (a_bar.log().unsqueeze(0) - a.log())).sum(-1)          # (M, B)
    return kl.mean(0).sum()


def true_label_posterior(alpha: torch.Tensor) -> torch.Tensor:
    """q(y | y~, w) = (alpha - 1) normalised."""
    a = alpha - 1.0
    return a / a.sum(-1, keepdim=True)
