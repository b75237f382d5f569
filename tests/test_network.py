"""Numerical guards of the Dirichlet VAE: alphas and loss terms stay finite at the extremes."""
from __future__ import annotations

import torch

from src.model.network import ALPHA_MAX, DirichletCVAE, coreg_kl, dirichlet_kl, dirichlet_sample_approx

C = 5


def test_alphas_stay_finite_and_in_range_for_extreme_inputs():
    torch.manual_seed(0)
    vae = DirichletCVAE(8, C)
    y = torch.eye(C)[[0, 1, 2]]
    for scale in (1e30, -1e30, 0.0, 1e-30):
        w = torch.full((3, 8), scale)
        w[1] = -w[1]
        a = vae.alpha(w, y)
        assert torch.isfinite(a).all()
        assert (a >= 1 + 1 / C - 1e-6).all() and (a <= ALPHA_MAX).all()
        recon, alpha = vae(w, y)
        assert torch.isfinite(recon).all() and torch.isfinite(alpha).all()


def test_sample_and_kl_finite_at_the_clamps():
    alpha = torch.tensor([[1 + 1 / C] * C, [ALPHA_MAX] * C])
    for u in (torch.zeros_like(alpha), torch.full_like(alpha, 1e-12), torch.ones_like(alpha)):
        v = dirichlet_sample_approx(alpha, u)
        assert torch.isfinite(v).all() and (v > 0).all()
    prior = torch.full_like(alpha, 1 + 1 / C)
    assert torch.isfinite(dirichlet_kl(alpha, prior)).all()
    assert torch.isfinite(dirichlet_kl(prior, alpha)).all()


def test_kl_terms_vanish_for_identical_distributions():
    a = torch.tensor([[1.5, 2.0, 7.0, 1.2, 3.0]])
    assert torch.allclose(dirichlet_kl(a, a), torch.zeros(1))
    assert torch.allclose(coreg_kl([a, a.clone()]), torch.zeros(()))
    assert coreg_kl([a, a.flip(-1)]) > 0
