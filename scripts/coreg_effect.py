#!/usr/bin/env python3
"""Diagnostic (not a test): how much stage 2's co-regularisation does in one setting.

    python3 scripts/coreg_effect.py --output_dir cache -- --preset trec --dataset trec \\
        --noise_type SN --noise_ratio 0.4 --seed 1          # flags after -- go to main.py

On the setting's stage 1 (cached in --output_dir, else trained), fits DyGen's stage 2 with
lambda_t as configured and with lambda_t = 0, from the same seed, and prints per epoch the
co-regularisation term (the mean over fitted samples of the models' KL(a_bar || a_m)) of each
run, and at the end how often the two runs' test predictions and corrected training labels
differ. Reads no clean label.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--output_dir", default="cache")
    argv = list(sys.argv[1:] if argv is None else argv)
    rest = argv[argv.index("--") + 1:] if "--" in argv else []
    args = p.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    import numpy as np
    import torch
    from src import pipeline, variants
    from src.config import build_parser, make_config
    from src.methods import fit_rows
    from src.model.network import coreg_kl
    cfg = make_config(**{**vars(build_parser().parse_args(rest)), "output_dir": args.output_dir})
    rt = pipeline.setup(cfg)
    cfg, data, _ = pipeline.step_data(cfg, rt)
    s1, _ = pipeline.step_stage1(cfg, data, rt, pipeline.train_stage1_perf())
    torch.set_num_threads(rt.threads)
    st = variants.Stage2Inputs(cfg, s1.z, s1.probs, s1.best_epoch, data.noisy, fit_rows(data.n_train),
                               data.test_idx, data.num_classes)
    dyn = variants.dynamics(st)
    v = variants.VARIANTS["dygen"]
    w_fit = [torch.as_tensor(variants.features(st, v, m)[st.fit]) for m in range(s1.z.shape[0])]
    y_fit = torch.nn.functional.one_hot(torch.as_tensor(data.noisy[st.fit]), data.num_classes).float()
    runs = {}
    for lam in (cfg.lambda_t, 0.0):
        terms = []

        def record(epoch, vaes):
            with torch.no_grad():
                alphas = [vae.alpha(w, y_fit) for vae, w in zip(vaes, w_fit)]   # no draw: RNG untouched
                terms.append(coreg_kl(alphas).item() / len(st.fit))
        c = dataclasses.replace(cfg, lambda_t=lam)
        orig = variants.train_stage2

        def traced(*a, **k):   # run_variant's own per-epoch hook, then ours
            return orig(*a, **{**k, "on_epoch_end": lambda e, vaes, f=k["on_epoch_end"]: (f(e, vaes), record(e, vaes))})
        variants.train_stage2 = traced
        try:
            out = variants.run_variant(dataclasses.replace(st, cfg=c), v, dyn)
        finally:
            variants.train_stage2 = orig
        runs[lam] = (out, terms)
        print(f"lambda_t {lam:g}: co-regularisation term per sample after each epoch: "
              + " ".join(f"{t:.2e}" for t in terms), flush=True)
    (a, _), (b, _) = runs[cfg.lambda_t], runs[0.0]
    test_diff = float((a.test_probs.argmax(1) != b.test_probs.argmax(1)).mean())
    lab_diff = float((a.corrected.argmax(1) != b.corrected.argmax(1)).mean())
    print(f"test predictions that differ between lambda_t {cfg.lambda_t:g} and 0: {test_diff:.4f} "
          f"(max |p| difference {np.abs(a.test_probs - b.test_probs).max():.4f}); "
          f"corrected train+validation labels that differ: {lab_diff:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
