"""Stage 1 past one process: torchrun (PyTorch DDP) support.

    torchrun --nproc_per_node 2 main.py ...          # 2 processes (GPUs, or CPU with gloo)

`init_from_env` starts the default process group when torchrun's variables say there is
more than one process (WORLD_SIZE > 1): NCCL on CUDA (one GPU per process, LOCAL_RANK),
gloo on CPU. Every rank loads the data and fine-tunes on its shard of each global batch;
the embedding passes are sharded by sample and gathered in sample order; only rank 0
writes (trajectories, checkpoints, caches, outputs) and runs the steps after stage 1.
"""
from __future__ import annotations

import datetime
import os

import torch


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_from_env(device: torch.device) -> torch.device:
    """Start the process group when launched by torchrun with WORLD_SIZE > 1; returns the
    device this rank uses (cuda:LOCAL_RANK on GPUs)."""
    import torch.distributed as dist
    if env_world_size() <= 1 or (dist.is_available() and dist.is_initialized()):
        return device
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                            timeout=datetime.timedelta(minutes=60))
    return device


def rank() -> int:
    import torch.distributed as dist
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    import torch.distributed as dist
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def barrier() -> None:
    import torch.distributed as dist
    if world_size() > 1:
        dist.barrier()


def broadcast_int(value: int) -> int:
    """rank 0's value on every rank."""
    import torch.distributed as dist
    if world_size() == 1:
        return value
    t = torch.tensor([value], dtype=torch.long)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.broadcast(t, 0)
    return int(t.item())


def finish() -> None:
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
