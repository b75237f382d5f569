"""The command line: every Config field parses to its declared type, choices and ranges are
refused with a one-line UserError, presets yield to explicit flags (and only to them)."""
from __future__ import annotations

import contextlib
import io
import math
import types
from dataclasses import fields
from typing import Literal, Union, get_args, get_origin, get_type_hints

import pytest

from src.config import PRESETS, Config, build_parser, config_from_args, literal_choices, make_config
from src.errors import UserError

HINTS = get_type_hints(Config)
FIELDS = list(fields(Config))


def _strip_optional(hint):
    if get_origin(hint) in (Union, types.UnionType) and type(None) in get_args(hint):
        (inner,) = [a for a in get_args(hint) if a is not type(None)]
        return inner
    return hint


def sample_argv(f):
    """(argv, expected value) for one field: a value other than its default, of its type.
    An unknown type fails the test, so a new kind of field must be taught here."""
    hint = _strip_optional(HINTS[f.name])
    flag = "--" + f.name
    if get_origin(hint) is Literal:
        value = next(c for c in get_args(hint) if c != f.default)
        return [flag, str(value)], value
    if get_origin(hint) is list:
        item = {int: ("3", 3), float: ("0.5", 0.5), str: ("a", "a")}[get_args(hint)[0]]
        return [flag, item[0], item[0]], [item[1], item[1]]
    if hint is bool:
        assert f.default is False  # a switch that is off by default: the flag alone turns it on
        return [flag], True
    if hint is int:
        return [flag, "7"], 7
    if hint is float:
        return [flag, "0.375"], 0.375
    if hint is str:
        return [flag, "some-value"], "some-value"
    raise AssertionError(f"Config.{f.name}: no test value for type {hint!r}")


@pytest.mark.parametrize("f", FIELDS, ids=[f.name for f in FIELDS])
def test_every_field_parses_to_its_declared_type(f):
    argv, expected = sample_argv(f)
    ns = vars(build_parser().parse_args(argv))
    assert ns == {f.name: expected}                         # only the explicit flag, nothing else
    assert type(ns[f.name]) is type(expected)


def test_defaults_stay_out_of_the_namespace():
    assert vars(build_parser().parse_args([])) == {}


def test_help_lists_every_flag_with_its_help_and_default():
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = " ".join(out.getvalue().split())                 # undo the line wrapping
    for f in FIELDS:
        assert f"--{f.name}" in text
        words = " ".join(f.metadata["help"].replace("%%", "%").split()[:6])
        assert words in text, f.name
    assert "--train-file" not in text                       # one spelling per flag
    assert "(default: 0.0001)" in text and "(default: embedded)" in text
    assert "(default 10) (default" not in text              # a help that names its default keeps it


def test_switches_take_no_value():
    ns = vars(build_parser().parse_args(["--save_model", "--model_dir", "m", "--no_plots"]))
    assert ns == {"save_model": True, "model_dir": "m", "no_plots": True}
    cfg = config_from_args(["--compare_cleanlab"])
    assert cfg.compare_cleanlab is True and cfg.no_plots is False and cfg.save_model is False


LITERALS = [f.name for f in FIELDS if literal_choices(HINTS[f.name])]


def test_the_choice_fields():
    assert LITERALS == ["saved_dataset", "cpu_dropout", "parallel_models", "device", "preset"]
    assert set(literal_choices(HINTS["preset"])) == set(PRESETS)


@pytest.mark.parametrize("name", LITERALS)
def test_a_bad_choice_is_a_user_error(name):
    with pytest.raises(UserError, match=rf"^argument --{name}: invalid choice: 'bogus'"):
        config_from_args([f"--{name}", "bogus"])
    with pytest.raises(UserError, match=rf"^--{name} must be one of .* \(got 'bogus'\)$"):
        make_config(**{name: "bogus"})                      # the path that skips argparse


@pytest.mark.parametrize("argv,message", [
    (["--epochs", "abc"], "argument --epochs: invalid int value: 'abc'"),
    (["--lr", "fast"], "argument --lr: invalid float value: 'fast'"),
    (["--no_such_flag", "1"], "unrecognized arguments: --no_such_flag 1"),
    (["--epochs"], "argument --epochs: expected one argument"),
])
def test_argparse_errors_are_one_line_user_errors(argv, message):
    with pytest.raises(UserError) as e:
        config_from_args(argv)
    assert str(e.value) == message


# ------------------------------------------------------------------ presets
def test_a_preset_sets_its_values():
    cfg = config_from_args(["--preset", "quick"])
    for name, value in PRESETS["quick"].items():
        assert getattr(cfg, name) == value, name


def test_an_explicit_flag_beats_the_preset_even_at_the_default_value():
    assert Config.epochs == 10 and PRESETS["quick"]["epochs"] == 4
    assert config_from_args(["--preset", "quick", "--epochs", "7"]).epochs == 7
    assert config_from_args(["--preset", "quick", "--epochs", "10"]).epochs == 10  # == default, still wins
    assert config_from_args(["--preset", "quick"]).epochs == 4                      # the default does not
    assert config_from_args(["--epochs", "10", "--preset", "quick"]).epochs == 10   # order is irrelevant
    assert make_config(preset="grid", train_batch_size=64).train_batch_size == 64


def test_preset_max_len_is_capped_by_the_dataset_unless_given():
    assert config_from_args(["--preset", "quick"]).max_len == 64            # 20news allows 150
    assert config_from_args(["--preset", "grid", "--dataset", "trec"]).max_len == 48
    assert config_from_args(["--preset", "quick", "--max_len", "100"]).max_len == 100
    assert config_from_args([]).max_len is None                             # the dataset's own, later


# ------------------------------------------------------------------ --vae_epochs / --total_iter
def test_vae_epochs_and_its_older_name():
    assert config_from_args([]).T == 10 and config_from_args([]).vae_epochs is None
    assert config_from_args(["--total_iter", "4"]).T == 4
    assert config_from_args(["--vae_epochs", "5"]).T == 5
    assert config_from_args(["--vae_epochs", "6", "--total_iter", "6"]).T == 6
    with pytest.raises(UserError, match=r"--vae_epochs \(3\) and its older name --total_iter \(4\) disagree"):
        config_from_args(["--vae_epochs", "3", "--total_iter", "4"])
    assert config_from_args(["--preset", "quick", "--total_iter", "3"]).T == 3  # beats the preset's 10
    with pytest.raises(UserError, match=r"--vae_epochs must be >= 1 \(got 0\)"):
        config_from_args(["--total_iter", "0"])


# ------------------------------------------------------------------ ranges
@pytest.mark.parametrize("argv,message", [
    (["--noise_ratio", "1.0"], "--noise_ratio must be in [0, 1) (got 1.0)"),
    (["--noise_ratio", "nan"], "--noise_ratio must be in [0, 1) (got nan)"),
    (["--flag_ratio", "-0.1"], "--flag_ratio must be in [0, 1) (got -0.1)"),
    (["--warmup_epochs", "1.5"], "--warmup_epochs is a fraction of the stage-2 epochs, in [0, 1] (got 1.5)"),
    (["--n_model", "0"], "--n_model must be >= 1 (got 0)"),
    (["--k", "-3"], "--k must be >= 1 (got -3)"),
    (["--length_bucket", "-1"], "--length_bucket must be >= 0 (got -1)"),
    (["--max_train_samples", "0"], "--max_train_samples must be >= 1 (got 0)"),
    (["--max_len", "7"], "--max_len must be >= 8 (got 7)"),
    (["--prior_epoch", "3", "--epochs", "2"], "--prior_epoch (3) exceeds --epochs (2)"),
    (["--lr", "0"], "--lr must be > 0 (got 0.0)"),
    (["--vae_lr", "inf"], "--vae_lr must be a finite number (got inf)"),
    (["--beta", "-0.5"], "--beta must be >= 0 (got -0.5)"),
    (["--softplus_beta", "0"], "--softplus_beta must be > 0 (got 0.0)"),
    (["--seed", str(2 ** 32)], f"--seed must be in [0, 2**32) (got {2 ** 32})"),
    (["--noise_type", "XYZ"], "--noise_type must be one of SN, ASN, IDN, REAL (got 'XYZ')"),
    (["--knn_mode", "cosine"], "--knn_mode must be one of onehot, proba (got 'cosine')"),
    (["--dataset", "nosuch"], "unknown --dataset 'nosuch'; known: 20news, agnews, chemprot, csv"),
    (["--dataset", "csv"], "--dataset csv needs --train_file"),
    (["--train_file", "x.csv"], "--train_file/--test_file are read only with --dataset csv or jsonl"),
])
def test_out_of_range_values_are_user_errors(argv, message):
    with pytest.raises(UserError) as e:
        config_from_args(argv)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_the_edges_of_each_range_are_accepted():
    cfg = config_from_args(["--noise_ratio", "0", "--flag_ratio", "0.99", "--warmup_epochs", "1",
                            "--length_bucket", "0", "--max_len", "8", "--seed", str(2 ** 32 - 1),
                            "--weight_decay", "0", "--prior_epoch", "10", "--noise_type", "asn"])
    assert (cfg.noise_ratio, cfg.flag_ratio, cfg.max_len, cfg.seed) == (0.0, 0.99, 8, 2 ** 32 - 1)
    assert cfg.noise_type == "ASN" and math.isfinite(cfg.lr)


def test_the_committed_grid_cells_keep_their_configuration_hash():
    """A field added later (HASH_NEUTRAL, e.g. cpu_bf16) must not change the hash of the runs
    made before it: the committed TREC grid's cells would otherwise be recomputed. Setting it
    does change the hash."""
    import csv
    from conftest import ROOT
    from src import grid
    row = next(csv.DictReader(open(ROOT / "docs/grid/trec/results.csv")))
    kw = dict(dataset="trec", preset="trec", noise_type=row["noise_type"], noise_ratio=float(row["noise_ratio"]),
              seed=int(row["seed"]))
    assert grid.config_hash(make_config(**kw)) == row["config_hash"]
    assert grid.config_hash(make_config(**kw, cpu_bf16=True)) != row["config_hash"]


@pytest.mark.parametrize("preset", ["trec", "20news"])
def test_a_swept_preset_uses_the_best_row_of_its_committed_sweep(preset):
    """--preset trec/20news carry the stage-1 lr and epochs that won the committed sweep on NOISY
    validation accuracy (docs/sweeps/<dataset>.csv): editing either side alone fails here."""
    import csv
    from conftest import ROOT
    p = PRESETS[preset]
    rows = [r for r in csv.DictReader(open(ROOT / f"docs/sweeps/{p['dataset']}.csv"))
            if int(r["train_batch_size"]) == p["train_batch_size"]]
    assert len({r["lr"] for r in rows}) >= 3, "a sweep tries at least three learning rates"
    best = max(rows, key=lambda r: float(r["val_acc_noisy_best"]))
    assert (float(best["lr"]), int(best["epochs"])) == (p["lr"], p["epochs"])
