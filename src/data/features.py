"""Frozen pretrained encoder features f(x) for instance-dependent noise."""
from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from src.data.tokenize import Tokens


@torch.inference_mode()
def mean_pooled_features(model_dir: str, tokens: Tokens, pad_id: int, device, batch_size: int) -> np.ndarray:
    """(N, D) mask-weighted mean of the last hidden layer of the frozen pretrained encoder."""
    from transformers import AutoModel
    model = AutoModel.from_pretrained(model_dir, trust_remote_code=False).to(device).eval()
    order = np.argsort(tokens.lengths(), kind="stable")  # length-sorted: little padding
    out = np.zeros((len(tokens), model.config.hidden_size), dtype=np.float32)
    for s in tqdm(range(0, len(order), batch_size), desc="IDN features", leave=False):
        idx = order[s:s + batch_size]
        ids, mask = tokens.batch(idx, pad_id)
        h = model(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state.float()
        m = mask.to(device).unsqueeze(-1).float()
        out[idx] = ((h * m).sum(1) / m.sum(1)).cpu().numpy()
    return out
