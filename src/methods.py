"""The methods compared on one stage 1, each under the same rule: fitted on the noisy
TRAINING split only; the noisy validation split selects (epoch, hyper-parameters); test
labels are never seen here (the oracle is not an argument of anything in this module).

| name | what it is |
| --- | --- |
| `single` | one model fine-tuned on the noisy labels, no co-regularisation (its own stage 1) |
| `cr` | the run's stage 1: M co-regularised models (Zhou & Chen 2021), ensemble |
| `traj_lr` | logistic regression on the flattened trajectory, noisy labels, C chosen on validation |
| `cleanlab_lr` | cleanlab: label issues found by cross-validation on the training rows, dropped, then logistic regression on the selected epoch's embedding |
| `npc` | NPC (Bae et al., ICML 2022) on the selected epoch's embedding of the stage-1 models |
| `dygen` and its ablations | `src.variants` |
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np

from src.dynamics.flag_count import flag_rate
from src.dynamics.noise_rate import choose_noise_rate
from src.errors import UserError
from src.variants import VARIANTS, DynamicsResult, Stage2Inputs, dynamics_scores, flag_by_rate, run_variant

log = logging.getLogger("dygen")

METHODS = ("single", "cr", "traj_lr", "cleanlab_lr", "npc", "dygen", "dygen-no-dynamics", "dygen-no-prior",
           "dygen-no-coreg")
RENAMED = {"base": "single"}
from src.baselines.traj_lr import DEFAULT_CS as LR_CS, grid_edge   # the C grid of the LR methods
SINGLE_OVERRIDES = dict(n_model=1, alpha_t_hi=0.0)   # `single`'s own stage 1


@dataclass
class MethodOutput:
    test_probs: np.ndarray                       # (N_test, C)
    corrected: Optional[np.ndarray] = None       # (N_trval, C) the method's label for each train/val row
    info: dict = field(default_factory=dict)     # JSON-able facts about the fit (no oracle)
    test_probs_last: Optional[np.ndarray] = None     # stage-1 methods: at the last epoch
    test_probs_per_epoch: Optional[List[np.ndarray]] = None  # stage-2 methods: after each epoch
    seconds: float = 0.0
    vaes: list = field(default_factory=list)         # stage-2 methods: the trained VAEs (--save_model)
    model_labels: Optional[np.ndarray] = None        # (M, N_trval) stage-2 methods: each model's label


@dataclass
class LabelCleaning:
    """The two cleaners of the given train/validation labels, side by side (a practitioner's
    output): DyGen's corrected labels behind the safety valve, and cleanlab's relabelling on
    out-of-sample probabilities."""
    dygen: np.ndarray              # (N_trval,) final labels
    confidence: np.ndarray         # (N_trval,)
    changed: np.ndarray            # (N_trval,) bool
    valve_closed: bool
    cleanlab: np.ndarray           # (N_trval,)
    cleanlab_flagged: np.ndarray   # (N_trval,) bool


@dataclass
class MethodInputs:
    """Everything a method may read. `stage1_of` runs (or reads from the cache) the stage 1 of
    another configuration (for `single`)."""
    cfg: object                    # Config
    s1: object                     # Stage1Result: z (M,E,N_all,D), probs (M,E,N_all,C), best_epoch
    stage2: Stage2Inputs
    stage1_of: Callable[[object], object]


def fit_rows(n_train: int) -> np.ndarray:
    """The rows every method fits on: the training split (validation selects, test scores)."""
    return np.arange(n_train)


def parse_methods(text: str) -> List[str]:
    """'dygen,npc' -> ['npc', 'dygen'] in METHODS order, duplicates dropped; unknown names refused."""
    names = [s.strip().lower() for s in str(text).split(",") if s.strip()]
    for n in names:
        if n in RENAMED:
            raise UserError(f"--variants: {n!r} is now called {RENAMED[n]!r}")
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise UserError(f"--variants: unknown {', '.join(unknown)}; known: {', '.join(METHODS)}")
    if not names:
        raise UserError(f"--variants is empty; known: {', '.join(METHODS)}")
    return [m for m in METHODS if m in names]


def stage1_ensemble(s1, test: np.ndarray, epoch: int) -> np.ndarray:
    """(N_test, C) mean over models of the stage-1 softmax at `epoch`."""
    return s1.probs[:, epoch][:, test].mean(0)


def run_cr(inp: MethodInputs) -> MethodOutput:
    s1, st = inp.s1, inp.stage2
    corrected = s1.probs[:, s1.best_epoch, :st.n_trval].mean(0)
    return MethodOutput(stage1_ensemble(s1, st.test, s1.best_epoch), corrected,
                        {"stage1": f"{s1.probs.shape[0]} co-regularised models, selected epoch {s1.best_epoch + 1}",
                         "selected_epoch": s1.best_epoch + 1},
                        test_probs_last=stage1_ensemble(s1, st.test, s1.probs.shape[1] - 1))


def single_config(cfg):
    """The configuration of `single`'s own stage 1 (one model, no co-regularisation)."""
    return dataclasses.replace(cfg, **SINGLE_OVERRIDES)


def single_output(s1, test: np.ndarray, n_trval: int) -> MethodOutput:
    """`single` from its own one-model stage 1: the selected epoch's softmax (and the last's)."""
    return MethodOutput(stage1_ensemble(s1, test, s1.best_epoch), s1.probs[0, s1.best_epoch, :n_trval],
                        {"stage1": "1 model, no co-regularisation", "selected_epoch": s1.best_epoch + 1},
                        test_probs_last=stage1_ensemble(s1, test, s1.probs.shape[1] - 1))


def run_single(inp: MethodInputs) -> MethodOutput:
    return single_output(inp.stage1_of(single_config(inp.cfg)), inp.stage2.test, inp.stage2.n_trval)


def _per_model_lr(inp: MethodInputs, fit_one) -> MethodOutput:
    """One logistic-regression method per stage-1 model (fit on the training rows, C chosen on
    the noisy validation rows), probabilities averaged over models as for `cr` and `dygen`."""
    st = inp.stage2
    val = np.setdiff1d(np.arange(st.n_trval), st.fit)
    pred = np.concatenate([np.arange(st.n_trval), st.test])
    results = [fit_one(m, val, pred) for m in range(st.z.shape[0])]
    probs = np.mean([r.probs for r in results], axis=0)                # (N_trval + N_test, C)
    info = {"C_per_model": [r.C for r in results],
            "val_acc_noisy_per_C": [{f"{c:g}": a for c, a in r.val_acc.items()} for r in results]}
    name = "cleanlab_lr" if hasattr(results[0], "n_removed") else "traj_lr"
    edges = [grid_edge(r.C, LR_CS) for r in results]
    if any(edges):
        info["C_at_grid_edge"] = edges
        log.warning("%s: C chosen at the %s edge of the grid %s; the best C may lie beyond it",
                    name, "/".join(sorted(set(e for e in edges if e))), ", ".join(f"{c:g}" for c in LR_CS))
    if any(r.unconverged for r in results):
        info["C_unconverged_per_model"] = [list(r.unconverged) for r in results]
        chosen = [r.C for r in results if r.C in r.unconverged]
        log.log(logging.WARNING if chosen else logging.INFO,
                "%s: lbfgs stopped at max_iter for C = %s%s", name,
                ", ".join(f"{c:g}" for c in sorted({c for r in results for c in r.unconverged})),
                f" (the chosen C {', '.join(f'{c:g}' for c in chosen)} among them)" if chosen
                else " (none of them chosen on noisy validation)")
    if hasattr(results[0], "n_removed"):
        info["n_removed_per_model"] = [int(r.n_removed) for r in results]
    return MethodOutput(probs[st.n_trval:], probs[:st.n_trval], info)


def run_traj_lr(inp: MethodInputs) -> MethodOutput:
    from src.baselines.traj_lr import traj_lr
    st = inp.stage2
    return _per_model_lr(inp, lambda m, val, pred: traj_lr(
        st.z[m], st.noisy, st.fit, val, pred, num_classes=st.num_classes, Cs=LR_CS))


def run_cleanlab_lr(inp: MethodInputs) -> MethodOutput:
    from src.baselines.cleanlab_lr import cleanlab_lr
    st = inp.stage2

    def one(m, val, pred):
        x = np.asarray(st.z[m, st.best], np.float32)                    # the selected epoch's embedding
        return cleanlab_lr(x[st.fit], st.noisy[st.fit], x[val], st.noisy[val], x[pred],
                           num_classes=st.num_classes, Cs=LR_CS, seed=inp.cfg.seed)
    return _per_model_lr(inp, one)


def run_stage2_variant(inp: MethodInputs, name: str, dyn: Optional[DynamicsResult]) -> MethodOutput:
    out = run_variant(inp.stage2, VARIANTS[name], dyn)
    info = {"vae_input_width": out.in_dim, "stage2_lambda_t": out.lambda_t}
    if dyn is not None and VARIANTS[name].flags:
        info.update(n_flagged_train=dyn.n_flag, flag_count_method=dyn.how)
    return MethodOutput(out.test_probs, out.corrected, info, test_probs_per_epoch=out.test_probs_per_epoch,
                        vaes=out.vaes, model_labels=out.model_labels)


RUNNERS: Dict[str, Callable[[MethodInputs], MethodOutput]] = {
    "single": run_single, "cr": run_cr, "traj_lr": run_traj_lr, "cleanlab_lr": run_cleanlab_lr}


def estimate_noise(st: Stage2Inputs, train_scores: np.ndarray, seed: int):
    """The noise rate estimated on the held-out noisy validation rows (the stage-1 ensemble at
    its selected epoch never trained on them); the mixture on the training rows' dynamics
    scores below `MIN_HELDOUT` of them."""
    val = np.setdiff1d(np.arange(st.n_trval), st.fit)
    return choose_noise_rate(st.noisy[val], st.probs[:, st.best, val].mean(0), train_scores,
                             num_classes=st.num_classes, seed=seed)


def clean_labels(inp: MethodInputs, dygen: MethodOutput, rate: float, ci_low: Optional[float]) -> LabelCleaning:
    """DyGen's labels behind the safety valve (`src.dynamics.safety_valve`), and cleanlab's."""
    from src.baselines.cleanlab_relabel import cleanlab_relabel, out_of_sample_probs
    from src.dynamics.safety_valve import final_labels
    st = inp.stage2
    fin = final_labels(st.noisy, dygen.corrected, dygen.model_labels, rate=rate, ci_low=ci_low)
    x = np.concatenate([np.asarray(st.z[m, st.best, :st.n_trval], np.float32) for m in range(st.z.shape[0])], 1)
    val = np.setdiff1d(np.arange(st.n_trval), st.fit)
    probs = out_of_sample_probs(x, st.noisy, st.fit, val, num_classes=st.num_classes, seed=inp.cfg.seed)
    order = np.concatenate([st.fit, val])
    flags, relabeled = np.zeros(st.n_trval, bool), np.zeros(st.n_trval, np.int64)
    flags[order], relabeled[order] = cleanlab_relabel(st.noisy[order], probs)
    return LabelCleaning(fin.labels, fin.confidence, fin.changed, fin.guarded, relabeled, flags)


def run_methods(inp: MethodInputs, names: List[str]):
    """(outputs per method, the dynamics result DyGen's flags came from, the label cleaning, the
    noise-rate estimate)."""
    st, cfg = inp.stage2, inp.cfg
    own, scores = dynamics_scores(st)
    estimate = estimate_noise(st, scores.mean(0)[st.fit], cfg.seed)
    rate, how = flag_rate(noise_type=cfg.noise_type, noise_ratio=cfg.noise_ratio, flag_ratio=cfg.flag_ratio,
                          estimate_noise_rate=cfg.estimate_noise_rate, estimate=estimate)
    dyn = flag_by_rate(st, own, scores, rate, how)
    log.info("dynamics: flagging %d of %d training samples (%s)", dyn.n_flag, len(st.fit), dyn.how)
    outs: Dict[str, MethodOutput] = {}
    for name in names:
        t0 = time.perf_counter()
        outs[name] = RUNNERS[name](inp) if name in RUNNERS else run_stage2_variant(inp, name, dyn)
        outs[name].seconds = round(time.perf_counter() - t0, 3)
    flagged_share = dyn.n_flag / max(1, len(st.fit))     # the rate after flooring to whole samples
    ci = estimate.ci_low if "estimated" in dyn.how else None
    return outs, dyn, clean_labels(inp, outs["dygen"], flagged_share, ci), estimate
