"""Every random number generator a training run draws from, saved and restored, so that a run
resumed from a checkpoint continues exactly as the uninterrupted one (plain tensors, numbers
and lists: torch.load(weights_only=True) reads them back)."""
from __future__ import annotations

import random
from typing import Optional

import numpy as np
import torch


def get_rng_states(gen: torch.Generator, device, drop_gens: Optional[list] = None) -> dict:
    """The batch-shuffling generator, torch's global RNG (dropout), numpy's and Python's, and the
    models' own dropout generators where they have them."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    states = {"generator": gen.get_state(), "torch": torch.get_rng_state(),
              "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                        "has_gauss": int(has_gauss), "gauss": float(gauss)},
              "python": random.getstate()}
    if torch.device(device).type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state_all()
    if drop_gens:
        states["dropout"] = [g.get_state() for g in drop_gens]
    return states


def set_rng_states(states: dict, gen: torch.Generator, device, drop_gens: Optional[list] = None) -> None:
    gen.set_state(states["generator"])
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    random.setstate(states["python"])
    if torch.device(device).type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state_all(states["cuda"])
    if drop_gens:  # the models' own generators exist only when the checkpoint has them
        for g, st in zip(drop_gens, states["dropout"]):
            g.set_state(st)
