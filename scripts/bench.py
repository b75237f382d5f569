"""Benchmark (not a test): throughput and model FLOP utilisation of the DyGen pipeline.

    python scripts/bench.py                      # 20news + trec workloads on this machine
    python scripts/bench.py --device cuda        # the same on a GPU (bf16 autocast)

For each workload it runs the real pipeline (pipeline.run, fresh caches in a temporary
folder) and prints:
- the matrix-multiply peak of this machine, measured in the same run (fp32 torch.mm of
  2048 x 2048 on CPU, bf16 8192 x 8192 on CUDA; best of 12) at the start and after every workload;
  MFU is against the highest of these (the conservative reading), and in brackets against
  their median (a shared machine's peak drifts by tens of percent from minute to minute);
- stage-1 training and embedding passes: sequences/s, real (non-pad) tokens/s, padding
  waste (padded tokens the model computed on that were not real tokens) and model FLOP
  utilisation = useful model FLOPs / time / peak. Model FLOPs per sequence of length L:
  forward 2 * (non-embedding parameters) * L + 4 * layers * hidden * L^2 (attention
  scores and values); training = 3 x forward; each of the M models counts;
- the wall time of every pipeline step and the post-stage-1 share of stage-1 time;
- peak memory (resident set; CUDA allocator peak on a GPU);
- the post-stage-1 steps on synthetic trajectories at two sizes (--scaling N1 N2; a bare
  --scaling skips them).
With --step_only it only times isolated training steps (torch's, bulk, bulk + threads, no
dropout), interleaved round by round.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")  # progress bars would interleave with the figures

import numpy as np  # noqa: E402
import torch  # noqa: E402


_THREADS0 = torch.get_num_threads()


def from_src(name: str, *modules: str):
    """`name` from the first of `modules` that has it, None if none has: bench.py also runs in
    older checkouts (before/after comparisons), where the runtime helpers lived elsewhere or not at all."""
    import importlib
    for mod in modules:
        try:
            return getattr(importlib.import_module(mod), name)
        except (ImportError, AttributeError):
            continue
    return None


def matmul_peak(device: torch.device, n: int = 0, reps: int = 10) -> float:
    """Best FLOP/s of an n x n matrix product (fp32 on CPU, bf16 on CUDA), with the thread
    count stage 1 trains with (pipeline.run leaves one thread set after stage 1). n: 2048 on
    CPU, 8192 on CUDA (a 2048^3 product lasts ~20 us there, too short to time a GPU's peak)."""
    n = n or (8192 if device.type == "cuda" else 2048)
    configure_threads = from_src("configure_threads", "src.runtime.threads", "src.model.loading")
    if configure_threads is not None:
        configure_threads()
    else:  # an older checkout: torch's default
        torch.set_num_threads(_THREADS0)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    inner = 20 if device.type == "cuda" else 1
    best = float("inf")
    for _ in range(reps + 2):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(inner):
            torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - t0) / inner)
    return 2 * n ** 3 / best


def model_flops(model_cfg: dict) -> tuple:
    """(2 * non-embedding parameters, 4 * layers * hidden): forward FLOPs of a sequence of length
    L are a * L + b * L^2 (dense layers, then attention scores and values)."""
    H, L = model_cfg["hidden_size"], model_cfg["num_hidden_layers"]
    inter = model_cfg.get("intermediate_size", 4 * H)
    per_layer = 4 * H * H + 4 * H + 2 * H * inter + inter + H + 4 * H   # QKVO, FFN, 2 LayerNorms
    return 2 * L * per_layer, 4 * L * H


def pass_figures(perf: dict, part: str, a: float, b: float, n_model: int, peak: float) -> dict:
    s = perf[f"{part}_s"]
    mult = 3 * n_model if part == "train" else 1     # embed counters already cover every model
    seqs = perf[f"{part}_seqs"] * (n_model if part == "train" else 1)
    tok = perf[f"{part}_tokens"] * (n_model if part == "train" else 1)
    flops = mult * (a * perf[f"{part}_tokens"] + b * perf[f"{part}_len_sq"])
    return {"seconds": round(s, 2), "seq_per_s": round(seqs / s, 1) if s else None,
            "tokens_per_s": round(tok / s, 1) if s else None,
            "padding_waste": round(1 - perf[f"{part}_tokens"] / max(1, perf[f"{part}_padded"]), 4),
            "gflops": round(flops / s / 1e9, 1) if s else None,
            "mfu": round(flops / s / peak, 3) if s else None}


def malloc_in_use() -> str:
    active = from_src("active", "src.runtime.allocator", "src.allocator")
    return active() if active is not None else "system"  # an older checkout had no jemalloc


def load_avg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def run_workload(name: str, args_list: list, peak: float, device: torch.device) -> dict:
    from src import pipeline
    from src.config import config_from_args
    from src.model.loading import resolve_model_dir
    cfg = config_from_args(args_list)
    mcfg = json.loads((Path(resolve_model_dir(cfg.bert)) / "config.json").read_text())
    a, b = model_flops(mcfg)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    load0 = load_avg()
    metrics = pipeline.run(cfg)
    perf = metrics.get("stage1_perf", {})
    t = metrics["timings_s"]
    post = sum(t.get(k, 0) for k in ("dynamics", "prior", "stage2", "methods", "evaluate", "outputs"))
    out = {"workload": name, "load_before": load0, "load_after": load_avg(),
           "train": pass_figures(perf, "train", a, b, cfg.n_model, peak),
           "embed": pass_figures(perf, "embed", a, b, cfg.n_model, peak),
           "timings_s": t, "post_stage1_s": round(post, 3),
           "post_stage1_share": round(post / t["stage1"], 4) if t.get("stage1") else None,
           "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 2)}
    if device.type == "cuda":
        out["cuda_peak_gib"] = round(torch.cuda.max_memory_allocated() / 2 ** 30, 2)
    return out


def trec_padding(batch: int, eval_batch: int, chunk_batches: int = 50, seed: int = 1) -> dict:
    """Padding waste of one epoch's batches over all 5,452 TREC questions (tokenised, max length
    64), computed from the lengths alone: random training batches (before), length-bucketed
    ones (now), and the length-sorted embedding batches."""
    from src.data.batching import bucketed_batches, padding_waste, random_batches
    from src.data.datasets import load_dataset
    from src.data.tokenize import tokenize
    from src.model.loading import load_tokenizer, resolve_model_dir
    raw = load_dataset("trec", ROOT / "datasets")
    texts = list(raw.train_texts) + list(raw.test_texts)
    lengths = tokenize(texts, load_tokenizer(resolve_model_dir("embedded")), 64).lengths()
    n_train = int(0.8 * len(raw.train_texts))
    order = np.argsort(lengths, kind="stable")
    embed = [order[s:s + eval_batch] for s in range(0, len(order), eval_batch)]
    return {"n": len(lengths), "mean_length": float(lengths.mean()),
            "train_random": padding_waste(lengths[:n_train], random_batches(
                n_train, batch, torch.Generator().manual_seed(seed))),
            "train_bucketed": padding_waste(lengths[:n_train], bucketed_batches(
                lengths[:n_train], batch, torch.Generator().manual_seed(seed), chunk_batches)),
            "embed_sorted": padding_waste(lengths, embed)}


def post_stage1_scaling(n_trval: int, n_test: int, E: int = 4, D: int = 384, C: int = 20, M: int = 2,
                        T: int = 10, seed: int = 0) -> dict:
    """The post-stage-1 steps of DyGen (src.variants, as pipeline.run calls them) on synthetic
    trajectories of a given size: dynamics, then prior + stage 2 + posterior."""
    from src.config import make_config
    from src.variants import VARIANTS, Stage2Inputs, dynamics, run_variant
    rng = np.random.default_rng(seed)
    torch.set_num_threads(1)  # as pipeline.run does after stage 1
    n_all = n_trval + n_test
    centres = rng.normal(size=(C, D)).astype(np.float32)
    noisy = rng.integers(0, C, n_trval)
    lab_all = np.concatenate([noisy, rng.integers(0, C, n_test)])
    z = (centres[lab_all][None, None] + rng.normal(size=(M, E, n_all, D))).astype(np.float16)
    probs = rng.dirichlet(np.ones(C), size=(M, E, n_all)).astype(np.float32)
    cfg = make_config(vae_epochs=T, epochs=E, seed=seed)
    st = Stage2Inputs(cfg, z, probs, E - 1, noisy, np.arange(int(0.8 * n_trval)), np.arange(n_trval, n_all), C)
    t = {}
    t0 = time.perf_counter()
    dyn = dynamics(st)
    t["dynamics"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    run_variant(st, VARIANTS["dygen"], dyn)
    t["prior_stage2_evaluate"] = time.perf_counter() - t0
    t = {k: round(v, 3) for k, v in t.items()}
    t["total"] = round(sum(t.values()), 3)
    return {"n_trval": n_trval, "n_test": n_test, "E": E, "D": D, "C": C, "M": M, "T": T, "timings_s": t}


class IsolatedStep:
    """One stage-1 training step of `n_model` models (random token ids, no padding,
    cross-entropy only), dropout as `mode`: torch (torch's masks), bulk (src.model.fast_dropout),
    threads (bulk masks, the models at the same time in their own threads, as stage 1 trains
    them by default on CPU) or off (p = 0 everywhere, models one after the other: the floor
    dropout cannot go below). `run()` returns the seconds of forward, backward, optimizer."""

    def __init__(self, mode: str, bert: str, batch: int, length: int, n_model: int, device: torch.device):
        from src.model import fast_dropout
        from src.model.loading import load_classifier, resolve_model_dir
        from src.model.train_stage1 import make_adamw
        from src.runtime.threads import ModelThreads
        self.mode, self.n_model = mode, n_model
        self.models = [load_classifier(resolve_model_dir(bert), 20, seed=m).to(device) for m in range(n_model)]
        self.threads = ModelThreads(n_model, torch.get_num_threads()) if mode == "threads" else None
        for i, m in enumerate(self.models):
            if mode in ("bulk", "threads"):
                fast_dropout.install(m)
            if mode == "threads":
                fast_dropout.set_generator(m, torch.Generator().manual_seed(i))
            elif mode == "off":
                for mod in m.modules():
                    if isinstance(mod, torch.nn.Dropout):
                        mod.p = 0.0
                m.config.attention_probs_dropout_prob = 0.0
            m.train()
        self.opt = make_adamw([p for m in self.models for p in m.parameters()], lr=1e-4, weight_decay=0.0)
        g = torch.Generator().manual_seed(0)
        self.ids = torch.randint(1000, 30000, (batch, length), generator=g).to(device)
        self.y = torch.randint(0, 20, (batch,), generator=g).to(device)
        self.no_scaler = torch.amp.GradScaler("cuda", enabled=False)
        a, b = model_flops(self.models[0].config.to_dict())
        self.flops = 3 * n_model * batch * (a * length + b * length ** 2)

    def run(self) -> tuple:
        """stage 1's own forward and backward (`forward_models`, `backward_models`), CE loss only."""
        import torch.nn.functional as F
        from src.runtime.models import backward_models, forward_models
        t0 = time.perf_counter()
        logits, model_logits = forward_models(self.models, self.ids, None, self.ids.device, self.threads)
        loss = sum(F.cross_entropy(l, self.y) for l in logits) / self.n_model
        t1 = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        backward_models(loss, logits, model_logits, self.models, self.threads, self.no_scaler, self.opt, 0.0)
        t2 = time.perf_counter()
        self.opt.step()
        return t1 - t0, t2 - t1, time.perf_counter() - t2


def isolated_steps(modes, bert: str, batch: int, length: int, n_model: int, device: torch.device,
                   rounds: int = 10, warmup: int = 2, peaks: Optional[list] = None) -> list:
    """Median step of every mode of `IsolatedStep`, the modes interleaved step by step (one step of
    each per round), so that the machine's drift hits them alike. peaks: gets a matmul peak after
    every round."""
    setups = [IsolatedStep(m, bert, batch, length, n_model, device) for m in modes]
    times = {s.mode: [] for s in setups}
    for r in range(warmup + rounds):
        for s in setups:
            t = s.run()
            if r >= warmup:
                times[s.mode].append(t)
        if peaks is not None and r >= warmup:
            peaks.append(matmul_peak(device, reps=4))
    rows = []
    for s in setups:
        ts = np.array(times[s.mode])                      # (rounds, 3)
        med = ts[np.argsort(ts.sum(1))[len(ts) // 2]]     # the round with the median step
        step = float(med.sum())
        rows.append({"mode": s.mode, "forward": round(float(med[0]), 3), "backward": round(float(med[1]), 3),
                     "optimizer": round(float(med[2]), 3), "step": round(step, 3),
                     "best_step": round(float(ts.sum(1).min()), 3), "gflops": round(s.flops / step / 1e9, 1)})
        if s.threads:
            s.threads.close()
    return rows


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--bert", default="embedded")
    p.add_argument("--train_docs", type=int, default=400, help="20news training documents (80%% train, 20%% val)")
    p.add_argument("--test_docs", type=int, default=40)
    p.add_argument("--max_len", type=int, default=64)
    # 400 documents x 2 epochs: 20 optimizer steps, so the one-off cost of the first (the optimizer's
    # state allocated, caches cold: ~1.7x a later step) weighs ~5% as in real runs (quick: 80 steps),
    # not ~20% as with the 5 steps of the earlier default (200 documents, 1 epoch)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--n_model", type=int, default=2)
    p.add_argument("--batch", type=int, default=32, help="stage-1 training batch")
    p.add_argument("--eval_batch", type=int, default=None, help="embedding-pass batch (default: the config's)")
    p.add_argument("--trec_docs", type=int, default=400, help="trec training questions (0: skip trec)")
    p.add_argument("--scaling", nargs="*", type=int, default=[4000, 8000],
                   help="train+val sizes of the post-stage-1 scaling check (none: skip)")
    p.add_argument("--workloads", default="20news,trec")
    p.add_argument("--extrapolate", default=None, metavar="TRAIN,EMBED,EPOCHS",
                   help="also print the stage-1 time of a run with TRAIN training samples, EMBED samples "
                        "embedded per epoch and EPOCHS epochs (same M, lengths and batches), from the 20news "
                        "workload's throughput; full 20news: 9034,18821,10")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    p.add_argument("--main_args", default="", help="extra main.py flags for every workload, e.g. "
                   "'--cpu_dropout torch' to compare with torch's dropout masks")
    p.add_argument("--step_only", action="store_true",
                   help="only time isolated training steps (batch --batch x --max_len, --n_model models) "
                        "with torch's dropout masks, bulk masks, bulk masks with the models in threads, and "
                        "no dropout, against the matmul peak")
    return p


def step_only(args, device: torch.device, peaks: list) -> None:
    """Prints the isolated training steps of every dropout mode against the matmul peak."""
    rows = isolated_steps(("torch", "bulk", "threads", "off"), args.bert, args.batch, args.max_len,
                          args.n_model, device, peaks=peaks)
    peak, median_peak = max(peaks), float(np.median(peaks))
    print("matrix-multiply peaks (GFLOP/s), at the start and after every round: "
          + ", ".join(f"{x / 1e9:.0f}" for x in peaks) + f"; MFU against the highest, {peak / 1e9:.0f} "
          f"(in brackets: against their median, {median_peak / 1e9:.0f})")
    print("median step of 10 rounds (the modes interleaved, one step of each per round):")
    for r in rows:
        print(f"dropout {r['mode']:7s}  forward {r['forward']:.3f} s  backward {r['backward']:.3f} s  "
              f"optimizer {r['optimizer']:.3f} s  step {r['step']:.3f} s (best {r['best_step']:.3f})  "
              f"{r['gflops']} GFLOP/s  MFU {r['gflops'] * 1e9 / peak:.1%} "
              f"({r['gflops'] * 1e9 / median_peak:.1%})")


def run_workloads(args, device: torch.device, peaks: list) -> list:
    """Every workload of --workloads through pipeline.run (fresh caches in a temporary folder);
    the matmul peak measured again after each."""
    tmp = Path(tempfile.mkdtemp(prefix="dygen-bench-"))
    common = ["--bert", args.bert, "--device", args.device, "--epochs", str(args.epochs),
              "--n_model", str(args.n_model), "--train_batch_size", str(args.batch), "--vae_epochs", "10",
              "--prior_epoch", "1"]
    from src.config import Config
    common += args.main_args.split()
    if "no_plots" in Config.__dataclass_fields__:  # plots: a fixed ~1 s, not a step of the method
        common.append("--no_plots")
    if args.eval_batch:
        common += ["--eval_batch_size", str(args.eval_batch)]
    wl = {"20news": ["--dataset", "20news", "--max_train_samples", str(args.train_docs),
                     "--max_test_samples", str(args.test_docs), "--max_len", str(args.max_len)],
          "trec": ["--dataset", "trec", "--max_train_samples", str(args.trec_docs),
                   "--max_test_samples", str(args.test_docs), "--max_len", "64"]}
    results = []
    for name in args.workloads.split(","):
        if name == "trec" and not args.trec_docs:
            continue
        out = tmp / name
        results.append(run_workload(name, wl[name] + common + ["--output_dir", str(out / "cache"),
                                                               "--path", str(out / "ds")], peaks[0], device))
        peaks.append(matmul_peak(device))
    return results


def print_workload(r: dict, peak: float, median_peak: float) -> None:
    """One workload's figures, MFU re-expressed against the highest and the median peak."""
    for part in ("train", "embed"):
        f = r[part]
        if f["gflops"] is not None:
            f["mfu"] = round(f["gflops"] * 1e9 / peak, 3)
            f["mfu_median_peak"] = round(f["gflops"] * 1e9 / median_peak, 3)
    t = r["timings_s"]
    print(f"\n== {r['workload']} (load average before {r['load_before']}, after {r['load_after']})")
    for part, label in (("train", "stage-1 training"), ("embed", "embedding passes")):
        f = r[part]
        print(f"{label:18s} {f['seconds']:7.1f} s  {f['seq_per_s']} seq/s  {f['tokens_per_s']} tok/s  "
              f"{f['gflops']} GFLOP/s  MFU {f['mfu']:.1%} ({f['mfu_median_peak']:.1%})  "
              f"padding waste {f['padding_waste']:.1%}")
    print("steps (s)          " + "  ".join(f"{k} {v:.2f}" for k, v in t.items()))
    print(f"post-stage-1       {r['post_stage1_s']:.2f} s = {r['post_stage1_share']:.1%} of stage 1")
    print(f"peak memory        RSS {r['peak_rss_gib']} GiB"
          + (f", CUDA {r['cuda_peak_gib']} GiB" if "cuda_peak_gib" in r else ""))


def extrapolate(spec: str, r: dict, n_model: int) -> float:
    """Stage-1 seconds of a run with spec = "TRAIN,EMBED,EPOCHS", from workload r's throughput."""
    n_tr, n_emb, ep = (int(x) for x in spec.split(","))
    t_train = n_model * n_tr / r["train"]["seq_per_s"]
    t_embed = n_model * n_emb / r["embed"]["seq_per_s"]
    total = ep * (t_train + t_embed)
    print(f"\nextrapolated stage 1 ({r['workload']} throughput; {n_tr} training samples, {n_emb} embedded "
          f"per epoch, {ep} epochs, M={n_model}): {ep} x ({t_train:.0f} s training + {t_embed:.0f} s "
          f"embedding) = {total:.0f} s = {total / 60:.1f} min")
    return total


def print_extras(args, report: dict) -> None:
    """TREC padding waste and the post-stage-1 scaling check, also put into `report`."""
    try:
        pad = trec_padding(args.batch, args.eval_batch or 128)
        report["trec_padding"] = pad
        print(f"\n== padding waste over all {pad['n']} TREC questions (mean length {pad['mean_length']:.1f} "
              f"tokens), one epoch: training batches of {args.batch} random {pad['train_random']:.1%}, "
              f"length-bucketed {pad['train_bucketed']:.1%}; length-sorted embedding batches of "
              f"{args.eval_batch or 128} {pad['embed_sorted']:.1%}")
    except Exception as e:  # noqa: BLE001 - a benchmark: report and go on
        print(f"trec padding figures skipped: {e}")
    if args.scaling:
        print("\n== post-stage-1 steps on synthetic trajectories (E=4, D=384, C=20, M=2, T=10)")
        for n in args.scaling:
            s = post_stage1_scaling(n, n // 2)
            report["scaling"].append(s)
            print(f"N_trval {n:7d} (+{n // 2} test): " + "  ".join(f"{k} {v:.2f}" for k, v in s["timings_s"].items()))


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    device = from_src("pick_device", "src.runtime.device", "src.model.loading")(args.device)
    peaks = [matmul_peak(device)]  # measured again after every workload: the machine's speed drifts
    if args.step_only:
        step_only(args, device, peaks)
        return 0
    print(f"device {device}; torch threads {torch.get_num_threads()}; malloc {malloc_in_use()}; "
          f"load average {load_avg()}")
    print(f"matrix-multiply peak ({'8192^2 bf16' if device.type == 'cuda' else '2048^2 fp32'} torch.mm, best of 12): "
          f"{peaks[0] / 1e9:.1f} GFLOP/s")
    report = {"device": str(device), "threads": torch.get_num_threads(), "workloads": [], "scaling": []}
    results = run_workloads(args, device, peaks)
    peak, median_peak = max(peaks), float(np.median(peaks))
    print("matrix-multiply peak at the start and after each workload: "
          + ", ".join(f"{x / 1e9:.1f}" for x in peaks) + f" GFLOP/s; MFU below is against the highest, "
          f"{peak / 1e9:.1f} (in brackets: against their median, {median_peak / 1e9:.1f}; the peak of a "
          f"shared machine drifts, so the highest is the conservative reading)")
    report["peak_gflops"] = [x / 1e9 for x in peaks]
    for r in results:
        print_workload(r, peak, median_peak)
    if args.extrapolate and results:
        report["extrapolated_stage1_s"] = extrapolate(args.extrapolate, results[0], args.n_model)
    report["workloads"] = results
    print_extras(args, report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    reexec = from_src("reexec_with_jemalloc", "src.runtime.allocator", "src.allocator")
    if reexec is not None:  # as main.py does (DYGEN_ALLOCATOR=system: the system's malloc)
        reexec()
    sys.exit(main())
