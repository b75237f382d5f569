"""The methods compared in the paper, as specifications run on one stage 1.

Two kinds:
- stage-1 methods, whose figure is a stage-1 ensemble's test accuracy (selected on the
  NOISY validation labels): `cr` (the M co-regularised models of the run's own stage 1) and
  `base` (a separate stage 1 with one model and no co-regularisation: --n_model 1
  --alpha_t_hi 0, so it has its own stage-1 cache key);
- stage-2 variants (`Variant`), all run on the run's cached co-regularised stage 1: DyGen,
  NPC and the ablations. A variant says which epochs feed the VAE, how samples are scored
  for flagging, which prior is used and whether stage 2 is co-regularised.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Tuple

from src.errors import UserError

FEATURES = ("trajectory", "selected")     # all E epochs (E*D) / the selected stage-1 epoch (D)
FLAGGING = ("dynamics", "selected", "none")
PRIORS = ("knn", "uniform")
PRIOR_EPOCHS = ("config", "selected")     # --prior_epoch / the selected stage-1 epoch


@dataclass(frozen=True)
class Variant:
    name: str
    features: str = "trajectory"   # what the VAE sees: w = whole trajectory, or one epoch's embedding
    flagging: str = "dynamics"     # dynamics: mean+std over epochs of the own-label distance;
                                   # selected: that distance at the selected epoch only; none: no flags
    prior: str = "knn"             # knn: KNN on unflagged samples -> Dirichlet; uniform: alpha_p = 1 + 1/C
    prior_epoch: str = "config"    # whose embeddings the KNN is fit on
    coreg: bool = True             # stage-2 co-regularisation (lambda_t) on, or lambda = 0
    description: str = ""

    def __post_init__(self):
        for value, allowed in ((self.features, FEATURES), (self.flagging, FLAGGING), (self.prior, PRIORS),
                               (self.prior_epoch, PRIOR_EPOCHS)):
            if value not in allowed:
                raise ValueError(f"variant {self.name}: {value!r} is not one of {allowed}")

    def lambda_t(self, configured: float) -> float:
        return configured if self.coreg else 0.0


VARIANTS: Dict[str, Variant] = {v.name: v for v in (
    Variant("dygen", description="DyGen: trajectory features, dynamics flags, KNN prior, co-regularised"),
    Variant("npc", features="selected", flagging="none", prior_epoch="selected", coreg=False,
            description="NPC: the same generative correction on the selected epoch's embedding only; "
                        "KNN prior fit on every sample (no flags); no co-regularisation"),
    Variant("dygen-no-dynamics", features="selected", flagging="selected", prior_epoch="selected",
            description="DyGen w/o dynamics: one epoch (the selected one) for features, flags and prior"),
    Variant("dygen-no-coreg", coreg=False, description="DyGen w/o stage-2 co-regularisation (lambda 0)"),
    Variant("dygen-no-prior", flagging="none", prior="uniform",
            description="DyGen w/o the KNN prior: uniform Dirichlet prior 1 + 1/C"),
)}
STAGE1_METHODS = ("base", "cr")
METHODS: Tuple[str, ...] = ("base", "cr", "npc", "dygen", "dygen-no-dynamics", "dygen-no-coreg",
                            "dygen-no-prior")
BASE_OVERRIDES = dict(n_model=1, alpha_t_hi=0.0)   # the `base` method's own stage 1


def parse_methods(text: str) -> List[str]:
    """'dygen,npc' -> ['dygen', 'npc'] in METHODS order, duplicates dropped; unknown names refused."""
    names = [s.strip().lower() for s in str(text).split(",") if s.strip()]
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise UserError(f"--variants: unknown {', '.join(unknown)}; known: {', '.join(METHODS)}")
    if not names:
        raise UserError(f"--variants is empty; known: {', '.join(METHODS)}")
    return [m for m in METHODS if m in names]
