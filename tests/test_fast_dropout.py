"""Bulk-drawn CPU dropout: its masks have torch's dropout distribution, the attention path
computes what SDPA computes, and a model with it installed is unchanged outside training."""
import numpy as np
import pytest
import torch

from src.model import fast_dropout as fd


def test_threshold_rate_and_scale_are_exact():
    for p in (0.0, 0.1, 0.25, 0.5, 0.9):
        t, scale = fd.drop_threshold(p)
        assert abs(t / 2 ** 16 - p) <= 2 ** -17
        assert scale * (1 - t / 2 ** 16) == pytest.approx(1.0, abs=1e-15)
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError):
            fd.drop_threshold(bad)


def test_mask_rate_and_pairwise_independence():
    n, p = 1_000_000, 0.1
    torch.manual_seed(0)
    keep = fd.keep_mask((n,), p).numpy()
    sigma = np.sqrt(p * (1 - p) / n)
    assert abs(keep.mean() - (1 - p)) < 5 * sigma
    # neighbouring elements come from the four quarters of one 64-bit draw: they must still be
    # independent (P(both kept) = (1 - p)^2), as must elements far apart
    for lag in (1, 2, 3, 4, 1000):
        both = (keep[:-lag] & keep[lag:]).mean()
        assert abs(both - (1 - p) ** 2) < 5 * np.sqrt((1 - p) ** 2 * (1 - (1 - p) ** 2) / n)
    # odd sizes: the rest of the last draw is cut off, the shape is kept
    assert fd.keep_mask((3, 5, 7), 0.5).shape == (3, 5, 7)


def test_masks_follow_torch_seed():
    torch.manual_seed(123)
    a = fd.keep_mask((64, 64), 0.3)
    torch.manual_seed(123)
    b = fd.keep_mask((64, 64), 0.3)
    c = fd.keep_mask((64, 64), 0.3)          # the generator moved on: a new mask
    assert torch.equal(a, b) and not torch.equal(a, c)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert torch.equal(fd.keep_mask((100,), 0.5, g1), fd.keep_mask((100,), 0.5, g2))


def test_dropout_values_unbiased_and_gradient():
    p = 0.2
    _, scale = fd.drop_threshold(p)
    x = torch.rand(400_000) + 0.5                      # no zeros: a dropped element is exactly 0
    x.requires_grad_(True)
    torch.manual_seed(1)
    y = fd.fast_dropout(x, p, True)
    kept = y != 0
    assert torch.allclose(y[kept], x[kept] * scale)   # kept elements scaled, nothing else changed
    ratio = (y.detach() / x.detach()).double()
    assert abs(ratio.mean().item() - 1.0) < 5 * np.sqrt(p / (1 - p) / len(x))  # E[y] = x
    y.sum().backward()
    assert torch.equal(x.grad, kept.float() * scale)   # the backward uses the same mask
    z = torch.randn(10)
    assert fd.fast_dropout(z, p, training=False) is z and fd.fast_dropout(z, 0.0, True) is z


def _sdpa_bool_mask(lengths, L):
    key_ok = torch.arange(L)[None, :] < torch.tensor(lengths)[:, None]      # (B, L)
    return key_ok[:, None, None, :].expand(-1, 1, L, L)                      # (B, 1, L, L), True = attend


def test_attention_equals_explicit_computation_with_the_same_mask():
    torch.manual_seed(0)
    B, H, L, d, p = 3, 2, 7, 4, 0.25
    q, k, v = (torch.randn(B, H, L, d) for _ in range(3))
    mask = _sdpa_bool_mask([7, 4, 1], L)
    module = torch.nn.Module().train()
    torch.manual_seed(9)
    out, _ = fd.attention(module, q, k, v, mask, dropout=p, scaling=d ** -0.5)
    torch.manual_seed(9)
    keep = fd.keep_mask((B, H, L, L), p)
    _, scale = fd.drop_threshold(p)
    ref = torch.zeros(B, L, H, d, dtype=torch.float64)
    for b in range(B):            # brute force: one query at a time, padded keys excluded
        for h in range(H):
            for i in range(L):
                s = (q[b, h, i].double() @ k[b, h].double().T) * d ** -0.5
                s[~mask[b, 0, i]] = -float("inf")
                w = torch.softmax(s, 0) * keep[b, h, i].double() * scale
                ref[b, i, h] = w @ v[b, h].double()
    assert out.shape == (B, L, H, d)
    assert torch.allclose(out.double(), ref, atol=1e-5)
    # outside training it is transformers' SDPA (no dropout)
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    module.eval()
    a, _ = fd.attention(module, q, k, v, mask, dropout=0.0, scaling=d ** -0.5)
    b, _ = sdpa_attention_forward(module, q, k, v, mask, dropout=0.0, scaling=d ** -0.5)
    assert torch.equal(a, b)


def test_installed_model_is_unchanged_in_eval_and_follows_the_seed_in_training(tiny_bert_dir):
    from src.model.loading import load_classifier
    stock = load_classifier(tiny_bert_dir, 5, seed=3)
    fast = load_classifier(tiny_bert_dir, 5, seed=3)
    n_dropout = sum(type(m) is torch.nn.Dropout for m in fast.modules())
    got = fd.install(fast)
    assert got == {"modules": n_dropout, "attention": True}
    assert not any(type(m) is torch.nn.Dropout for m in fast.modules())
    assert fast.config._attn_implementation == fd.ATTN_NAME
    ids = torch.randint(1000, 2000, (4, 12), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[3, 2:] = 0
    stock.eval(), fast.eval()
    with torch.no_grad():
        assert torch.allclose(stock(input_ids=ids, attention_mask=mask).logits,
                              fast(input_ids=ids, attention_mask=mask).logits, atol=1e-6)
    fast.train()
    outs = []
    for seed in (5, 5, 6):
        torch.manual_seed(seed)
        outs.append(fast(input_ids=ids, attention_mask=mask).logits.detach())
    assert torch.equal(outs[0], outs[1]) and not torch.allclose(outs[0], outs[2])
