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
from typing import List

import numpy as np
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


def wrap_ddp(models: list, device: torch.device) -> list:
    """Each model in DistributedDataParallel (gradients averaged over the ranks in the backward)."""
    from torch.nn.parallel import DistributedDataParallel as DDP
    ids = [device.index] if device.type == "cuda" else None
    return [DDP(m, device_ids=ids, broadcast_buffers=False) for m in models]


def gather_rows(x: torch.Tensor) -> List[np.ndarray]:
    """all_gather of every rank's (n_r, K) rows (n_r differ by at most one): each padded to the
    largest n_r, gathered, returned per rank (padding rows included, callers cut them)."""
    import torch.distributed as dist
    n = torch.tensor([x.shape[0]], device=x.device)
    width = n.clone()
    dist.all_reduce(width, op=dist.ReduceOp.MAX)
    padded = torch.zeros((int(width), x.shape[1]), dtype=x.dtype, device=x.device)
    padded[:x.shape[0]] = x
    out = [torch.empty_like(padded) for _ in range(dist.get_world_size())]
    dist.all_gather(out, padded.contiguous())
    return [o.cpu().numpy() for o in out]
