"""The steps in order, each a function with typed input and output:

data -> stage 1 -> methods (dynamics -> prior -> stage 2, and the baselines) -> evaluate -> outputs

`prepare_data` returns the method's data and the oracle labels apart; the oracle goes to
`evaluate` and nowhere else.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import torch

from src import outputs, preflight, stage1_cache
from src.config import Config
from src.data.prepare import MethodData, Oracle, effective_max_len, prepare_data
from src.errors import UserError
from src.evaluation import Evaluation, evaluate, methods_metrics
from src.methods import (SINGLE_OVERRIDES, LabelCleaning, MethodInputs, MethodOutput, fit_rows, parse_methods,
                         run_methods, single_config, single_output)
from src.model.loading import load_tokenizer, resolve_model_dir
from src.runtime import allocator, distributed
from src.runtime.amp import amp_dtype, cpu_bf16_warning, set_cpu_bf16
from src.runtime.device import pick_device
from src.runtime.perf import new_perf as train_stage1_perf
from src.runtime.threads import configure_threads
from src.stage1 import run_stage1
from src.variants import DynamicsResult, Stage2Inputs

log = logging.getLogger("dygen")


@dataclass
class Runtime:
    device: torch.device
    threads: int
    world: int
    rank0: bool
    model_dir: str
    model_cfg: dict
    tokenizer: object


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextmanager
def timed(timings: dict, name: str):
    t0 = time.perf_counter()
    yield
    timings[name] = round(time.perf_counter() - t0, 3)


def setup(cfg: Config) -> Runtime:
    device = distributed.init_from_env(pick_device(cfg.device))
    set_cpu_bf16(cfg.cpu_bf16 and device.type == "cpu")
    bf16_note = cpu_bf16_warning() if cfg.cpu_bf16 and device.type == "cpu" else ""
    if bf16_note:
        log.warning(bf16_note)
    world = distributed.world_size()
    threads = configure_threads(int(os.environ.get("LOCAL_WORLD_SIZE", world)))
    model_dir = resolve_model_dir(cfg.bert)
    model_cfg = preflight.check_paths(cfg, model_dir, effective_max_len(cfg))
    tokenizer = load_tokenizer(model_dir)
    preflight.check_tokenizer(tokenizer, model_dir)
    return Runtime(device, threads, world, distributed.rank() == 0, model_dir, model_cfg, tokenizer)


def step_data(cfg: Config, rt: Runtime,
              stage1_cfg: Callable[[Config], Config] = lambda c: c) -> Tuple[Config, MethodData, Oracle]:
    """Load, split, corrupt, tokenise (rank 0 first under torchrun; the others read its cache);
    then the checks that need the data. Returns the config with data-dependent defaults fitted.
    `stage1_cfg` maps it to the stage 1 that will run (the resource estimate is that one's)."""
    with preflight.user_errors(f"data step ({cfg.dataset})"):
        if not rt.rank0:
            distributed.barrier()
        data, oracle = prepare_data(cfg, rt.tokenizer, rt.model_dir, rt.device)
        if rt.rank0:
            distributed.barrier()
    cfg = fit_to_data(cfg, data)
    check_resources(stage1_cfg(cfg), data, rt)
    prec = amp_dtype(rt.device)
    log.info("%s: %d classes; %d train / %d validation / %d test; max_len %d; device %s (%s); %d thread(s); "
             "malloc %s%s", cfg.dataset, data.num_classes, data.n_train, data.n_val, len(data.test_idx),
             effective_max_len(cfg), rt.device, str(prec).replace("torch.", "") if prec else "fp32", rt.threads,
             allocator.active(),
             f"; {rt.world} processes (rank {distributed.rank()})" if rt.world > 1 else "")
    return cfg, data, oracle


def fit_to_data(cfg: Config, data: MethodData) -> Config:
    """Defaults that must fit the data they meet: --selected_class at most the class count."""
    C = data.num_classes
    if data.n_train < 1 or data.n_val < 1:
        raise UserError(f"{data.n_train} training / {data.n_val} validation samples: need at least one of "
                        f"each (raise --max_train_samples)")
    if cfg.selected_class > C:
        log.warning("--selected_class %d exceeds the %d classes of %s: using %d", cfg.selected_class, C,
                    cfg.dataset, C)
        cfg = dataclasses.replace(cfg, selected_class=C)
    return cfg


def check_resources(cfg: Config, data: MethodData, rt: Runtime) -> None:
    """The disk/memory estimate of stage 1, before any expensive work."""
    d = stage1_cache.stage1_dir(cfg)
    on_disk = sum(f.stat().st_size for f in d.rglob("*") if f.is_file()) if d.exists() else 0
    hidden = int(rt.model_cfg.get("hidden_size", 768))
    preflight.check_resources(cfg, data.n_all, data.num_classes, hidden, preflight.weight_bytes(rt.model_dir),
                              on_disk)


def step_stage1(cfg: Config, data: MethodData, rt: Runtime, perf: dict) -> Tuple[object, dict]:
    s1, cached, resumed_from = run_stage1(cfg, data, rt.tokenizer, rt.model_dir, rt.device, perf)
    if rt.rank0:
        log.info("stage 1: selected epoch %d (noisy-validation acc %.4f)%s", s1.best_epoch + 1,
                 s1.val_acc_noisy[s1.best_epoch], " [cached]" if cached else "")
    return s1, {"stage1_best_epoch": s1.best_epoch + 1, "stage1_val_acc_noisy": s1.val_acc_noisy,
                "stage1_cached": cached, "stage1_resumed_after_epoch": resumed_from,
                "stage1_hash": stage1_cache.stage1_dir(cfg).name}


def step_methods(cfg: Config, data: MethodData, s1, rt: Runtime):
    """Every method asked for (always `cr` and `dygen`) on this stage 1: (outputs per method, the
    dynamics result, the label cleaning, the noise-rate estimate)."""
    def stage1_of(other: Config):   # another configuration's stage 1 (`single`): fine-tuning on all threads
        if rt.world > 1:
            raise UserError("--variants single needs its own stage 1: run it without torchrun")
        torch.set_num_threads(rt.threads)
        try:
            return run_stage1(other, data, rt.tokenizer, rt.model_dir, rt.device)[0]
        finally:
            torch.set_num_threads(1)

    st = Stage2Inputs(cfg, s1.z, s1.probs, s1.best_epoch, data.noisy, fit_rows(data.n_train), data.test_idx,
                      data.num_classes)
    names = parse_methods(",".join(["cr", "dygen", cfg.variants]))
    inp = MethodInputs(cfg, s1, st, stage1_of)
    return run_methods(inp, names)


def step_cleanlab_detection(cfg: Config, data: MethodData, rt: Runtime) -> dict:
    """cleanlab's label-issue verdicts on the training rows (5-fold logistic regression on the
    frozen pretrained encoder's mean-pooled embeddings, noisy labels)."""
    from src.baselines.cleanlab_detect import cleanlab_detection
    from src.data.features import mean_pooled_features
    idx = data.train_idx
    feats = mean_pooled_features(rt.model_dir, data.tokens.subset(idx), rt.tokenizer.pad_token_id, rt.device,
                                 cfg.eval_batch_size)
    return cleanlab_detection(feats, data.noisy[idx], data.num_classes, seed=cfg.seed)


def new_run_dir(cfg: Config, data: MethodData) -> Path:
    """A fresh run folder (never an existing one) holding the configuration and the label map."""
    run_dir = outputs.new_run_dir(Path(cfg.output_dir), f"{cfg.dataset}-{cfg.noise_type}{cfg.noise_ratio}-seed{cfg.seed}")
    outputs.atomic_write_json(run_dir / "config.json", cfg.to_dict())
    outputs.atomic_write_json(run_dir / "label_map.json", {n: i for i, n in enumerate(data.class_names)})
    return run_dir


def step_outputs(cfg: Config, data: MethodData, ev: Evaluation, outs: Dict[str, MethodOutput],
                 dyn: DynamicsResult, cleaning: LabelCleaning) -> Path:
    """The run folder, the results log and the per-epoch accuracy file."""
    metrics = ev.metrics
    run_dir = new_run_dir(cfg, data)
    metrics["run_dir"] = str(run_dir)
    names = np.asarray(data.class_names)
    outputs.write_corrected_labels(run_dir / "corrected_labels.csv", data, cleaning.dygen, cleaning.confidence,
                                   dyn.scores.mean(0), dyn.flags.any(0), ev.clean_names,
                                   extra={"cleanlab_label": names[cleaning.cleanlab],
                                          "cleanlab_flagged": cleaning.cleanlab_flagged.astype(int)})
    outputs.atomic_save_npz(run_dir / "test_predictions.npz", test_labels=ev.test_labels,
                            **{f"{n.replace('-', '_')}_probs": o.test_probs for n, o in outs.items()})
    dy = metrics["methods"]["dygen"]
    outputs.save_acc_per_epoch(Path(cfg.output_dir), run_dir, f"dygen_acc_{cfg.noise_ratio}_{cfg.T}.npy",
                               dy.get("test_acc_per_epoch", []))
    if "test" in dy:
        outputs.append_results_log(Path(cfg.output_dir) / f"{cfg.dataset}-results.logs", cfg.to_dict(),
                                   metrics["methods"]["cr"]["test"]["accuracy"], dy["test"]["accuracy"])
    if cfg.save_model:
        for m, v in enumerate(outs["dygen"].vaes):
            outputs.atomic_torch_save(Path(cfg.model_dir) / run_dir.name / f"stage2_vae{m}.pt", v.state_dict())
    if not cfg.no_plots:
        from src import plots
        metrics["plots"] = plots.run_plots(
            run_dir, scores=dyn.scores.mean(0)[ev.known], own_dist=dyn.own_dist[0][:, ev.known],
            is_noisy=ev.is_noisy, probs_before=outs["cr"].test_probs, probs_after=outs["dygen"].test_probs,
            test_labels=ev.test_labels if ev.has_test_gold else None, seed=cfg.seed)
    return run_dir


def run(cfg: Config) -> Optional[dict]:
    """The whole pipeline; returns the metrics (None on the ranks > 0 of a torchrun launch)."""
    t_start, timings = time.perf_counter(), {}
    seed_everything(cfg.seed)
    rt = setup(cfg)
    with timed(timings, "data"):
        cfg, data, oracle = step_data(cfg, rt)
    perf = train_stage1_perf()
    with timed(timings, "stage1"):
        s1, s1_info = step_stage1(cfg, data, rt, perf)
    if rt.world > 1:  # the steps after stage 1 are cheap: rank 0 runs them alone
        distributed.finish()
        if not rt.rank0:
            return None
    # The steps after stage 1 work on small matrices: more threads only add synchronisation.
    torch.set_num_threads(1)
    with timed(timings, "methods"):
        outs, dyn, cleaning, estimate = step_methods(cfg, data, s1, rt)
    if estimate is not None:
        ci = f" [{estimate.ci_low:.3f}, {estimate.ci_high:.3f}]" if estimate.ci_low is not None else ""
        log.info("noise rate estimate: %.4f%s (%s on %d samples); flagged: %s", estimate.rate, ci,
                 estimate.method, estimate.n, dyn.how)
    cl = None
    if cfg.compare_cleanlab:
        with timed(timings, "cleanlab"):
            cl = step_cleanlab_detection(cfg, data, rt)
    with timed(timings, "evaluate"):
        ev = evaluate(data, oracle, outs, dyn, cleaning, estimate, cl)
    metrics = ev.metrics
    metrics.update(s1_info)
    if perf["train_seqs"] or perf["embed_seqs"]:
        metrics["stage1_perf"] = {k: round(v, 3) for k, v in perf.items()}
    with timed(timings, "outputs"):
        run_dir = step_outputs(cfg, data, ev, outs, dyn, cleaning)
    timings["total"] = round(time.perf_counter() - t_start, 3)
    metrics["timings_s"] = timings
    outputs.atomic_write_json(run_dir / "metrics.json", metrics)
    return metrics


def run_single_only(cfg: Config) -> dict:
    """`single` alone: data -> its own one-model stage 1 -> its scores -> a run folder.

    `run` always trains the co-regularised ensemble first (`cr` and `dygen` need it); the grid
    calls this for a setting whose only missing cell is `single`, so a machine without the
    ensemble's stage-1 cache does not retrain it to score one model. The seeds, the stage-1
    configuration and its cache are `run`'s, so the numbers are the ones `run` gives."""
    t_start, timings = time.perf_counter(), {}
    seed_everything(cfg.seed)
    rt = setup(cfg)
    if rt.world > 1:
        raise UserError("--variants single needs its own stage 1: run it without torchrun")
    with timed(timings, "data"):
        cfg, data, oracle = step_data(cfg, rt, stage1_cfg=single_config)
    with timed(timings, "methods"):
        s1 = run_stage1(single_config(cfg), data, rt.tokenizer, rt.model_dir, rt.device)[0]
        out = single_output(s1, data.test_idx, data.n_trval)
    out.seconds = timings["methods"]
    metrics = methods_metrics(data, oracle, {"single": out})
    # config.json holds the configuration asked for; the stage 1 that ran is single's
    metrics["stage1_overrides"] = dict(SINGLE_OVERRIDES)
    metrics["stage1_hash"] = stage1_cache.stage1_dir(single_config(cfg)).name
    run_dir = new_run_dir(cfg, data)
    metrics["run_dir"] = str(run_dir)
    outputs.atomic_save_npz(run_dir / "test_predictions.npz", test_labels=oracle.test_gold, single_probs=out.test_probs)
    timings["total"] = round(time.perf_counter() - t_start, 3)
    metrics["timings_s"] = timings
    outputs.atomic_write_json(run_dir / "metrics.json", metrics)
    return metrics
