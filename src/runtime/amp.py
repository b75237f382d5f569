"""Mixed precision: bf16 (else fp16 with loss scaling) autocast on CUDA; on CPU plain fp32,
or bf16 autocast when a run asks for it (--cpu_bf16: fast only on CPUs with bf16 instructions)."""
from __future__ import annotations

import torch

_cpu_bf16 = False   # set once per run by set_cpu_bf16 (the pipeline's setup), read by every autocast


def set_cpu_bf16(enabled: bool) -> None:
    """bf16 autocast on CPU from now on in this process (False: fp32, the default)."""
    global _cpu_bf16
    _cpu_bf16 = bool(enabled)


BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_bf16(cpuinfo: str) -> bool:
    """Whether /proc/cpuinfo's text lists a bf16 instruction set (avx512_bf16 or amx_bf16)."""
    flags = set()
    for line in cpuinfo.splitlines():
        if line.split(":")[0].strip() == "flags":
            flags.update(line.split(":", 1)[1].split())
    return any(f in flags for f in BF16_CPU_FLAGS)


def cpu_bf16_warning(cpuinfo_path: str = "/proc/cpuinfo") -> str:
    """A warning for --cpu_bf16 on a CPU that lists no bf16 instructions ("" when it does, or when
    the CPU cannot be read, e.g. not Linux)."""
    try:
        text = open(cpuinfo_path).read()
    except OSError:
        return ""
    if cpu_has_bf16(text):
        return ""
    return ("--cpu_bf16: this CPU lists no bf16 instructions (" + "/".join(BF16_CPU_FLAGS) + "); bf16 autocast "
            "was ~15x slower than fp32 on such a CPU. Without the flag stage 1 runs in fp32 (a different "
            "stage-1 cache, results close but not identical).")


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
