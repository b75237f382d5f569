"""Dropout on CPU with masks drawn in bulk by numpy, instead of torch's per-element generator.

Why: torch draws CPU dropout masks one element at a time from its Mersenne twister.
Fine-tuning MiniLM at batch 32 x 64 tokens draws ~20M mask elements per model and step
(attention probabilities and hidden states), about a third of a training step on the 2-core
test machine (`python scripts/bench.py --step_only` times the step with torch's masks, these
and none). Here each call takes one 64-bit seed from torch's global generator (or the model's
own, `set_generator`) and draws the whole mask from numpy's SFC64 `random_raw`, so
`torch.manual_seed`, the checkpointed RNG states (exact resume) and the per-rank reseeding
under torchrun still fix every mask.

The same distribution as torch's dropout, with p rounded to a multiple of 2^-16: an element
is dropped when its 16-bit draw (four per 64-bit draw) is below round(p * 2^16), i.e. with
probability p' = that / 2^16 (p = 0.1 gives 0.100006), and kept elements are scaled by
1 / (1 - p'), so E[output] = input exactly. Only training on CPU is affected: in eval mode,
with p = 0 or on another device, everything is the stock torch/transformers code.
"""
from __future__ import annotations

import logging
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn as nn

log = logging.getLogger("dygen")

ATTN_NAME = "dygen_cpu_dropout"  # the attention implementation registered with transformers


def drop_threshold(p: float) -> Tuple[int, float]:
    """(t, scale): drop an element whose uint16 draw is < t; keep it scaled by `scale`.
    t / 2^16 is the realised dropout rate, scale = 1 / (1 - t / 2^16) keeps E[output] = input."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    t = min(int(round(p * 2 ** 16)), 2 ** 16 - 1)
    return t, 2 ** 16 / (2 ** 16 - t)


def _draw_bits(n: int, generator: Optional[torch.Generator]) -> np.ndarray:
    """n uint16 draws (four per 64-bit SFC64 draw), the stream seeded by one draw from torch's
    (global or given) generator."""
    seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator))
    return np.random.SFC64(seed).random_raw((n + 3) // 4).view(np.uint16)[:n]


def keep_mask(shape, p: float, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Boolean mask of `shape`, each element True (kept) with probability 1 - p (p rounded to 2^-16),
    independently."""
    t, _ = drop_threshold(p)
    bits = _draw_bits(int(np.prod(shape, dtype=np.int64)), generator)
    return torch.from_numpy(np.greater_equal(bits, np.uint16(t))).view(tuple(shape))


def dropout_mask(shape, p: float, generator: Optional[torch.Generator] = None,
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """keep_mask (the same draws for the same generator state) as numbers: 0 where dropped, the
    scale 1 / (1 - p') where kept. One multiply by it is the whole dropout, forward and backward
    (a boolean mask costs a type conversion and a second multiply by the scale each way, ~3x
    slower on CPU)."""
    _, scale = drop_threshold(p)
    keep = keep_mask(shape, p, generator).numpy()
    mask = torch.from_numpy(np.multiply(keep, np.float32(scale), dtype=np.float32))
    return mask if dtype == torch.float32 else mask.to(dtype)


def fast_dropout(x: torch.Tensor, p: float, training: bool = True,
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Drop-in for torch.nn.functional.dropout: bulk-drawn masks for CPU training, torch's own
    dropout otherwise (eval, p = 0, other devices). generator: the torch generator that seeds
    the masks (None: torch's global one)."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu":
        return torch.nn.functional.dropout(x, p, True)
    return x * dropout_mask(x.shape, p, generator, x.dtype)


class FastDropout(nn.Module):
    """nn.Dropout with the masks of `fast_dropout` above (same p, same train/eval behaviour)."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        drop_threshold(p)
        self.p = p
        self.generator: Optional[torch.Generator] = None  # see `set_generator`

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_dropout(x, self.p, self.training, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, **kwargs):
    """transformers attention function: transformers' SDPA unless training on CPU with dropout,
    then softmax(q k^T * scaling + mask) with the bulk-drawn dropout, times v (what SDPA computes,
    with the mask drawn here). Same signature and outputs as transformers' sdpa_attention_forward."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    plain = (not module.training or dropout == 0.0 or query.device.type != "cpu"
             or kwargs.get("is_causal") or getattr(module, "is_causal", False)
             or query.shape[1] != key.shape[1] or kwargs.get("position_bias") is not None
             or kwargs.get("softcap") is not None)
    if plain:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    scores = torch.matmul(query, key.transpose(-1, -2))
    if attention_mask is None:
        scores = scores * scaling
    else:
        if attention_mask.dtype == torch.bool:  # SDPA's convention: True = may attend
            bias = torch.zeros(attention_mask.shape, dtype=scores.dtype)
            bias.masked_fill_(~attention_mask, torch.finfo(scores.dtype).min)
        else:
            bias = attention_mask.to(scores.dtype)
        # bias + scaling * scores in one pass; the (B, 1, L, L) bias broadcasts over the heads
        # (a masked_fill on the (B, H, L, L) scores cost as much as the softmax, and so did its backward)
        scores = torch.add(bias, scores, alpha=scaling)
    weights = fast_dropout(torch.softmax(scores, dim=-1), dropout, True, getattr(module, "dropout_generator", None))
    out = torch.matmul(weights, value).transpose(1, 2).contiguous()
    return out, None


def _register_attention() -> bool:
    try:
        from transformers import AttentionInterface
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask
    except ImportError:
        return False
    AttentionInterface.register(ATTN_NAME, attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(ATTN_NAME, sdpa_mask)  # same masks as SDPA
    return True


def install(model: nn.Module) -> dict:
    """Puts the bulk-drawn dropout into a transformers model for CPU training: every nn.Dropout
    module becomes a FastDropout of the same p, and the attention-probability dropout goes
    through `attention` when the model dispatches attention by name and uses SDPA. Returns
    what was replaced: {"modules": n, "attention": bool}."""
    n = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                setattr(parent, name, FastDropout(child.p))
                n += 1
    attn = False
    cfg = getattr(model, "config", None)
    if cfg is not None and getattr(cfg, "_attn_implementation", None) == "sdpa" and _register_attention():
        try:
            model.set_attn_implementation(ATTN_NAME)
            attn = cfg._attn_implementation == ATTN_NAME
        except Exception as e:  # noqa: BLE001 - a model that will not switch keeps SDPA (torch's masks)
            log.info("bulk dropout: attention stays on SDPA's dropout (%s)", e)
    return {"modules": n, "attention": attn}


def set_generator(model: nn.Module, generator: Optional[torch.Generator]) -> None:
    """Draw the masks of an installed model from `generator` (None: torch's global generator
    again). A model with its own generator can train in its own thread next to other models
    without the order of their draws depending on thread timing."""
    for mod in model.modules():
        if isinstance(mod, FastDropout):
            mod.generator = generator
        else:  # `attention` receives the attention module and reads it from there
            mod.dropout_generator = generator
