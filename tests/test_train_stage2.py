"""Stage-2 training: a separable toy case it must fit, and the co-regularisation warm-up."""
from __future__ import annotations

import numpy as np
import torch

from src.model import evaluate as ev
from src.model.train_stage2 import coreg_weight, train_stage2


def test_coreg_weight_switches_on_after_the_warmup_fraction():
    # T = 10, warm-up 0.2: epochs 0 and 1 without, from epoch 2 with lambda
    assert [coreg_weight(e, 10, 0.2, 0.7) for e in range(4)] == [0.0, 0.0, 0.7, 0.7]
    assert [coreg_weight(e, 3, 0.0, 1.0) for e in range(3)] == [1.0, 1.0, 1.0]
    assert [coreg_weight(e, 3, 1.0, 1.0) for e in range(3)] == [0.0, 0.0, 0.0]


def test_fits_a_separable_toy_case():
    """Three well-separated clusters, a prior that names each sample's cluster: the trained VAE's
    q(y | y~, w) must put the true label first for every sample, whatever the observed y~."""
    rng = np.random.default_rng(0)
    C, n = 3, 150
    y = np.arange(n) % C
    w = (np.eye(C, 8)[y] * 4 + rng.normal(0, 0.3, (n, 8))).astype(np.float32)
    noisy = y.copy()
    flip = rng.random(n) < 0.2
    noisy[flip] = (y[flip] + 1) % C                                     # 20% of the targets wrong
    alpha_p = 10 * np.eye(C)[y] + 1 + 1 / C                             # a prior that knows the cluster
    torch.manual_seed(0)
    vaes = train_stage2([w, w], [noisy, noisy], np.stack([alpha_p, alpha_p]), C, epochs=60, lr=0.05,
                        batch_size=32, softplus_beta=1.0, beta=1.0, lambda_t=1.0, warmup_fraction=0.2, seed=0)
    q = np.stack([ev.q_all_candidates(v, w, C) for v in vaes])           # (M, N, C~, C)
    assert (q.argmax(-1) == y[None, :, None]).mean() == 1.0
    corrected = ev.corrected_distribution(q, noisy).argmax(1)
    assert (corrected == y).all() and (noisy != y).any()                 # every wrong target corrected
