"""Mixed precision: bf16 (else fp16 with loss scaling) autocast on CUDA, plain fp32 on CPU."""
from __future__ import annotations

import torch


def amp_dtype(device: torch.device):
    """The autocast dtype: bf16 on CUDA GPUs that have it, fp16 (with a gradient scaler) on
    older ones; None (plain fp32) on CPU, where bf16 was ~15x slower on the 2-core test machine."""
    if torch.device(device).type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device):
    """bf16 (else fp16) autocast on CUDA; plain fp32 on CPU. Per thread: enter it in each."""
    dtype = amp_dtype(device)
    if dtype is not None:
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast("cpu", enabled=False)


def grad_scaler(device: torch.device) -> torch.amp.GradScaler:
    """fp16 autocast needs loss scaling; a disabled scaler (a no-op) otherwise."""
    return torch.amp.GradScaler("cuda", enabled=amp_dtype(device) == torch.float16)
