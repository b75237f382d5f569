"""PNG plots (matplotlib, Agg backend): pure functions of arrays and an output path."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Mapping, Sequence, Tuple

import numpy as np

CLEAN, NOISY = "#1f77b4", "#d62728"


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path, tight: bool = True) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=90)
    _plt().close(fig)
    return path


def score_histograms(scores: np.ndarray, is_noisy: np.ndarray, path, *, title: str = "") -> Path:
    """Histograms of the dynamics score of clean vs corrupted samples."""
    plt = _plt()
    scores, is_noisy = np.asarray(scores, float), np.asarray(is_noisy, bool)
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    bins = np.histogram_bin_edges(scores, bins=30)
    ax.hist(scores[~is_noisy], bins=bins, alpha=0.6, color=CLEAN, label=f"clean label (n={int((~is_noisy).sum())})")
    ax.hist(scores[is_noisy], bins=bins, alpha=0.6, color=NOISY, label=f"corrupted label (n={int(is_noisy.sum())})")
    ax.set_xlabel("dynamics score (mean + std over epochs of the distance to the own-label centroid)",
                  fontsize=7)
    ax.set_ylabel("samples")
    ax.set_title(title or "Dynamics score: clean vs corrupted labels", fontsize=9)
    ax.legend(fontsize=8)
    return _save(fig, path)


def distance_trajectories(own_dist: np.ndarray, is_noisy: np.ndarray, path, *, n_each: int = 5,
                          seed: int = 0, title: str = "") -> Path:
    """own_dist (E, N): per-epoch distance to the own-label centroid; n_each random clean and
    corrupted samples drawn as lines, with each group's median as a thick line."""
    plt = _plt()
    own_dist, is_noisy = np.asarray(own_dist, float), np.asarray(is_noisy, bool)
    E = own_dist.shape[0]
    rng = np.random.default_rng(seed)
    x = np.arange(1, E + 1)
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for mask, color, name in ((~is_noisy, CLEAN, "clean"), (is_noisy, NOISY, "corrupted")):
        idx = np.flatnonzero(mask)
        if not len(idx):
            continue
        for i in rng.choice(idx, min(n_each, len(idx)), replace=False):
            ax.plot(x, own_dist[:, i], color=color, alpha=0.45, lw=1)
        ax.plot(x, np.median(own_dist[:, idx], 1), color=color, lw=3, label=f"{name}: median of {len(idx)}")
    ax.set_xlabel("stage-1 epoch")
    ax.set_xticks(x)
    ax.set_ylabel("distance to own-label centroid")
    ax.set_title(title or f"Trajectories: {n_each} clean and {n_each} corrupted samples", fontsize=9)
    ax.legend(fontsize=8)
    return _save(fig, path)


def reliability_bins(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15):
    """(bin centres, accuracy per bin, mean confidence per bin, count per bin); NaN for empty bins.
    Bins as in expected_calibration_error: (lo, hi]."""
    conf = probs.max(1)
    correct = probs.argmax(1) == labels
    edges = np.linspace(0, 1, n_bins + 1)
    acc, mconf, count = np.full(n_bins, np.nan), np.full(n_bins, np.nan), np.zeros(n_bins, int)
    for b, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        inb = (conf > lo) & (conf <= hi)
        count[b] = inb.sum()
        if inb.any():
            acc[b], mconf[b] = correct[inb].mean(), conf[inb].mean()
    return (edges[:-1] + edges[1:]) / 2, acc, mconf, count


def reliability_diagram(probs: Mapping[str, np.ndarray], labels: np.ndarray, path, *, n_bins: int = 15,
                        title: str = "") -> Path:
    """One panel per named probability set (e.g. before / after DyGen): accuracy per
    confidence bin against the diagonal, with the ECE in the panel title."""
    from src.model.evaluate import expected_calibration_error
    plt = _plt()
    fig, axes = plt.subplots(1, len(probs), figsize=(3.4 * len(probs), 3.5), squeeze=False)
    for ax, (name, p) in zip(axes[0], probs.items()):
        centres, acc, _, count = reliability_bins(p, labels, n_bins)
        ok = count > 0
        ax.bar(centres[ok], acc[ok], width=1.0 / n_bins, edgecolor="k", alpha=0.7, label="accuracy")
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence")
        ax.set_ylabel("accuracy")
        ax.set_title(f"{name}: acc {np.mean(p.argmax(1) == labels):.3f}, "
                     f"ECE {expected_calibration_error(p, labels, n_bins):.3f}", fontsize=8)
        ax.legend(fontsize=7, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def accuracy_vs_noise(series: Mapping[str, Mapping[str, Sequence[Tuple[float, float, float]]]], path, *,
                      title: str = "") -> Path:
    """series[noise_type][method] = [(noise ratio, mean accuracy, std), ...]: one panel per noise
    type, one line with error bars (std over seeds) per method."""
    plt = _plt()
    types = list(series)
    methods = list(dict.fromkeys(m for nt in types for m in series[nt]))   # one colour per method everywhere
    colours = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(methods)}
    markers = "osD^vP*X"
    fig, axes = plt.subplots(1, len(types), figsize=(3.6 * len(types) + 1.6, 3.6), squeeze=False, sharey=True)
    handles = {}
    for ax, nt in zip(axes[0], types):
        for method, pts in series[nt].items():
            pts = sorted(pts)
            dx = 0.35 * (methods.index(method) - (len(methods) - 1) / 2)   # side by side, bars readable
            h = ax.errorbar([100 * p[0] + dx for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts],
                            marker=markers[methods.index(method) % len(markers)], color=colours[method], capsize=3,
                            lw=2.5 if method == "dygen" else 1.2, alpha=0.9, label=method)
            handles[method] = h
        ax.set_title(nt, fontsize=9)
        ax.set_xticks(sorted({100 * p[0] for pts in series[nt].values() for p in pts}))
        ax.set_xlabel("noise ratio (%)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy (mean +- std over seeds)", fontsize=8)
    fig.legend([handles[m] for m in methods], methods, loc="center right", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1 - 1.5 / fig.get_figwidth(), 1))
    return _save(fig, path, tight=False)


def run_plots(run_dir, *, scores: np.ndarray, own_dist: np.ndarray, is_noisy, probs_before: np.ndarray,
              probs_after: np.ndarray, test_labels, seed: int = 0) -> Dict[str, str]:
    """The run folder's plots; those needing clean labels only when they are known."""
    run_dir = Path(run_dir)
    out = {}
    if is_noisy is not None and 0 < np.sum(is_noisy) < len(is_noisy):
        out["score_histograms"] = str(score_histograms(scores, is_noisy, run_dir / "dynamics_score_hist.png"))
        out["trajectories"] = str(distance_trajectories(own_dist, is_noisy, run_dir / "distance_trajectories.png",
                                                        seed=seed))
    if test_labels is not None and len(test_labels):
        out["reliability"] = str(reliability_diagram({"before (stage 1)": probs_before, "after (DyGen)": probs_after},
                                                     test_labels, run_dir / "reliability.png"))
    return out
