"""Mixed precision: bf16 (else fp16 with loss scaling) autocast on CUDA; on CPU plain fp32,
or bf16 autocast when a run asks for it (--cpu_bf16: fast only on CPUs with bf16 instructions)."""
from __future__ import annotations

import torch

_cpu_bf16 = False   # set once per run by set_cpu_bf16 (the pipeline's setup), read by every autocast


def set_cpu_bf16(enabled: bool) -> None:
    """bf16 autocast on CPU from now on in this process (False: fp32, the default)."""
    global _cpu_bf16
    _cpu_bf16 = bool(enabled)


def amp_dtype(device: torch.device):
    """The autocast dtype: bf16 on CUDA GPUs that have it, fp16 (with a gradient scaler) on
    older ones; on CPU None (plain fp32) unless set_cpu_bf16(True): bf16 was ~15x slower on a
    2-core machine without bf16 instructions and ~2x faster on one with avx512_bf16."""
    if torch.device(device).type != "cuda":
        return torch.bfloat16 if _cpu_bf16 else None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device):
    """The autocast of amp_dtype on the device's type. Per thread: enter it in each."""
    dtype = amp_dtype(device)
    kind = torch.device(device).type
    if dtype is not None:
        return torch.autocast(kind, dtype=dtype)
    return torch.autocast("cpu", enabled=False)


def grad_scaler(device: torch.device) -> torch.amp.GradScaler:
    """fp16 autocast needs loss scaling; a disabled scaler (a no-op) otherwise."""
    enabled = torch.device(device).type == "cuda" and amp_dtype(device) == torch.float16
    return torch.amp.GradScaler("cuda", enabled=enabled)
