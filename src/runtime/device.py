"""The device a run computes on, and batches copied onto it."""
from __future__ import annotations

import torch

from src.errors import UserError


def pick_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but no CUDA device is available")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(choice)


def to_device(device: torch.device, *tensors: torch.Tensor) -> list:
    """The tensors on `device`; on CUDA through page-locked memory (asynchronous copies)."""
    if device.type == "cuda":
        tensors = tuple(t.pin_memory() for t in tensors)
    return [t.to(device, non_blocking=True) for t in tensors]
