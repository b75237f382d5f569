"""The evaluate step: the one place where the methods' outputs meet the oracle labels (gold
test labels score the test predictions; clean train/validation labels, where known, score
noise detection and label correction). Nothing computed here flows back into a method.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np

from src.data.prepare import MethodData, Oracle
from src.methods import LabelCleaning, MethodOutput
from src.model import evaluate as ev
from src.variants import DynamicsResult


@dataclass
class Evaluation:
    metrics: dict
    clean_names: List[str]         # (N_trval,) clean label name per row, "" where unknown
    is_noisy: Optional[np.ndarray]  # (N_known,) over the rows with a known clean label
    known: np.ndarray              # (N_trval,) bool: clean label known
    test_labels: np.ndarray        # (N_test,) gold labels (-1 unknown), for the run folder
    has_test_gold: bool


def label_correction(labels: np.ndarray, noisy: np.ndarray, clean: np.ndarray) -> dict:
    """Agreement with the clean labels of the given labels and of a method's labels."""
    return {"n_with_clean_label": int(len(clean)), "given_label_acc": float((noisy == clean).mean()),
            "label_acc": float((labels == clean).mean())}


def method_metrics(out: MethodOutput, oracle: Oracle, noisy: np.ndarray, known: np.ndarray, n_train: int) -> dict:
    m = {**out.info, "seconds": out.seconds}
    if oracle.has_test_gold:
        m["test"] = ev.classification_metrics(out.test_probs, oracle.test_gold)
        if out.test_probs_last is not None:
            m["test_last_epoch"] = ev.classification_metrics(out.test_probs_last, oracle.test_gold)
        if out.test_probs_per_epoch:
            m["test_acc_per_epoch"] = [float((p.argmax(1) == oracle.test_gold).mean())
                                       for p in out.test_probs_per_epoch]
    if out.corrected is not None and known.any():
        labels, clean = out.corrected.argmax(1), oracle.clean_trval
        m["label_correction"] = label_correction(labels[known], noisy[known], clean[known])
        for part, rows in (("train_rows", np.arange(n_train)), ("validation_rows", np.arange(n_train, len(noisy)))):
            k = rows[known[rows]]   # train rows were fitted on; validation rows are inferred only
            if len(k):
                m["label_correction"][part] = label_correction(labels[k], noisy[k], clean[k])
    return m


def detection(dyn: DynamicsResult, noisy: np.ndarray, clean: np.ndarray, n_train: int) -> dict:
    """The dynamics score (mean over models) and the flags against the true corruption mask, on
    the training rows (where the flag count was chosen) and on the validation rows (flagged by
    the same score threshold); per model on the training rows."""
    score = dyn.scores.mean(0)
    out = {}
    for part, rows in (("train_rows", np.arange(n_train)), ("validation_rows", np.arange(n_train, len(noisy)))):
        k = rows[clean[rows] >= 0]
        if len(k):
            out[part] = ev.detection_metrics(dyn.mean_flags[k], score[k], noisy[k] != clean[k])
    k = np.flatnonzero(clean[:n_train] >= 0)
    if len(k):
        out["per_model_train_rows"] = [ev.detection_metrics(f[k], s[k], noisy[k] != clean[k])
                                       for f, s in zip(dyn.flags, dyn.scores)]
    return out


def label_cleaning(c: LabelCleaning, noisy: np.ndarray, clean: np.ndarray, n_train: int) -> dict:
    """How many labels each cleaner changed and, where clean labels are known, how often its
    labels, and the given ones, agree with them (all rows, and train / validation rows apart)."""
    out = {"valve_closed": bool(c.valve_closed), "n_changed_dygen": int(c.changed.sum()),
           "n_changed_cleanlab": int((c.cleanlab != noisy).sum())}
    for part, rows in (("all_rows", np.arange(len(noisy))), ("train_rows", np.arange(n_train)),
                       ("validation_rows", np.arange(n_train, len(noisy)))):
        k = rows[clean[rows] >= 0]
        if len(k):
            out[part] = {"n": int(len(k)), "given_label_acc": float((noisy[k] == clean[k]).mean()),
                         "dygen_label_acc": float((c.dygen[k] == clean[k]).mean()),
                         "cleanlab_label_acc": float((c.cleanlab[k] == clean[k]).mean())}
    return out


def methods_metrics(data: MethodData, oracle: Oracle, outs: Dict[str, MethodOutput]) -> dict:
    """The split sizes, the realised noise and each method's scores: all a run that trains no
    ensemble (`pipeline.run_single_only`) can report."""
    known = oracle.clean_trval >= 0
    return {"n_train": data.n_train, "n_validation": data.n_val, "n_test": int(len(data.test_idx)),
            "num_classes": data.num_classes,
            "realised_noise_rate": {"train": oracle.realised_noise_rate(data.noisy, data.train_idx),
                                    "validation": oracle.realised_noise_rate(data.noisy, data.val_idx)},
            "methods": {name: method_metrics(o, oracle, data.noisy, known, data.n_train) for name, o in outs.items()}}


def evaluate(data: MethodData, oracle: Oracle, outs: Dict[str, MethodOutput], dyn: DynamicsResult,
             cleaning: LabelCleaning, estimate=None, cleanlab_detection: Optional[dict] = None) -> Evaluation:
    clean = oracle.clean_trval
    known = clean >= 0
    is_noisy = (data.noisy[known] != clean[known]) if known.any() else None
    metrics = methods_metrics(data, oracle, outs)
    metrics["flag_rate"] = {"rate": dyn.n_flag / max(1, data.n_train), "how": dyn.how, "n_flagged_train": dyn.n_flag}
    metrics["label_cleaning"] = label_cleaning(cleaning, data.noisy, clean, data.n_train)
    if estimate is not None:
        metrics["noise_rate_estimate"] = estimate.to_dict()
        true_val = metrics["realised_noise_rate"]["validation"]
        if true_val == true_val:   # known (not NaN): how far the estimate is from the validation split's rate
            metrics["noise_rate_estimate"]["abs_error_vs_validation"] = abs(estimate.rate - true_val)
    if known.any():
        metrics["noise_detection"] = detection(dyn, data.noisy, clean, data.n_train)
    if cleanlab_detection is not None and known[:data.n_train].any():
        from src.baselines.cleanlab_detect import compare_detection
        tr_known = known[:data.n_train]
        metrics["detection_comparison"] = compare_detection(
            dyn.scores.mean(0)[:data.n_train][tr_known], cleanlab_detection["noise_score"][tr_known],
            cleanlab_detection["issues"][tr_known], is_noisy=(data.noisy[:data.n_train] != clean[:data.n_train])[tr_known])
    names = [data.class_names[c] if c >= 0 else "" for c in clean]
    return Evaluation(metrics, names, is_noisy, known, oracle.test_gold, oracle.has_test_gold)
