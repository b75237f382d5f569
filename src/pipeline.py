"""Calls the steps in order, times them, and hands each result to the next:

data -> stage 1 -> dynamics -> prior -> stage 2 -> evaluate -> outputs
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
from typing import Optional

import numpy as np
import torch

from src import preflight, stage1_cache
from src.config import Config
from src.data.prepare import effective_max_len, prepare_data
from src.dynamics.euclidean_dist import dynamics_score, flag_top, own_label_distances
from src.dynamics.flag_count import flag_count
from src.model import evaluate as ev
from src.model.generate_prior import dirichlet_prior, knn_proba
from src.model.loading import load_tokenizer, resolve_model_dir
from src.runtime import allocator, distributed
from src.runtime.device import pick_device
from src.runtime.perf import new_perf as train_stage1_perf
from src.runtime.threads import configure_threads
from src.stage1 import run_stage1
from src.model.train_stage2 import train_stage2
from src import outputs
from src.variants import BASE_OVERRIDES, VARIANTS, Variant, parse_methods

log = logging.getLogger("dygen")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextmanager
def timed(timings: dict, name: str):
    t0 = time.perf_counter()
    yield
    timings[name] = round(time.perf_counter() - t0, 3)


def trajectory_features(z_m: np.ndarray) -> np.ndarray:
    """(E, N, D) -> (N, E*D): each sample's whole trajectory as one vector."""
    E, N, D = z_m.shape
    return np.ascontiguousarray(np.asarray(z_m, dtype=np.float32).transpose(1, 0, 2).reshape(N, E * D))


@dataclass
class Shared:
    """What every stage-2 variant of one run reads: the data and the cached stage 1."""
    cfg: Config
    s1: object                 # Stage1Result
    noisy: np.ndarray          # (N_trval,)
    num_classes: int
    n_trval: int
    test: np.ndarray           # indices of the test samples in [train | validation | test]
    p_noisy_test: np.ndarray   # (M, N_test, C) stage-1 probabilities at the selected epoch
    test_gold: np.ndarray
    has_gold: bool


@dataclass
class VariantResult:
    test_probs: np.ndarray     # (N_test, C)
    corrected: np.ndarray      # (N_trval, C) q(y | observed y~, w), averaged over models
    scores: Optional[np.ndarray]   # (M, N_trval) flagging scores, None without flagging
    flags: np.ndarray          # (M, N_trval) bool
    n_flag: int
    flag_how: str
    alpha_prior: np.ndarray    # (M, N_trval, C)
    in_dim: int                # width of the VAE input w
    lambda_t: float
    vaes: list
    epoch_acc: list            # per-epoch test accuracy (recorded only when asked)
    timings: dict
    own_dist: Optional[np.ndarray] = None   # (M, E, N_trval) distances behind dynamics scores


def variant_features(s1, v: Variant, best: int, m: int) -> np.ndarray:
    """(N_all, E*D) trajectory or (N_all, D) one epoch's embedding of model m."""
    if v.features == "trajectory":
        return trajectory_features(s1.z[m])
    return np.asarray(s1.z[m, best], dtype=np.float32)


def variant_scores(s1, v: Variant, best: int, noisy: np.ndarray, C: int):
    """(M, N_trval) flagging scores (None for a variant that flags nothing), and the
    per-epoch own-label distances (M, E, N_trval) they came from (None unless dynamics)."""
    if v.flagging == "none":
        return None, None
    trval = slice(0, len(noisy))
    M = s1.z.shape[0]
    if v.flagging == "dynamics":
        own = np.stack([own_label_distances(s1.z[m][:, trval], noisy, C) for m in range(M)])
        return np.stack([dynamics_score(o) for o in own]), own
    return np.stack([own_label_distances(s1.z[m][best:best + 1, trval], noisy, C)[0] for m in range(M)]), None


def run_variant(sh: Shared, v: Variant, record_test_acc: bool = False) -> VariantResult:
    """dynamics -> prior -> stage 2 -> posterior for one variant on the shared stage 1."""
    cfg, s1, noisy, C = sh.cfg, sh.s1, sh.noisy, sh.num_classes
    M, best, trval, test = s1.z.shape[0], s1.best_epoch, slice(0, sh.n_trval), sh.test
    timings: dict = {}
    with timed(timings, "dynamics"):
        scores, own_dist = variant_scores(s1, v, best, noisy, C)        # (M, N_trval) or None
        if scores is None:
            n_flag, flag_how = 0, "no flagging (this variant's prior uses every sample)"
            flags = np.zeros((M, sh.n_trval), dtype=bool)
        else:
            n_flag, flag_how = flag_count(scores.mean(0), noise_type=cfg.noise_type, noise_ratio=cfg.noise_ratio,
                                          flag_ratio=cfg.flag_ratio, seed=cfg.seed)
            flags = np.stack([flag_top(s, n_flag) for s in scores])   # (M, N_trval)
        log.info("%s: flagging %d of %d train+validation samples: %s", v.name, n_flag, sh.n_trval, flag_how)
    with timed(timings, "prior"):
        if v.prior == "uniform":
            alpha_p = np.full((M, sh.n_trval, C), 1.0 + 1.0 / C)
        else:
            e0 = cfg.prior_epoch - 1 if v.prior_epoch == "config" else best
            alpha_p = np.stack([
                dirichlet_prior(knn_proba(np.asarray(s1.z[m, e0, trval], np.float32), noisy, ~flags[m], C, cfg.k),
                                cfg.knn_mode, cfg.prior_norm, cfg.selected_class)
                for m in range(M)])                                    # (M, N_trval, C)
    lam = v.lambda_t(cfg.lambda_t)
    with timed(timings, "stage2"):
        w_all = [variant_features(s1, v, best, m) for m in range(M)]  # M x (N_all, E*D or D)
        epoch_acc = []

        def record(epoch, vaes):  # per-epoch test accuracy, for inspection only (never selection)
            if record_test_acc and sh.has_gold:
                q = np.stack([ev.q_all_candidates(vae, w_all[m][test], C) for m, vae in enumerate(vaes)])
                epoch_acc.append(float((ev.posterior(sh.p_noisy_test, q).argmax(1) == sh.test_gold).mean()))

        vaes = train_stage2([w[trval] for w in w_all], noisy, alpha_p, C, epochs=cfg.T, lr=cfg.vae_lr,
                            batch_size=cfg.vae_batch_size, softplus_beta=cfg.softplus_beta, beta=cfg.beta,
                            lambda_t=lam, warmup_fraction=cfg.warmup_epochs, seed=cfg.seed,
                            on_epoch_end=record)
    with timed(timings, "evaluate"):
        q_test = np.stack([ev.q_all_candidates(vae, w_all[m][test], C) for m, vae in enumerate(vaes)])
        test_probs = ev.posterior(sh.p_noisy_test, q_test)
        q_trval = np.stack([ev.q_all_candidates(vae, w_all[m][trval], C) for m, vae in enumerate(vaes)])
        corrected = ev.corrected_distribution(q_trval, noisy)        # (N_trval, C)
    return VariantResult(test_probs, corrected, scores, flags, int(n_flag), flag_how, alpha_p,
                         int(w_all[0].shape[1]), lam, vaes, epoch_acc, timings, own_dist)


def variant_metrics(res: VariantResult, sh: Shared, clean_trval: np.ndarray) -> dict:
    """Test metrics, noise detection (when the variant flags) and label correction."""
    out = {"n_flagged": res.n_flag, "vae_input_width": res.in_dim, "stage2_lambda_t": res.lambda_t,
           "timings_s": res.timings}
    if sh.has_gold:
        out["test"] = ev.classification_metrics(res.test_probs, sh.test_gold)
    known = clean_trval >= 0
    if known.any():
        noisy = sh.noisy
        is_noisy = noisy[known] != clean_trval[known]
        if res.scores is not None:
            mean_score = res.scores.mean(0)
            out["noise_detection"] = ev.detection_metrics(flag_top(mean_score, res.n_flag)[known],
                                                          mean_score[known], is_noisy)
        out["label_correction"] = {
            "n_with_clean_label": int(known.sum()),
            "given_label_acc": float((noisy[known] == clean_trval[known]).mean()),
            "dygen_label_acc": float((res.corrected.argmax(1)[known] == clean_trval[known]).mean())}
    return out


def run(cfg: Config) -> Optional[dict]:
    """The whole pipeline; returns the metrics (None on the ranks > 0 of a torchrun launch)."""
    t_start = time.perf_counter()
    timings: dict = {}
    seed_everything(cfg.seed)
    device = distributed.init_from_env(pick_device(cfg.device))
    world, rank0 = distributed.world_size(), distributed.rank() == 0
    threads = configure_threads(int(os.environ.get("LOCAL_WORLD_SIZE", world)))
    model_dir = resolve_model_dir(cfg.bert)
    model_cfg = preflight.check_paths(cfg, model_dir, effective_max_len(cfg))
    methods = parse_methods(cfg.variants)

    # ---- data ----
    with timed(timings, "data"):
        tokenizer = load_tokenizer(model_dir)
        preflight.check_tokenizer(tokenizer, model_dir)
        with preflight.user_errors(f"data step ({cfg.dataset})"):
            if not rank0:
                distributed.barrier()  # rank 0 tokenises and caches; the others read its cache
            data = prepare_data(cfg, tokenizer, model_dir, device)
            if rank0:
                distributed.barrier()
    timings["tokenise"] = round(data.tokenize_s, 3)
    timings["data"] = round(timings["data"] - timings["tokenise"], 3)
    C, n_tr, n_va, n_trval = data.num_classes, data.n_train, data.n_val, data.n_trval
    check_prepared(cfg, data, model_cfg, model_dir)
    log.info("%s: %d classes; %d train / %d validation / %d test; max_len %d; device %s; %d thread(s); malloc %s%s",
             cfg.dataset, C, n_tr, n_va, len(data.test_idx), effective_max_len(cfg), device, threads, allocator.active(),
             f"; {world} processes (rank {distributed.rank()})" if world > 1 else "")
    noise = {"train": data.noise_rate("train"), "validation": data.noise_rate("val")}
    log.info("realised noise rate (%s %.2f): train %.4f, validation %.4f",
             cfg.noise_type, cfg.noise_ratio, noise["train"], noise["validation"])

    # ---- stage 1 ----
    perf = train_stage1_perf()
    with timed(timings, "stage1"):
        s1, cached, resumed_from = run_stage1(cfg, data, tokenizer, model_dir, device, perf)
    if world > 1:  # the steps after stage 1 are cheap: rank 0 runs them alone
        distributed.finish()
        if not rank0:
            return None
    # The steps after stage 1 work on small matrices (stage-2 batches of 128 x E*D): more
    # threads only add synchronisation, which made them ~3x slower on a busy 2-core machine.
    torch.set_num_threads(1)
    best = s1.best_epoch
    test = data.test_idx
    test_gold = data.clean[test]
    has_gold = bool(len(test)) and (test_gold >= 0).all()
    p_noisy_test = s1.probs[:, best][:, test]                        # (M, N_test, C)
    base_probs = p_noisy_test.mean(0)
    log.info("stage 1: selected epoch %d (noisy-validation acc %.4f)%s", best + 1,
             s1.val_acc_noisy[best], " [cached]" if cached else "")

    # ---- dynamics -> prior -> stage 2 -> posterior: DyGen, then the other variants ----
    trval = slice(0, n_trval)
    noisy = data.noisy
    clean_trval = data.clean[trval]
    sh = Shared(cfg, s1, noisy, C, n_trval, test, p_noisy_test, test_gold, has_gold)
    results = {}
    for name in ["dygen"] + [m for m in methods if m in VARIANTS and m != "dygen"]:
        results[name] = run_variant(sh, VARIANTS[name], record_test_acc=(name == "dygen"))
    dy = results["dygen"]
    for step in ("dynamics", "prior", "stage2"):
        timings[step] = dy.timings[step]
    scores, flags, n_flag, flag_how, vaes = dy.scores, dy.flags, dy.n_flag, dy.flag_how, dy.vaes
    dygen_probs, corrected, epoch_acc = dy.test_probs, dy.corrected, dy.epoch_acc

    # ---- evaluate ----
    with timed(timings, "evaluate"):
        metrics = {"n_train": n_tr, "n_validation": n_va, "n_test": int(len(test)), "num_classes": C,
                   "realised_noise_rate": noise, "stage1_best_epoch": best + 1,
                   "stage1_val_acc_noisy": s1.val_acc_noisy, "stage1_cached": cached,
                   "stage1_resumed_after_epoch": resumed_from,
                   "n_flagged": int(n_flag), "flag_count_method": flag_how}
        if has_gold:
            metrics["base"] = ev.classification_metrics(base_probs, test_gold)
            metrics["dygen"] = ev.classification_metrics(dygen_probs, test_gold)
            metrics["dygen_test_acc_per_epoch"] = epoch_acc
        known = clean_trval >= 0   # diagnostics on the samples whose clean label is known
        is_noisy = noisy[known] != clean_trval[known] if known.any() else None
        if known.any():
            mean_score = scores.mean(0)
            metrics["noise_detection"] = ev.detection_metrics(flag_top(mean_score, n_flag)[known],
                                                              mean_score[known], is_noisy)
            metrics["noise_detection_per_model"] = [ev.detection_metrics(f[known], s[known], is_noisy)
                                                    for f, s in zip(flags, scores)]
            metrics["label_correction"] = {
                "n_with_clean_label": int(known.sum()),
                "given_label_acc": float((noisy[known] == clean_trval[known]).mean()),
                "dygen_label_acc": float((corrected.argmax(1)[known] == clean_trval[known]).mean())}
        variants = {}
        for name in methods:
            if name == "cr":
                variants["cr"] = {"stage1": f"{cfg.n_model} co-regularised models (alpha_t_hi {cfg.alpha_t_hi}), "
                                            f"selected epoch {best + 1}", "stage1_hash": stage1_cache.stage1_dir(cfg).name}
                if has_gold:
                    variants["cr"]["test"] = metrics["base"]
            elif name in results:
                variants[name] = variant_metrics(results[name], sh, clean_trval)
    extra_probs = {}
    if "base" in methods:   # its own stage 1: one model, no co-regularisation
        cfg_b = dataclasses.replace(cfg, **BASE_OVERRIDES)
        if world > 1:
            from src.errors import UserError
            raise UserError("--variants base needs its own stage 1: run it without torchrun")
        t0 = time.perf_counter()
        torch.set_num_threads(threads)   # a fine-tuning again: all threads
        s1b, cached_b, _ = run_stage1(cfg_b, data, tokenizer, model_dir, device)
        torch.set_num_threads(1)
        extra_probs["base_1model_probs"] = s1b.probs[0, s1b.best_epoch][test]
        variants["base"] = {"stage1": "1 model, no co-regularisation", "stage1_best_epoch": s1b.best_epoch + 1,
                            "stage1_hash": stage1_cache.stage1_dir(cfg_b).name, "stage1_cached": cached_b,
                            "timings_s": {"stage1": round(time.perf_counter() - t0, 3)}}
        if has_gold:
            variants["base"]["test"] = ev.classification_metrics(extra_probs["base_1model_probs"], test_gold)
        timings["stage1_base"] = variants["base"]["timings_s"]["stage1"]
    metrics["variants"] = {m: variants[m] for m in methods if m in variants}
    if perf["train_seqs"] or perf["embed_seqs"]:
        metrics["stage1_perf"] = {k: round(v, 3) for k, v in perf.items()}
    if cfg.compare_cleanlab and known.any():
        with timed(timings, "cleanlab"):
            metrics["detection_comparison"] = detection_comparison(cfg, data, model_dir, tokenizer, device,
                                                                   scores.mean(0)[known], known, is_noisy)

    # ---- outputs ----
    with timed(timings, "outputs"):
        run_dir = outputs.new_run_dir(Path(cfg.output_dir),
                                      f"{cfg.dataset}-{cfg.noise_type}{cfg.noise_ratio}-seed{cfg.seed}")
        metrics["timings_s"] = timings
        metrics["run_dir"] = str(run_dir)
        outputs.atomic_write_json(run_dir / "config.json", cfg.to_dict())
        outputs.atomic_write_json(run_dir / "label_map.json", {n: i for i, n in enumerate(data.class_names)})
        write_corrected_labels(run_dir / "corrected_labels.csv", data, corrected, scores.mean(0),
                               flags.any(0))
        extra_probs.update({f"{n.replace('-', '_')}_probs": r.test_probs for n, r in results.items() if n != "dygen"})
        outputs.atomic_save_npz(run_dir / "test_predictions.npz", base_probs=base_probs, dygen_probs=dygen_probs,
                                test_labels=test_gold, **extra_probs)
        acc_arr = np.asarray(metrics.get("dygen_test_acc_per_epoch", []), dtype=np.float64)
        outputs.atomic_save_npy(run_dir / f"dygen_acc_{cfg.noise_ratio}_{cfg.T}.npy", acc_arr)
        top = Path(cfg.output_dir) / f"dygen_acc_{cfg.noise_ratio}_{cfg.T}.npy"
        if top.exists():  # never overwrite an earlier run's file
            top = top.with_name(f"dygen_acc_{cfg.noise_ratio}_{cfg.T}-{run_dir.name}.npy")
        outputs.atomic_save_npy(top, acc_arr)
        if has_gold:
            outputs.append_results_log(Path(cfg.output_dir) / f"{cfg.dataset}-results.logs", cfg.to_dict(),
                                       metrics["base"]["accuracy"], metrics["dygen"]["accuracy"])
        if cfg.save_model:
            wdir = Path(cfg.model_dir) / run_dir.name
            for m, v in enumerate(vaes):
                outputs.atomic_torch_save(wdir / f"stage2_vae{m}.pt", v.state_dict())
        if not cfg.no_plots:
            from src import plots
            own = dy.own_dist[0]  # (E, N_trval), model 1: computed once, in the dynamics step
            metrics["plots"] = plots.run_plots(
                run_dir, scores=scores.mean(0)[known], own_dist=own[:, known], is_noisy=is_noisy,
                probs_before=base_probs, probs_after=dygen_probs, test_labels=test_gold if has_gold else None,
                seed=cfg.seed)
    timings["total"] = round(time.perf_counter() - t_start, 3)
    outputs.atomic_write_json(run_dir / "metrics.json", metrics)
    return metrics


def detection_comparison(cfg: Config, data, model_dir: str, tokenizer, device, dygen_score: np.ndarray,
                         known: np.ndarray, is_noisy: np.ndarray) -> dict:
    """cleanlab (5-fold logistic regression on the frozen pretrained encoder's mean-pooled
    embeddings, noisy labels) against the dynamics score, on the samples with a known clean label."""
    from src.baselines.cleanlab_detect import compare_detection
    from src.data.features import mean_pooled_features
    idx = np.flatnonzero(known)
    feats = mean_pooled_features(model_dir, data.tokens.subset(idx), tokenizer.pad_token_id, device,
                                 cfg.eval_batch_size)
    out = compare_detection(dygen_score, feats, data.noisy[idx], is_noisy, data.num_classes, seed=cfg.seed)
    log.info("noise detection at the true count (%d): dynamics score P %.4f AUROC %.4f; cleanlab P %.4f AUROC %.4f",
             out["n_corrupted"], out["dygen_at_true_count"]["precision"], out["dygen_at_true_count"]["auroc"] or 0,
             out["cleanlab_at_true_count"]["precision"], out["cleanlab_at_true_count"]["auroc"] or 0)
    return out


def check_prepared(cfg: Config, data, model_cfg: dict, model_dir: str) -> None:
    """Checks that need the data (classes, sample counts); then the disk/memory estimate."""
    from src.errors import UserError
    C = data.num_classes
    if cfg.selected_class > C:
        raise UserError(f"--selected_class ({cfg.selected_class}) exceeds the number of classes ({C})")
    if data.n_train < 1 or data.n_val < 1:
        raise UserError(f"{data.n_train} training / {data.n_val} validation samples: need at least one of "
                        f"each (raise --max_train_samples)")
    d = stage1_cache.stage1_dir(cfg)
    on_disk = sum(f.stat().st_size for f in d.rglob("*") if f.is_file()) if d.exists() else 0
    hidden = int(model_cfg.get("hidden_size", 768))
    preflight.check_resources(cfg, data.n_all, C, hidden, preflight.weight_bytes(model_dir), on_disk)


def write_corrected_labels(path, data, corrected: np.ndarray, score: np.ndarray, flagged: np.ndarray):
    """One line per train+validation sample, most suspect first (highest dynamics score);
    `row` is the sample's row in the source file (0-based, header excluded), `suspect_rank` 1
    the most suspect, `changed` whether DyGen's label differs from the given one."""
    names = data.class_names
    n_tr = data.n_train
    row_ids = data.row_ids if data.row_ids is not None else np.arange(data.n_trval)
    header = ["row", "split", "text", "given_label", "dygen_label", "confidence", "dynamics_score",
              "flagged", "changed", "suspect_rank", "clean_label"]
    rows = []
    order = np.argsort(-score, kind="stable")
    for rank, i in enumerate(order, 1):
        clean = data.clean[i]
        pred = corrected[i].argmax()
        rows.append([int(row_ids[i]), "train" if i < n_tr else "validation", data.texts[i][:200].replace("\n", " "),
                     names[data.noisy[i]], names[pred], f"{corrected[i].max():.4f}",
                     f"{score[i]:.4f}", int(flagged[i]), int(pred != data.noisy[i]), rank,
                     names[clean] if clean >= 0 else ""])
    outputs.write_csv(path, header, rows)


def summary_table(metrics: dict) -> str:
    lines = []
    if "base" in metrics:
        lines.append(f"{'':22s}{'accuracy':>10s}{'macro-F1':>10s}{'ECE':>8s}")
        for name in ("base", "dygen"):
            m = metrics[name]
            lines.append(f"{'test ' + ('base (stage 1)' if name == 'base' else 'DyGen'):22s}"
                         f"{m['accuracy']:10.4f}{m['macro_f1']:10.4f}{m['ece']:8.4f}")
    for name, v in metrics.get("variants", {}).items():
        if name != "dygen" and "test" in v:
            m = v["test"]
            lines.append(f"{'test ' + name:22s}{m['accuracy']:10.4f}{m['macro_f1']:10.4f}{m['ece']:8.4f}")
    nr = metrics["realised_noise_rate"]
    lines.append(f"realised noise rate   train {nr['train']:.4f}  validation {nr['validation']:.4f}")
    if "noise_detection" in metrics:
        d = metrics["noise_detection"]
        auroc = f"{d['auroc']:.4f}" if d["auroc"] is not None else "n/a"
        lines.append(f"noise detection       P {d['precision']:.4f}  R {d['recall']:.4f}  "
                     f"F1 {d['f1']:.4f}  AUROC {auroc}")
        lc = metrics["label_correction"]
        lines.append(f"train+val label acc   given {lc['given_label_acc']:.4f}  DyGen {lc['dygen_label_acc']:.4f}")
    if "detection_comparison" in metrics:
        dc = metrics["detection_comparison"]
        for name in ("dygen", "cleanlab"):
            d = dc[f"{name}_at_true_count"]
            auroc = f"{d['auroc']:.4f}" if d["auroc"] is not None else "n/a"
            lines.append(f"{'detection ' + ('dynamics' if name == 'dygen' else 'cleanlab'):22s}"
                         f"P@{dc['n_corrupted']} {d['precision']:.4f}  AUROC {auroc}")
    t = metrics["timings_s"]
    lines.append("time (s)              " + "  ".join(f"{k} {v:.1f}" for k, v in t.items()))
    lines.append(f"run folder            {metrics['run_dir']}")
    return "\n".join(lines)
