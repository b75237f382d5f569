import numpy as np
import torch

from src.model.network import DirichletCVAE, coreg_kl, dirichlet_kl, dirichlet_sample_approx, true_label_posterior


def test_dirichlet_kl_is_the_sum_of_gamma_kls():
    """The multi-Gamma KL equals sum_k KL(Gamma(a_k, 1) || Gamma(ap_k, 1)), computed by torch's
    own Gamma distributions (an independent reference); 0 at the prior."""
    from torch.distributions import Gamma, kl_divergence
    torch.manual_seed(0)
    a = torch.rand(64, 5, dtype=torch.float64) * 8 + 1.1
    ap = torch.rand(64, 5, dtype=torch.float64) * 8 + 1.1
    ref = kl_divergence(Gamma(a, torch.ones_like(a)), Gamma(ap, torch.ones_like(ap))).sum(-1)
    assert torch.allclose(dirichlet_kl(a, ap), ref, atol=1e-9)
    assert torch.allclose(dirichlet_kl(ap.clone(), ap), torch.zeros(64, dtype=torch.float64), atol=1e-12)


def test_coreg_zero_when_models_agree_positive_otherwise():
    a = torch.rand(8, 4) + 1.5
    assert coreg_kl([a, a.clone(), a.clone()]).abs() < 1e-6
    assert coreg_kl([a, a.flip(-1)]) > 0


def test_sample_approx_is_the_inverse_gamma_cdf_small_alpha_limit():
    alpha = torch.tensor([[1.5, 3.0, 10.0]])
    u = torch.tensor([[0.3, 0.5, 0.9]])
    expect = torch.exp((torch.log(u * alpha) + torch.lgamma(alpha)) / alpha)
    assert torch.allclose(dirichlet_sample_approx(alpha, u), expect)
    assert torch.all(dirichlet_sample_approx(alpha, torch.zeros_like(alpha)) >= 0)


def test_alpha_bounds_and_posterior_simplex():
    torch.manual_seed(0)
    vae = DirichletCVAE(12, 4)
    w = torch.randn(16, 12) * 100
    y = torch.nn.functional.one_hot(torch.randint(0, 4, (16,)), 4).float()
    alpha = vae.alpha(w, y)
    assert torch.isfinite(alpha).all() and (alpha > 1 + 1 / 4 - 1e-6).all()
    q = true_label_posterior(alpha)
    assert torch.allclose(q.sum(-1), torch.ones(16)) and (q >= 0).all()
    recon, a2 = vae(w, y)
    assert recon.shape == (16, 4) and torch.isfinite(recon).all()


# ---- numerical guards at the extremes (issue: nothing lost, never a traceback) ----
from src.model.network import ALPHA_MAX  # noqa: E402


def test_alphas_stay_finite_and_in_range_for_extreme_inputs():
    torch.manual_seed(0)
    C = 5
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
    C = 5
    alpha = torch.tensor([[1 + 1 / C] * C, [ALPHA_MAX] * C])
    for u in (torch.zeros_like(alpha), torch.full_like(alpha, 1e-12), torch.ones_like(alpha)):
        v = dirichlet_sample_approx(alpha, u)
        assert torch.isfinite(v).all() and (v > 0).all()
    prior = torch.full_like(alpha, 1 + 1 / C)
    assert torch.isfinite(dirichlet_kl(alpha, prior)).all()
    assert torch.isfinite(dirichlet_kl(prior, alpha)).all()


def test_alpha_for_all_candidates_at_once_equals_one_candidate_at_a_time():
    import torch
    from src.model.network import DirichletCVAE
    torch.manual_seed(0)
    C, D, B = 5, 12, 7
    vae = DirichletCVAE(D, C, softplus_beta=2.0)
    w = torch.randn(B, D)
    all_at_once = vae.alpha_all_candidates(w)                     # (B, C~, C)
    for y in range(C):
        one = vae.alpha(w, torch.nn.functional.one_hot(torch.full((B,), y), C).float())
        assert torch.allclose(all_at_once[:, y], one, atol=1e-5)
