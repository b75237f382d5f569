"""DyGen and the methods built from its stage-2 parts, as specifications run on one stage 1.

Every variant follows one rule (SPEC section 1, and the fairness rule of the comparison):
it is FITTED on the training split only (class centroids, the KNN prior, the VAE), infers
on validation and test, and never sees a label it must not (the oracle is not passed in).

A variant changes exactly one thing against `dygen`:
- `dygen-no-dynamics`: the VAE input is the selected epoch's embedding, not the trajectory;
- `dygen-no-prior`: the Dirichlet prior is the noisy label's one-hot, not the KNN's;
- `dygen-no-coreg`: stage-2 co-regularisation off (lambda 0); stage 1 is shared, so it is
  still co-regularised;
`npc` is NPC (`src.baselines.npc`): the selected epoch's embedding, the classifier's
PREDICTED label as the VAE's target, and its prior from confident per-class exemplars.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from src.dynamics.euclidean_dist import dynamics_score, own_label_distances, threshold_flags
from src.dynamics.flag_count import flag_rate
from src.model import evaluate as ev
from src.model.generate_prior import dirichlet_prior, knn_proba
from src.model.train_stage2 import train_stage2

log = logging.getLogger("dygen")

FEATURES = ("trajectory", "selected")      # all E epochs (E*D) / the selected stage-1 epoch (D)
PRIORS = ("knn", "noisy_onehot", "npc")
TARGETS = ("noisy", "predicted")           # what the VAE reconstructs


@dataclass(frozen=True)
class Variant:
    name: str
    features: str = "trajectory"
    prior: str = "knn"
    target: str = "noisy"
    coreg: bool = True

    def __post_init__(self):
        for value, allowed in ((self.features, FEATURES), (self.prior, PRIORS), (self.target, TARGETS)):
            if value not in allowed:
                raise ValueError(f"variant {self.name}: {value!r} is not one of {allowed}")

    @property
    def flags(self) -> bool:
        """Whether the dynamics flags enter (the KNN prior is fit on the unflagged samples)."""
        return self.prior == "knn"


VARIANTS: Dict[str, Variant] = {v.name: v for v in (
    Variant("dygen"),
    Variant("npc", features="selected", prior="npc", target="predicted", coreg=False),
    Variant("dygen-no-dynamics", features="selected"),
    Variant("dygen-no-prior", prior="noisy_onehot"),
    Variant("dygen-no-coreg", coreg=False),
)}


@dataclass
class Stage2Inputs:
    """What a stage-2 variant reads: the noisy labels, the stage-1 results, the settings.
    Rows: [train | validation | test]; only `fit` rows (the training split) are fitted on."""
    cfg: object                    # Config
    z: np.ndarray                  # (M, E, N_all, D) trajectories
    probs: np.ndarray              # (M, E, N_all, C) stage-1 softmax
    best: int                      # selected stage-1 epoch (0-based)
    noisy: np.ndarray              # (N_trval,)
    fit: np.ndarray                # indices of the rows every fit may use (the training split)
    test: np.ndarray               # indices of the test rows
    num_classes: int

    @property
    def n_trval(self) -> int:
        return len(self.noisy)


@dataclass
class DynamicsResult:
    scores: np.ndarray             # (M, N_trval) mean + std over epochs of the own-label distance
    flags: np.ndarray              # (M, N_trval) bool
    own_dist: np.ndarray           # (M, E, N_trval)
    mean_flags: np.ndarray         # (N_trval,) bool: the same rule on the mean score over models
    n_flag: int                    # flagged training samples (per model)
    how: str


@dataclass
class VariantOutput:
    test_probs: np.ndarray                 # (N_test, C)
    corrected: np.ndarray                  # (N_trval, C) q(y | observed label, w), mean over models
    test_probs_per_epoch: List[np.ndarray]  # T x (N_test, C): stage 2 after each epoch (inspection)
    alpha_prior: np.ndarray                # (M, N_fit, C)
    model_labels: np.ndarray               # (M, N_trval) each model's corrected label
    in_dim: int
    lambda_t: float
    vaes: list = field(default_factory=list)


def trajectory_features(z_m: np.ndarray) -> np.ndarray:
    """(E, N, D) -> (N, E*D): each sample's whole trajectory as one vector."""
    E, N, D = z_m.shape
    return np.ascontiguousarray(np.asarray(z_m, dtype=np.float32).transpose(1, 0, 2).reshape(N, E * D))


def known_rate(cfg) -> Tuple[float, str]:
    """The flag rate when nothing is estimated: --flag_ratio, or the known synthetic rate."""
    return flag_rate(noise_type=cfg.noise_type, noise_ratio=cfg.noise_ratio, flag_ratio=cfg.flag_ratio)


def dynamics_scores(inp: Stage2Inputs) -> Tuple[np.ndarray, np.ndarray]:
    """Per model: own-label distances per epoch (M, E, N_trval), to the centroids of the
    TRAINING rows' noisy labels, and the dynamics score (M, N_trval)."""
    M, trval = inp.z.shape[0], slice(0, inp.n_trval)
    own = np.stack([own_label_distances(inp.z[m][:, trval], inp.noisy, inp.num_classes, fit=inp.fit)
                    for m in range(M)])
    return own, np.stack([dynamics_score(o) for o in own])


def flag_by_rate(inp: Stage2Inputs, own: np.ndarray, scores: np.ndarray, rate: float, how: str) -> DynamicsResult:
    """Flags: per model, the top floor(rate x N_fit) training rows by score, and the same score
    threshold applied to the validation rows."""
    n_flag = int(np.floor(rate * len(inp.fit)))
    flags = np.stack([threshold_flags(s, inp.fit, n_flag) for s in scores])
    return DynamicsResult(scores, flags, own, threshold_flags(scores.mean(0), inp.fit, n_flag), n_flag, how)


def dynamics(inp: Stage2Inputs, rate: Optional[Tuple[float, str]] = None) -> DynamicsResult:
    """Scores and flags; rate: (flag rate, how it was chosen), default `known_rate`."""
    own, scores = dynamics_scores(inp)
    return flag_by_rate(inp, own, scores, *(rate or known_rate(inp.cfg)))


def features(inp: Stage2Inputs, v: Variant, m: int) -> np.ndarray:
    """(N_all, E*D) trajectory or (N_all, D) selected epoch's embedding of model m."""
    if v.features == "trajectory":
        return trajectory_features(inp.z[m])
    return np.asarray(inp.z[m, inp.best], dtype=np.float32)


def predicted_labels(inp: Stage2Inputs, m: int) -> np.ndarray:
    """(N_trval,) model m's predicted label at the selected epoch (NPC's target y^)."""
    return inp.probs[m, inp.best, :inp.n_trval].argmax(1)


def prior(inp: Stage2Inputs, v: Variant, m: int, flags: Optional[np.ndarray]) -> np.ndarray:
    """(N_fit, C) Dirichlet prior alphas of the fitted rows for model m."""
    cfg, C, fit = inp.cfg, inp.num_classes, inp.fit
    if v.prior == "noisy_onehot":
        proba = np.eye(C)[inp.noisy[fit]]
    elif v.prior == "knn":
        e0 = cfg.prior_epoch - 1
        emb = np.asarray(inp.z[m, e0, fit], np.float32)
        proba = knn_proba(emb, inp.noisy[fit], ~flags[m][fit], C, cfg.k)
    else:
        from src.baselines.npc import npc_prior
        emb = np.asarray(inp.z[m, inp.best, fit], np.float32)
        proba = npc_prior(emb, inp.probs[m, inp.best, fit], np.ones(len(fit), bool), num_classes=C, k=cfg.k,
                          seed=cfg.seed)
    return dirichlet_prior(proba, cfg.knn_mode, cfg.prior_norm, cfg.selected_class)


def run_variant(inp: Stage2Inputs, v: Variant, dyn: Optional[DynamicsResult]) -> VariantOutput:
    """prior -> stage 2 (fit on the training rows) -> posterior on test, correction on train+val."""
    cfg, C, M, fit, test = inp.cfg, inp.num_classes, inp.z.shape[0], inp.fit, inp.test
    flags = dyn.flags if (dyn is not None and v.flags) else None
    alpha_p = np.stack([prior(inp, v, m, flags) for m in range(M)])     # (M, N_fit, C)
    targets = [predicted_labels(inp, m) if v.target == "predicted" else inp.noisy for m in range(M)]
    w_all = [features(inp, v, m) for m in range(M)]                     # M x (N_all, width)
    p_test = inp.probs[:, inp.best][:, test]                             # (M, N_test, C)
    per_epoch = []

    def record(epoch, vaes):   # test probabilities after every epoch: inspection, never selection
        per_epoch.append(posterior(vaes, w_all, p_test, test, C))

    lam = cfg.lambda_t if v.coreg else 0.0
    vaes = train_stage2([w[fit] for w in w_all], [t[fit] for t in targets], alpha_p, C, epochs=cfg.T,
                        lr=cfg.vae_lr, batch_size=cfg.vae_batch_size, softplus_beta=cfg.softplus_beta,
                        beta=cfg.beta, lambda_t=lam, warmup_fraction=cfg.warmup_epochs, seed=cfg.seed,
                        on_epoch_end=record)
    trval = np.arange(inp.n_trval)
    q_trval = np.stack([ev.q_all_candidates(vae, w_all[m][trval], C) for m, vae in enumerate(vaes)])
    observed = np.stack(targets) if v.target == "predicted" else inp.noisy
    corrected = ev.corrected_distribution(q_trval, observed)
    obs = np.broadcast_to(observed, (M, len(trval)))
    model_labels = q_trval[np.arange(M)[:, None], trval[None, :], obs].argmax(-1)      # (M, N_trval)
    return VariantOutput(per_epoch[-1], corrected, per_epoch, alpha_p, model_labels, int(w_all[0].shape[1]),
                         lam, vaes)


def posterior(vaes, w_all, p_test: np.ndarray, test: np.ndarray, C: int) -> np.ndarray:
    """p(y|x) = mean over models of sum over y~ of p_m(y~|x) q_m(y|y~, w) on the test rows."""
    q = np.stack([ev.q_all_candidates(vae, w_all[m][test], C) for m, vae in enumerate(vaes)])
    return ev.posterior(p_test, q)
