"""Stage 1: its learning-rate schedule and co-regularisation warm-up (known answers); with the
models in threads (`ModelThreads`) the same computation as running them one after the other,
deterministic, and exactly resumable."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from src.data.tokenize import Tokens
from src.model import fast_dropout, train_stage1 as ts
from src.runtime import threads as rth

C, N_TRAIN, N_VAL, N_ALL = 4, 24, 8, 40


def _data():
    rng = np.random.default_rng(0)
    seqs = [rng.integers(1000, 5000, size=rng.integers(3, 15)).tolist() for _ in range(N_ALL)]
    return Tokens.from_lists(seqs), rng.integers(0, C, N_ALL)


def _models(tiny_bert_dir, dropout=True):
    from src.model.loading import load_classifier
    models = [load_classifier(tiny_bert_dir, C, seed=s) for s in (1, 2)]
    if not dropout:
        for m in models:
            for mod in m.modules():
                if isinstance(mod, torch.nn.Dropout):
                    mod.p = 0.0
    return models


def _train(models, parallel, epochs=2, resume=None, on_epoch_end=None):
    tokens, noisy = _data()
    z = np.zeros((2, epochs, N_ALL, models[0].config.hidden_size), np.float32)
    if resume is not None:
        z[:, :resume["epoch"]] = resume["z"]
    torch.manual_seed(0)
    settings = ts.Stage1Settings(epochs=epochs, lr=1e-3, weight_decay=0.0, batch_size=8, eval_batch_size=16,
                                 alpha_t_hi=5.0, clip=1.0, seed=3, parallel_models=parallel, keep_best=False)
    r = ts.train_stage1(models, ts.Stage1Data(tokens, noisy, N_TRAIN, N_VAL, 0), settings, torch.device("cpu"),
                        z_out=z, resume=resume, on_epoch_end=on_epoch_end)
    return z, r.probs


def _lrs(warmup: int, total: int, lr: float = 1.0) -> list:
    """The learning rate of optimizer steps 0 .. total under stage 1's schedule."""
    from transformers import get_linear_schedule_with_warmup
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    sched = get_linear_schedule_with_warmup(opt, warmup, total)
    out = []
    for _ in range(total + 1):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_lr_schedule_known_values():
    # warm-up 2 of 6 steps: 0, 1/2, then down by 1/4 per step to 0
    assert _lrs(2, 6) == [0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0]
    # no warm-up: from the full rate straight down, (total - step) / total
    assert _lrs(0, 4, lr=1e-3) == [1e-3 * (4 - s) / 4 for s in range(5)]


def test_lr_schedule_matches_the_former_hand_written_one_at_every_step():
    """What stage 1 computed before it used transformers' schedule, step by step, bit for bit."""
    def former(step, warmup, total):
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))
    for total in (1, 7, 40, 333):
        warmup = int(0.06 * total)
        assert _lrs(warmup, total, lr=2e-5) == [2e-5 * former(s, warmup, total) for s in range(total + 1)]


def test_coreg_alpha_is_off_for_the_first_tenth_of_the_steps():
    # 20 steps: steps 0 and 1 (10%) without the agreement term, from step 2 on with it
    assert [ts.coreg_alpha(s, 20, 5.0) for s in range(4)] == [0.0, 0.0, 5.0, 5.0]
    # 25 steps: 10% is 2.5 steps, so steps 0, 1, 2 without, step 3 the first with
    assert [ts.coreg_alpha(s, 25, 3.0) for s in (2, 3, 24)] == [0.0, 3.0, 3.0]
    assert ts.coreg_alpha(0, 5, 3.0) == 0.0 and ts.coreg_alpha(1, 5, 3.0) == 3.0


def test_the_loop_steps_the_schedule_once_per_optimizer_step(tiny_bert_dir):
    """24 samples in batches of 8 for 2 epochs: 6 steps, warm-up int(0.06 * 6) = 0, so after the
    first epoch (3 steps) the rate is 1e-3 * (6 - 3) / 6."""
    states = []
    _train(_models(tiny_bert_dir), "off", on_epoch_end=states.append)
    assert [s["step"] for s in states] == [3, 6]
    assert states[0]["scheduler"]["_last_lr"] == [1e-3 * 3 / 6]
    assert states[1]["scheduler"]["_last_lr"] == [0.0]


@pytest.fixture()
def two_threads():
    n = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(n)


def test_use_model_threads_conditions(two_threads):
    cpu = torch.device("cpu")
    assert rth.use_model_threads("auto", cpu, 1, 2, "bulk")
    assert not rth.use_model_threads("off", cpu, 1, 2, "bulk")
    assert not rth.use_model_threads("auto", cpu, 2, 2, "bulk")        # DDP
    assert not rth.use_model_threads("auto", cpu, 1, 1, "bulk")        # one model
    assert not rth.use_model_threads("auto", cpu, 1, 2, "torch")       # global-generator masks
    assert not rth.use_model_threads("auto", cpu, 1, 3, "bulk")        # fewer threads than models


def test_threads_change_nothing_but_timing(tiny_bert_dir, two_threads, monkeypatch):
    """Threads vs the same per-model generators run one model after the other (with the
    co-regularisation, clipping and real dropout): identical trajectories."""
    z_par, p_par = _train(_models(tiny_bert_dir), "auto")

    def one_after_the_other(self, fn):
        n = torch.get_num_threads()
        torch.set_num_threads(self.per_model)
        try:
            return [fn(i) for i in range(self.n)]
        finally:
            torch.set_num_threads(n)
    monkeypatch.setattr(rth.ModelThreads, "map", one_after_the_other)
    z_seq, p_seq = _train(_models(tiny_bert_dir), "auto")
    np.testing.assert_allclose(z_par, z_seq, rtol=0, atol=1e-6)
    np.testing.assert_allclose(p_par, p_seq, rtol=0, atol=1e-6)
    assert not np.allclose(z_par[:, 0], z_par[:, 1])     # two models, two different trajectories


def test_per_model_backward_equals_the_joint_backward(tiny_bert_dir, two_threads):
    """Without dropout nothing is random: the backward split at the logits (threads) must give
    the updates of one backward through the joint loss (off), up to float rounding."""
    z_par, p_par = _train(_models(tiny_bert_dir, dropout=False), "auto")
    z_off, p_off = _train(_models(tiny_bert_dir, dropout=False), "off")
    assert np.abs(z_par - z_off).max() < 1e-4 * max(1.0, np.abs(z_off).max())
    np.testing.assert_allclose(p_par, p_off, atol=1e-5)


def test_threads_are_deterministic_and_resume_exactly(tiny_bert_dir, two_threads):
    full_z, full_p = _train(_models(tiny_bert_dir), "auto", epochs=3)
    again_z, _ = _train(_models(tiny_bert_dir), "auto", epochs=3)
    assert np.array_equal(full_z, again_z)
    saved = []

    def checkpoint(state):  # as the pipeline writes it
        buf = io.BytesIO()
        torch.save(state, buf)
        saved.append(buf.getvalue())

    def read_back():  # a fresh copy each time: training updates the loaded optimizer state in place
        return {**torch.load(io.BytesIO(saved[0]), weights_only=True), "z": full_z[:, :1]}
    _train(_models(tiny_bert_dir), "auto", epochs=3, on_epoch_end=checkpoint)
    assert len(read_back()["rng"]["dropout"]) == 2        # the models' generators are checkpointed
    models = _models(tiny_bert_dir)
    z_res, p_res = _train(models, "auto", epochs=3, resume=read_back())
    assert np.array_equal(z_res, full_z) and np.array_equal(p_res, full_p)
    # the thread count changed between the runs: the checkpoint still continues in threads
    torch.set_num_threads(1)
    z_one, p_one = _train(_models(tiny_bert_dir), "auto", epochs=3, resume=read_back())
    torch.set_num_threads(2)
    assert np.array_equal(z_one, full_z) and np.array_equal(p_one, full_p)
    # afterwards the models draw from torch's global generator again
    assert all(m.generator is None for m in models[0].modules() if isinstance(m, fast_dropout.FastDropout))


def test_dropout_mask_is_the_keep_mask_scaled_and_follows_its_generator():
    p = 0.3
    _, scale = fast_dropout.drop_threshold(p)
    keep = fast_dropout.keep_mask((50, 40), p, torch.Generator().manual_seed(4))
    mask = fast_dropout.dropout_mask((50, 40), p, torch.Generator().manual_seed(4))
    assert mask.dtype == torch.float32
    assert torch.equal(mask, keep.float() * np.float32(scale))
    # a model with its own generator ignores torch's global one
    layer = fast_dropout.FastDropout(p).train()
    x = torch.ones(1000)
    outs = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        layer.generator = torch.Generator().manual_seed(8)
        outs.append(layer(x))
    assert torch.equal(outs[0], outs[1])


def test_epoch_selection_uses_the_noisy_validation_labels():
    """The selected epoch is the one whose ensemble is most accurate on the NOISY validation
    labels (here deliberately different from the clean ones), ties to the earlier epoch."""
    from src.model.train_stage1 import Selection, Stage1Data
    C, n_tr, n_va = 3, 2, 4
    noisy = np.array([0, 1, 2, 2, 2, 0])                 # validation rows 2..5 carry labels 2, 2, 2, 0
    data = Stage1Data(tokens=None, noisy=noisy, n_train=n_tr, n_val=n_va, pad_id=0)
    sel = Selection(np.zeros((2, 3, 6, C), np.float32))
    preds = [[2, 2, 2, 0], [0, 1, 2, 0], [2, 2, 2, 0]]   # epoch 0 matches the noisy labels fully, so does 2
    for e, pr in enumerate(preds):
        p = np.full((6, C), 0.1, np.float32)
        p[np.arange(n_tr, 6), pr] = 0.8
        acc = sel.record(e, [(np.zeros((6, 4), np.float32), p)] * 2, None, data)
        sel.select(e, acc, [], keep=False)
    assert sel.val_acc == [1.0, 0.5, 1.0] and sel.best_epoch == 0


def test_cpu_bf16_runs_stage1_in_bf16_close_to_fp32(tiny_bert_dir, two_threads):
    """--cpu_bf16: the same stage 1 (threads, co-regularisation, no dropout so nothing random)
    in bf16 autocast gives trajectories and probabilities near fp32's, yet not fp32's (bf16 was
    used), and deterministic; switching it off restores fp32 exactly."""
    from src.runtime import amp
    z32, p32 = _train(_models(tiny_bert_dir, dropout=False), "auto")
    amp.set_cpu_bf16(True)
    try:
        with amp.autocast(torch.device("cpu")):
            assert torch.nn.Linear(4, 4)(torch.ones(2, 4)).dtype == torch.bfloat16
        zb, pb = _train(_models(tiny_bert_dir, dropout=False), "auto")
        zb2, _ = _train(_models(tiny_bert_dir, dropout=False), "auto")
    finally:
        amp.set_cpu_bf16(False)
    assert np.array_equal(zb, zb2)
    rel = np.linalg.norm(zb - z32, axis=-1) / np.linalg.norm(z32, axis=-1)
    assert 0 < rel.max() < 0.1, rel.max()
    assert np.abs(pb - p32).max() < 0.05
    z_again, _ = _train(_models(tiny_bert_dir, dropout=False), "auto")
    assert np.array_equal(z_again, z32)


def test_cpu_bf16_warning_reads_the_cpu_flags(tmp_path):
    from src.runtime import amp
    with_bf16 = "processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 avx512_vnni\n"
    without = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\nbugs\t\t: avx512_bf16_fake\n"
    assert amp.cpu_has_bf16(with_bf16) and amp.cpu_has_bf16("flags : amx_bf16 amx_tile")
    assert not amp.cpu_has_bf16(without)          # only the flags line counts
    (tmp_path / "yes").write_text(with_bf16)
    (tmp_path / "no").write_text(without)
    assert amp.cpu_bf16_warning(str(tmp_path / "yes")) == ""
    assert "lists no bf16 instructions" in amp.cpu_bf16_warning(str(tmp_path / "no"))
    assert amp.cpu_bf16_warning(str(tmp_path / "missing")) == ""
