"""src/runtime/allocator.py: when a process re-executes itself with jemalloc, and that it computes the same."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from src.runtime import allocator
from src.runtime.allocator import CONF, ENV, MARK, preload_env

ROOT = Path(__file__).resolve().parents[1]


def test_preload_env_cases():
    lib = "/usr/lib/libjemalloc.so.2"
    env = preload_env({"PATH": "/bin"}, lib)
    assert env == {"PATH": "/bin", "LD_PRELOAD": lib, "MALLOC_CONF": CONF, MARK: "1"}
    # another preloaded library stays, after ours; a user's MALLOC_CONF wins
    env = preload_env({"LD_PRELOAD": "/x/libfoo.so", "MALLOC_CONF": "narenas:1"}, lib)
    assert env["LD_PRELOAD"] == f"{lib}:/x/libfoo.so" and env["MALLOC_CONF"] == "narenas:1"
    assert preload_env({}, None) is None                                   # no library here
    assert preload_env({ENV: "system"}, lib) is None                       # turned off
    assert preload_env({ENV: "SYSTEM"}, lib) is None
    assert preload_env({MARK: "1"}, lib) is None                           # never twice
    assert preload_env({"LD_PRELOAD": "/opt/libjemalloc.so"}, lib) is None  # already there


PROBE = r"""
import hashlib, json, os, sys
sys.path.insert(0, sys.argv[1])
from src.runtime.allocator import active, reexec_with_jemalloc
reexec_with_jemalloc()
import torch
from src.model.loading import load_classifier
torch.set_num_threads(1)
m = load_classifier(sys.argv[2], 4, seed=0).eval()
ids = torch.randint(1000, 20000, (8, 40), generator=torch.Generator().manual_seed(0))
with torch.inference_mode():
    out = m(input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True)
h = hashlib.sha256(out.hidden_states[-1].numpy().tobytes() + out.logits.numpy().tobytes()).hexdigest()
print(json.dumps({"malloc": active(), "pid": os.getpid(), "argv": sys.orig_argv[-2:], "hash": h}))
"""


@pytest.mark.skipif(allocator.find_jemalloc() is None, reason="no libjemalloc on this machine")
def test_reexec_uses_jemalloc_and_computes_the_same(tiny_bert_dir):
    def probe(**extra):
        env = {k: v for k, v in os.environ.items() if k not in (ENV, MARK, "LD_PRELOAD")}
        env.update(extra)
        r = subprocess.run([sys.executable, "-c", PROBE, str(ROOT), tiny_bert_dir], env=env,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        return json.loads(r.stdout.strip().splitlines()[-1])
    je, sysm = probe(), probe(**{ENV: "system"})
    assert je["malloc"] == "jemalloc" and sysm["malloc"] == "system"
    assert je["argv"] == [str(ROOT), tiny_bert_dir]   # the same command, re-executed
    assert je["hash"] == sysm["hash"]                 # bit-for-bit the same hidden states and logits


RELEASE_PROBE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from src.runtime.allocator import active, reexec_with_jemalloc, release_free_memory, rss_bytes
reexec_with_jemalloc()
import numpy as np
base = rss_bytes()
a = np.ones(2**26)                       # 512 MiB, every page touched
peak = rss_bytes()
del a
kept = rss_bytes()
freed = release_free_memory()
print(json.dumps({"malloc": active(), "base": base, "peak": peak, "kept": kept, "freed": freed, "after": rss_bytes()}))
"""


@pytest.mark.skipif(allocator.find_jemalloc() is None, reason="no libjemalloc on this machine")
def test_release_hands_back_what_jemalloc_keeps_and_nothing_under_the_system_malloc():
    def probe(**extra):
        env = {k: v for k, v in os.environ.items() if k not in (ENV, MARK, "LD_PRELOAD", "MALLOC_CONF")}
        env.update(extra)
        r = subprocess.run([sys.executable, "-c", RELEASE_PROBE, str(ROOT)], env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        return json.loads(r.stdout.strip().splitlines()[-1])
    mib = 2 ** 20
    je = probe()
    assert je["malloc"] == "jemalloc" and je["peak"] - je["base"] > 400 * mib
    assert je["kept"] - je["base"] > 400 * mib      # decay -1: the freed array stays resident ...
    assert je["freed"] > 400 * mib and je["after"] - je["base"] < 100 * mib   # ... until released
    sysm = probe(**{ENV: "system"})
    assert sysm["malloc"] == "system" and sysm["freed"] is None
    assert sysm["kept"] - sysm["base"] < 100 * mib  # glibc unmaps a block this large on free
