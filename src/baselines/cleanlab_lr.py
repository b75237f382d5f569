"""`cleanlab_lr`: confident learning (Northcutt et al., JAIR 2021) as a retrain-after-cleaning
peer that fits a CPU budget.

"cleanlab_retrain" would fine-tune the transformer again on the cleaned labels (a second
stage 1 per cell). Here the retrained classifier is a logistic regression on the stage-1
embeddings instead:
1. out-of-sample probabilities on the TRAIN rows by K-fold cross-validated LR on their noisy
   labels (`cv_pred_probs`, shared with the detection yardstick);
2. `cleanlab.filter.find_label_issues` marks label issues among the train rows; they are dropped;
3. LR refit on the kept train rows, C chosen on the noisy VALIDATION rows (`fit_lr_select_c`).
The C of step 1 is chosen the same way (best noisy-validation accuracy of an LR on all train
rows) unless given. Validation rows are never fitted on; test rows are only predicted.

cleanlab's `CleanLearning` bundles 1-3 but has no validation split to pick C: it would
re-run its cross-validation for every C, or take the same pred_probs and call
find_label_issues itself, so the steps are composed here directly.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from src.baselines.cleanlab_detect import cv_pred_probs
from src.baselines.traj_lr import DEFAULT_CS, DEFAULT_MAX_ITER, fit_lr_select_c


@dataclass(frozen=True)
class CleanlabLRResult:
    probs: np.ndarray              # (N_pred, num_classes)
    C: float                       # the refit's C, chosen on the noisy validation rows
    val_acc: Dict[float, float]    # the refit's noisy-validation accuracy per C
    cv_C: float                    # the C of the cross-validated probabilities
    issues: np.ndarray             # (N_train,) bool: train rows cleanlab removed
    n_removed: int
    unconverged: Tuple[float, ...] = ()   # the refit's Cs whose lbfgs fit stopped at max_iter


def cleanlab_lr(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                x_pred: np.ndarray, *, num_classes: int, Cs: Sequence[float] = DEFAULT_CS,
                cv_C: Optional[float] = None, n_folds: int = 5, seed: int = 0,
                filter_by: str = "prune_by_noise_rate", max_iter: int = DEFAULT_MAX_ITER) -> CleanlabLRResult:
    """Drop cleanlab's label issues from the train rows, refit LR, predict x_pred.

    x_* (N_*, F): features (the selected epoch's embedding is the natural choice: the
    representation the single fine-tuned model classifies from); y_* the NOISY labels."""
    from cleanlab.filter import find_label_issues
    x_train, y_train = np.asarray(x_train), np.asarray(y_train)
    if cv_C is None:
        cv_C = fit_lr_select_c(x_train, y_train, x_val, y_val, x_val[:0], num_classes=num_classes,
                               Cs=Cs, max_iter=max_iter).C
    pred_probs = cv_pred_probs(x_train, y_train, num_classes, n_folds=n_folds, seed=seed, C=cv_C)
    with warnings.catch_warnings():  # "may not flag all label issues in class c: too few examples"
        warnings.simplefilter("ignore", UserWarning)
        issues = np.asarray(find_label_issues(y_train, pred_probs, filter_by=filter_by, n_jobs=1), dtype=bool)
    keep = ~issues
    fit = fit_lr_select_c(x_train[keep], y_train[keep], x_val, y_val, x_pred, num_classes=num_classes,
                          Cs=Cs, max_iter=max_iter)
    return CleanlabLRResult(fit.probs, fit.C, fit.val_acc, float(cv_C), issues, int(issues.sum()),
                            fit.unconverged)
