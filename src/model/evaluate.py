"""Evaluation: posterior over true labels, label correction, and the one metrics function."""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import torch
from sklearn.metrics import f1_score, precision_recall_fscore_support, roc_auc_score


@torch.inference_mode()
def q_all_candidates(vae, w: np.ndarray, num_classes: int, batch_size: int = 4096) -> np.ndarray:
    """(N, C~, C) q(y | y~, w) for every candidate noisy label y~, batched over all C at once."""
    from src.model.network import true_label_posterior
    vae.eval()
    C = num_classes
    eye = torch.eye(C)
    out = np.zeros((len(w), C, C), np.float32)
    for s in range(0, len(w), batch_size):
        wb = torch.as_tensor(w[s:s + batch_size], dtype=torch.float32)
        B = len(wb)
        if hasattr(vae, "alpha_all_candidates"):  # the encoder once per sample, not C times
            out[s:s + B] = true_label_posterior(vae.alpha_all_candidates(wb)).numpy()
            continue
        wr = wb.unsqueeze(1).expand(B, C, wb.shape[1]).reshape(B * C, -1)
        yr = eye.repeat(B, 1)
        out[s:s + B] = true_label_posterior(vae.alpha(wr, yr)).reshape(B, C, C).numpy()
    return out


def posterior(p_noisy: np.ndarray, q: np.ndarray) -> np.ndarray:
    """p(y|x) = mean_m sum_y~ p_m(y~|x) q_m(y|y~,x).  p_noisy (M,N,C), q (M,N,C~,C) -> (N,C)."""
    return np.einsum("mnj,mnjk->nk", p_noisy, q) / p_noisy.shape[0]


def corrected_distribution(q: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """q(y | observed y~, w) averaged over models: (M,N,C~,C) with observed (N,) (one label
    for every model) or (M,N) (each model's own) -> (N,C)."""
    M, N = q.shape[:2]
    obs = np.broadcast_to(observed, (M, N))
    return q[np.arange(M)[:, None], np.arange(N)[None, :], obs, :].mean(0)


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    conf = probs.max(1)
    correct = probs.argmax(1) == labels
    edges = np.linspace(0, 1, n_bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        inb = (conf > lo) & (conf <= hi)
        if inb.any():
            ece += inb.mean() * abs(correct[inb].mean() - conf[inb].mean())
    return float(ece)


def per_class_recall(probs: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Recall of each class (fraction of its test samples predicted as it); NaN for a class
    with no test sample. Macro-F1 moves with the rare classes, this says which."""
    pred = probs.argmax(1)
    out = np.full(num_classes, np.nan)
    for c in range(num_classes):
        if (labels == c).any():
            out[c] = float((pred[labels == c] == c).mean())
    return out


def classification_metrics(probs: np.ndarray, labels: np.ndarray) -> Dict[str, float]:
    pred = probs.argmax(1)
    return {"accuracy": float((pred == labels).mean()),
            "macro_f1": float(f1_score(labels, pred, average="macro", zero_division=0)),
            "ece": expected_calibration_error(probs, labels)}


def detection_metrics(flags: np.ndarray, scores: np.ndarray, is_noisy: np.ndarray) -> Dict[str, Optional[float]]:
    """Precision/recall/F1 of the flags and AUROC of the scores against the true corruption mask."""
    prec, rec, f1, _ = precision_recall_fscore_support(np.asarray(is_noisy, bool), np.asarray(flags, bool),
                                                       average="binary", zero_division=0)
    prec, rec, f1 = float(prec), float(rec), float(f1)
    auroc = float(roc_auc_score(is_noisy, scores)) if 0 < is_noisy.sum() < len(is_noisy) else None
    return {"precision": prec, "recall": rec, "f1": f1, "auroc": auroc}
