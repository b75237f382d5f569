"""Prior: distance-weighted KNN on early embeddings of unflagged samples -> Dirichlet alphas."""
from __future__ import annotations

import numpy as np
from sklearn.neighbors import KNeighborsClassifier


def knn_proba(emb: np.ndarray, labels: np.ndarray, fit_mask: np.ndarray, num_classes: int,
              k: int = 10) -> np.ndarray:
    """(N, C) class probabilities for every sample from a KNN fit on emb[fit_mask].

    Classes absent from the fit set get probability 0 (the authors' code crashed there).
    With no sample to fit on, the noisy labels themselves are returned one-hot.
    """
    emb = np.asarray(emb, dtype=np.float32)
    out = np.zeros((len(emb), num_classes))
    if fit_mask.sum() == 0:
        out[np.arange(len(emb)), labels] = 1.0
        return out
    knn = KNeighborsClassifier(n_neighbors=min(k, int(fit_mask.sum())), weights="distance")
    knn.fit(emb[fit_mask], labels[fit_mask])
    out[:, knn.classes_] = knn.predict_proba(emb)
    return out


def dirichlet_prior(proba: np.ndarray, mode: str, prior_norm: float, selected_class: int) -> np.ndarray:
    """(N, C) alpha_p = prior_norm * target + 1 + 1/C."""
    n, C = proba.shape
    target = np.zeros_like(proba)
    if mode == "onehot":
        target[np.arange(n), proba.argmax(1)] = 1.0
    elif mode == "proba":
        top = np.argsort(-proba, axis=1, kind="stable")[:, :min(selected_class, C)]
        rows = np.arange(n)[:, None]
        target[rows, top] = proba[rows, top]
    else:
        raise ValueError(mode)
    return prior_norm * target + 1.0 + 1.0 / C
