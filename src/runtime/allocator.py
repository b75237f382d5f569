"""jemalloc for the process's memory, when the machine has it (an embedding batch ~15% faster here).

Why: every forward pass allocates activations of tens of MB (a 128 x 64-token batch's FFN
output is 50 MB). glibc's malloc serves blocks above 32 MB with fresh mmaps and returns them
on free, so each one is page-faulted in again (~170k faults per such batch); jemalloc keeps
and reuses them (`python scripts/bench_malloc.py` compares the two). The library must be
loaded before the interpreter starts, so an entry point calls `reexec_with_jemalloc()` first
thing: it re-executes the same command once with LD_PRELOAD set. Nothing else changes (the
numbers a run computes are the same either way).

    DYGEN_ALLOCATOR=system python main.py ...   # keep the system's malloc
    apt-get install libjemalloc2                # what scripts/setup.sh tries (Debian/Ubuntu)
"""
from __future__ import annotations

import ctypes
import ctypes.util
import glob
import logging
import os
import sys
from typing import Mapping, Optional

log = logging.getLogger("dygen")

ENV = "DYGEN_ALLOCATOR"          # "system": never preload
MARK = "DYGEN_ALLOCATOR_REEXEC"  # set in the re-executed process: never a second time
# Freed pages are never handed back to the system (decay -1): jemalloc then keeps them for the
# next batch, like a cache. jemalloc's own default (10 s decay) and larger finite values (which
# it rejects as out of range) page-faulted ~350k times per embedding batch of 128 x 64 tokens,
# more than glibc's malloc; with -1 there were none.
CONF = "background_thread:true,metadata_thp:auto,dirty_decay_ms:-1,muzzy_decay_ms:-1"


def find_jemalloc() -> Optional[str]:
    """Path (or soname) of libjemalloc, None when the machine has none."""
    for pattern in ("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
                    "/usr/lib64/libjemalloc.so.2", "/usr/lib/libjemalloc.so.2", "/usr/local/lib/libjemalloc.so*"):
        hits = sorted(glob.glob(pattern))
        if hits:
            return hits[0]
    return ctypes.util.find_library("jemalloc")


def preload_env(environ: Mapping[str, str], lib: Optional[str]) -> Optional[dict]:
    """The environment to re-execute with, or None to go on as is: no library, turned off,
    already re-executed once, or jemalloc already preloaded."""
    if not lib or environ.get(ENV, "").lower() == "system" or environ.get(MARK):
        return None
    preload = environ.get("LD_PRELOAD", "")
    if "jemalloc" in preload:
        return None
    env = dict(environ)
    env["LD_PRELOAD"] = f"{lib}:{preload}" if preload else lib
    env.setdefault("MALLOC_CONF", CONF)
    env[MARK] = "1"
    return env


def reexec_with_jemalloc() -> None:
    """Re-executes this very command with jemalloc preloaded (same PID, arguments, environment
    otherwise); returns without doing anything when `preload_env` says so."""
    env = preload_env(os.environ, find_jemalloc())
    if env is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, list(sys.orig_argv), env)
    except OSError:  # cannot re-execute (odd launcher): run with the system's malloc
        return


def active() -> str:
    """'jemalloc' when it is loaded in this process, else 'system'."""
    try:
        with open("/proc/self/maps") as f:
            return "jemalloc" if "jemalloc" in f.read() else "system"
    except OSError:
        return "system"


def rss_bytes() -> int:
    """This process's resident memory (0 where /proc is missing)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS:"))
    except (OSError, StopIteration, ValueError):
        return 0


def release_free_memory() -> Optional[int]:
    """Hands the freed pages jemalloc keeps (decay -1, see CONF) back to the system and logs
    how much went; returns those bytes of resident memory, None under the system's malloc.

    Why: a process that runs one configuration after another (the grid, the stage-1 sweep)
    otherwise keeps the pages of every run's peak; one 20news grid setting left 10 GiB of a
    24 GiB machine resident. Only free pages go: nothing a live object holds is touched."""
    if active() != "jemalloc":
        return None
    try:
        mallctl = ctypes.CDLL(None).mallctl
    except (OSError, AttributeError):
        return None
    before = rss_bytes()
    # "arena.<MALLCTL_ARENAS_ALL = 4096>.purge": every arena's dirty and muzzy pages
    if mallctl(b"arena.4096.purge", None, None, None, ctypes.c_size_t(0)) != 0:
        return None
    freed = max(0, before - rss_bytes())
    log.info("handed %.1f GiB of freed memory back to the system", freed / 2 ** 30)
    return freed
