"""Caches that are truncated, corrupt, made by another configuration or of the wrong shape
are detected, reported and rebuilt, never used."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from conftest import tiny_args
from src import stage1_cache as sc
from src.config import make_config
from src.model.train_stage1 import Stage1Result

M, E, N, D, C = 2, 3, 10, 4, 5


@pytest.fixture
def cfg(tmp_path):
    return make_config(output_dir=str(tmp_path / "cache"), n_model=M, epochs=E)


def _complete_cache(cfg):
    rng = np.random.default_rng(0)
    z = sc.new_trajectory_file(cfg, (M, E, N, D))
    z[:] = rng.normal(size=z.shape).astype(np.float16)
    probs = rng.random((M, E, N, C)).astype(np.float32)
    sc.save_stage1(cfg, Stage1Result(z, probs, 1, [0.1, 0.5, 0.3]))
    return np.array(z), probs


def test_complete_cache_round_trip(cfg):
    z, probs = _complete_cache(cfg)
    res = sc.load_stage1(cfg, N, C)
    assert res is not None and res.best_epoch == 1 and res.val_acc_noisy == [0.1, 0.5, 0.3]
    assert np.array_equal(res.z, z) and np.array_equal(res.probs, probs)


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


def _flip_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2 + 7] ^= 0xFF
    path.write_bytes(bytes(data))


def _edit_meta(d, **changes):
    meta = json.loads((d / "meta.json").read_text())
    meta.update(changes)
    (d / "meta.json").write_text(json.dumps(meta))


def _wrong_shape(d):
    np.save(d / "probs.npy", np.zeros((M, E, N + 1, C), np.float32))
    meta = json.loads((d / "meta.json").read_text())
    meta["sha256"]["probs.npy"] = sc.file_sha256(d / "probs.npy")  # a consistent file, wrong shape
    (d / "meta.json").write_text(json.dumps(meta))


CORRUPTIONS = {
    "truncated z.npy": (lambda d: _truncate(d / "z.npy"), "z.npy is corrupt or truncated"),
    "truncated probs.npy": (lambda d: _truncate(d / "probs.npy", 0.9), "probs.npy is corrupt or truncated"),
    "flipped byte in z.npy": (lambda d: _flip_byte(d / "z.npy"), "z.npy is corrupt or truncated"),
    "wrong hash": (lambda d: _edit_meta(d, hash="0123456789ab"), "configuration hash '0123456789ab'"),
    "other settings": (lambda d: _edit_meta(d, config={"lr": 1.0}), "settings recorded in meta.json differ"),
    "wrong shape": (_wrong_shape, "shape mismatch"),
    "truncated meta.json": (lambda d: _truncate(d / "meta.json"), "unusable"),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_corrupt_cache_is_reported_and_not_used(name, cfg, caplog):
    _complete_cache(cfg)
    corrupt, words = CORRUPTIONS[name]
    corrupt(sc.stage1_dir(cfg))
    with caplog.at_level(logging.WARNING, logger="dygen"):
        assert sc.load_stage1(cfg, N, C) is None
    assert "is unusable" in caplog.text and words in caplog.text


def test_cache_of_another_configuration_is_not_found(cfg):
    _complete_cache(cfg)
    other = make_config(output_dir=cfg.output_dir, n_model=M, epochs=E, lr=2e-4)
    assert sc.stage1_dir(other) != sc.stage1_dir(cfg) and sc.load_stage1(other, N, C) is None


# ---- per-epoch checkpoint ----
def _checkpoint(cfg, shape=(M, E, N, D), done=1):
    z, resume = sc.open_stage1(cfg, shape)
    assert resume is None
    z[:, :done] = np.arange(np.prod(z[:, :done].shape)).reshape(z[:, :done].shape) % 7
    state = {"epoch": done, "step": 4, "models": [{"w": torch.ones(2)}], "probs": torch.zeros(M, done, N, C),
             "val_acc": [0.5] * done, "best_epoch": 0, "best_acc": 0.5, "best_states": None,
             "rng": {"torch": torch.get_rng_state()}}
    sc.checkpoint_writer(cfg, z)(state)
    return z


def test_checkpoint_round_trip(cfg):
    _checkpoint(cfg, done=2)
    assert json.loads((sc.ckpt_path(cfg).parent / "progress.json").read_text()) == {"epoch": 2, "epochs": E}
    z, ck = sc.open_stage1(cfg, (M, E, N, D))
    assert ck["epoch"] == 2 and ck["step"] == 4 and torch.equal(ck["models"][0]["w"], torch.ones(2))
    assert np.array_equal(np.asarray(z[:, :2]), np.arange(M * 2 * N * D).reshape(M, 2, N, D) % 7)


def _edit_ckpt(cfg, **changes):
    ck = torch.load(sc.ckpt_path(cfg), weights_only=True)
    ck.update(changes)
    torch.save(ck, sc.ckpt_path(cfg))


def _change_finished_epoch(path):
    z = np.load(path, mmap_mode="r+")
    z[1, 0, 3, 2] += 1  # epoch 1 is finished and checksummed
    z.flush()
    del z


CKPT_CORRUPTIONS = {
    "truncated ckpt.pt": (lambda cfg: _truncate(sc.ckpt_path(cfg)), (M, E, N, D), ""),
    "wrong hash": (lambda cfg: _edit_ckpt(cfg, hash="0123456789ab"), (M, E, N, D), "configuration hash"),
    "wrong shape": (lambda cfg: None, (M, E, N, D + 1), "trajectory shape"),
    "trajectory changed": (lambda cfg: _change_finished_epoch(sc.stage1_dir(cfg) / "z.npy"), (M, E, N, D),
                           "does not match its checksum"),
    "truncated z.npy": (lambda cfg: _truncate(sc.stage1_dir(cfg) / "z.npy"), (M, E, N, D), ""),
    "not a checkpoint": (lambda cfg: torch.save([1, 2], sc.ckpt_path(cfg)), (M, E, N, D), "format"),
    "resumed with --save_model": (lambda cfg: setattr(cfg, "save_model", True), (M, E, N, D),
                                  "made without --save_model"),
}


@pytest.mark.parametrize("name", list(CKPT_CORRUPTIONS))
def test_corrupt_checkpoint_is_discarded(name, cfg, caplog):
    _checkpoint(cfg)
    corrupt, shape, words = CKPT_CORRUPTIONS[name]
    corrupt(cfg)
    with caplog.at_level(logging.WARNING, logger="dygen"):
        z, ck = sc.open_stage1(cfg, shape)
    assert ck is None and "is unusable" in caplog.text and words in caplog.text
    assert z.shape == shape and not np.asarray(z).any()  # a fresh trajectory file
    assert not sc.ckpt_path(cfg).parent.exists()


def test_checkpoint_with_a_pickled_object_is_refused(cfg, caplog):
    """weights_only=True: a checkpoint holding arbitrary Python objects is never unpickled."""
    _checkpoint(cfg)
    ck = torch.load(sc.ckpt_path(cfg), weights_only=True)
    ck["payload"] = logging.getLogger("x")  # any class outside the tensor/primitive allow-list
    torch.save(ck, sc.ckpt_path(cfg))
    with caplog.at_level(logging.WARNING, logger="dygen"):
        _, resumed = sc.open_stage1(cfg, (M, E, N, D))
    assert resumed is None and "UnpicklingError" in caplog.text


# ---- tokenised data cache ----
def test_token_cache_checks(tmp_path, caplog):
    from src.data.prepare import load_token_cache
    from src.outputs import atomic_save_npz
    f = tmp_path / "tok.npz"
    ids, offsets = np.arange(12, dtype=np.int32), np.array([0, 4, 8, 12])
    atomic_save_npz(f, ids=ids, offsets=offsets, clean=np.array([0, 1, 2]), noisy=np.array([0, 1]),
                    config_hash=np.array("abc"))
    tokens, clean, noisy = load_token_cache(f, "abc", 3, 2, 3)
    assert np.array_equal(tokens.ids, ids) and list(noisy) == [0, 1]
    with caplog.at_level(logging.WARNING, logger="dygen"):
        assert load_token_cache(f, "other", 3, 2, 3) is None          # made by another configuration
        assert load_token_cache(f, "abc", 4, 2, 3) is None            # wrong shape
        assert load_token_cache(f, "abc", 3, 2, 1) is None            # labels out of range
        _truncate(f)
        assert load_token_cache(f, "abc", 3, 2, 3) is None            # truncated
    assert caplog.text.count("is unusable") == 4


def test_corrupt_cache_is_rebuilt_end_to_end(tiny_bert_dir, tmp_path, caplog, monkeypatch):
    """A real run; its z.npy truncated; the same command recomputes stage 1 and reproduces
    the first run's numbers."""
    import main as entry
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        args = tiny_args(tiny_bert_dir, tmp_path, "--epochs", "1", "--vae_epochs", "1")
        assert entry.main(args) == 0
        runs = tmp_path / "cache" / "runs"
        first = json.loads(next(runs.iterdir()).joinpath("metrics.json").read_text())
        d = next((tmp_path / "cache" / "stage1").iterdir())
        _truncate(d / "z.npy")
        with caplog.at_level(logging.WARNING, logger="dygen"):
            assert entry.main(args) == 0
    finally:
        torch.set_num_threads(n)
    assert "z.npy is corrupt or truncated" in caplog.text
    second = json.loads(sorted(runs.iterdir())[-1].joinpath("metrics.json").read_text())
    assert len(list(runs.iterdir())) == 2 and not second["stage1_cached"]
    for key in ("stage1_val_acc_noisy", "label_cleaning", "noise_detection"):
        assert first[key] == second[key]
    assert {k: v["test"] for k, v in first["methods"].items()} == {k: v["test"] for k, v in second["methods"].items()}
    assert sc.load_stage1(make_config(**_flags(args)), second["n_train"] + second["n_validation"]
                          + second["n_test"], second["num_classes"]) is not None


def _flags(args):
    from src.config import build_parser
    return vars(build_parser().parse_args(args))


def test_a_cache_made_before_a_hash_neutral_field_is_still_used(cfg):
    """A stage-1 cache and checkpoint written before `cpu_bf16` existed (their recorded settings
    lack it) are still found and used by a run at its default; a run with it set is another
    configuration."""
    z, _ = _complete_cache(cfg)
    d = sc.stage1_dir(cfg)
    meta = json.loads((d / "meta.json").read_text())
    assert "cpu_bf16" not in meta["config"]            # what the older code recorded
    meta["config"]["cpu_bf16"] = False                 # what a non-neutral key would record
    _edit_meta(d, config=meta["config"])
    assert sc.load_stage1(cfg, N, C) is None           # recorded settings must be the neutral ones
    del meta["config"]["cpu_bf16"]
    _edit_meta(d, config=meta["config"])
    res = sc.load_stage1(cfg, N, C)
    assert res is not None and np.array_equal(res.z, z)
    other = make_config(output_dir=cfg.output_dir, n_model=M, epochs=E, cpu_bf16=True)
    assert sc.stage1_dir(other) != d and sc.load_stage1(other, N, C) is None


def test_checkpoint_made_before_a_hash_neutral_field_resumes(cfg):
    _checkpoint(cfg, done=2)
    ck = torch.load(sc.ckpt_path(cfg), weights_only=True)
    assert "cpu_bf16" not in ck["config"]
    z, ck = sc.open_stage1(cfg, (M, E, N, D))
    assert ck is not None and ck["epoch"] == 2
