"""torch's thread count, and the M models of stage 1 trained in threads at the same time."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Optional

import torch


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


class ModelThreads:
    """Runs one call per model at the same time, each in its own thread with threads // M of
    torch's intra-op threads (a thread's count is its own: the caller's is left as it was).

    Why: on a few CPU cores two models each on one core run a step 10-20% faster than both
    models one after the other on all cores (small matrix products and the element-wise ops
    between them use one core better than two). Each model must draw its dropout masks from
    its own generator (`fast_dropout.set_generator`), or the masks depend on thread timing.
    """

    def __init__(self, n_models: int, threads: int):
        self.n = n_models
        self.per_model = max(1, threads // n_models)
        self.pool = ThreadPoolExecutor(n_models, thread_name_prefix="dygen-model")

    def map(self, fn: Callable[[int], object]) -> list:
        def run(i):
            torch.set_num_threads(self.per_model)
            return fn(i)
        return list(self.pool.map(run, range(self.n)))

    def close(self) -> None:
        self.pool.shutdown()


def use_model_threads(parallel_models: str, device, world: int, n_models: int, cpu_dropout: str,
                      threads: Optional[int] = None) -> bool:
    """Whether stage 1 trains the models in threads (`ModelThreads`): asked for (auto), on CPU,
    one process (DDP's collectives would interleave), M > 1, bulk masks (torch's dropout only
    draws from the global generator) and at least one of torch's `threads` (default: its
    current count) per model."""
    threads = torch.get_num_threads() if threads is None else threads
    return (parallel_models == "auto" and torch.device(device).type == "cpu" and world == 1
            and n_models > 1 and cpu_dropout == "bulk" and threads >= n_models)


def dropout_seed(seed: int, model: int) -> int:
    """Seed of model `model`'s dropout generator when the models train in threads."""
    return (seed * 1_000_003 + 7_919 * (model + 1)) % 2 ** 63
