"""NPC's own pieces: Noisy Prediction Calibration (Bae, Shin, Na, Jang, Song & Moon, "From Noisy
Prediction to True Label: Noisy Prediction Calibration via Generative Model", ICML 2022,
PMLR 162:1277-1297, arXiv:2205.00690; the authors' code: github.com/BaeHeeSun/NPC).

NPC post-processes ONE classifier trained on noisy labels. Read from the authors' code
(generate_prior.py, train_npc.py, evaluate.py, library/util/utils.py):
- what the VAE reconstructs: the classifier's PREDICTED label y^ = argmax p(y^|x) on each
  training sample (`save_data` stores argmax of the logits; train_npc.py one-hot encodes it
  as both the encoder's label input and the BCE reconstruction target). The given noisy
  label is not used by NPC after the classifier is trained.
- the KNN prior: exemplars are the classifier's most confident samples per class, taken
  mini-batch by mini-batch over a shuffled pass of the training set: in each batch, for
  every class c predicted in it, the one sample with y^ = c whose softmax p(c|x) is largest.
  A distance-weighted KNN (k = 10) is fit on the exemplars' penultimate-layer features
  (the CNNs' 256/128-d layer, ResNet-50's 2048-d pooled output) with labels y^ and predicts
  every training sample; knn_mode 'onehot' keeps its argmax, 'proba' its probabilities
  (top `selected_class`).
- the Dirichlet prior: alpha_p = rho * onehot(KNN class) + 1 + 1/C (rho = prior_norm = 5 in
  the README), exactly `src.model.generate_prior.dirichlet_prior`.
- the loss: BCE-with-logits(decoder output, onehot(y^)), summed, + beta * multi-Gamma
  KL(alpha || alpha_p) (beta = 1), Adam lr 1e-3, 10 epochs: `train_stage2` with M = 1,
  lambda_t = 0 and the predicted labels as its reconstruction target.
- inference: p(y|x) = sum_y^ p(y^|x) (alpha(x, y^) - 1) / sum(alpha(x, y^) - 1), the
  classifier's softmax as p(y^|x): `src.model.evaluate.posterior` with M = 1.
Where this port differs: (1) NPC's encoder/decoder see x through a trainable copy of the
classifier (its weights loaded, the CNNs' last layer excepted, and fine-tuned with the VAE;
its C- or 1000-wide output is concatenated with the label); here x is the frozen
selected-epoch [CLS] embedding fed to linear layers, as in DyGen's stage 2. (2) The authors
fit the prior and the VAE on train + validation (their `train_test` loader); here, by the
project's rule, on the train split only.
"""
from __future__ import annotations

import numpy as np

from src.model.generate_prior import knn_proba

NPC_K = 10            # the authors' KNN size
NPC_BATCH_SIZE = 128  # the authors' batch for MNIST/CIFAR-10 (32 for Clothing1M/Food-101N)


def npc_targets(probs: np.ndarray) -> np.ndarray:
    """(N, C) classifier softmax -> (N,) predicted labels y^, what NPC's VAE reconstructs."""
    return np.asarray(probs).argmax(1)


def confident_exemplars(probs: np.ndarray, train_mask: np.ndarray, *, batch_size: int = NPC_BATCH_SIZE,
                        seed: int = 0) -> np.ndarray:
    """(N,) bool: NPC's KNN exemplars, drawn from the rows in train_mask only.

    The train rows are shuffled (seeded) and cut into batches; in each batch, for every
    predicted class, the row predicting it with the highest probability is an exemplar."""
    probs = np.asarray(probs)
    pred = probs.argmax(1)
    rows = np.flatnonzero(train_mask)
    rows = rows[np.random.default_rng(seed).permutation(len(rows))]
    out = np.zeros(len(probs), dtype=bool)
    for s in range(0, len(rows), batch_size):
        batch = rows[s:s + batch_size]
        for c in np.unique(pred[batch]):
            members = batch[pred[batch] == c]
            out[members[np.argmax(probs[members, c])]] = True
    return out


def npc_prior(emb: np.ndarray, probs: np.ndarray, train_mask: np.ndarray, *, num_classes: int,
              k: int = NPC_K, batch_size: int = NPC_BATCH_SIZE, seed: int = 0) -> np.ndarray:
    """(N, num_classes) NPC's KNN prior probabilities for every row of emb.

    emb (N, D): the classifier's embedding (here the selected epoch's [CLS]); probs (N, C): its
    softmax. The KNN is fit on the confident exemplars of the train rows, labelled with their
    predicted class; feed the result to `dirichlet_prior(..., mode="onehot", prior_norm=5, ...)`."""
    ex = confident_exemplars(probs, train_mask, batch_size=batch_size, seed=seed)
    return knn_proba(emb, npc_targets(probs), ex, num_classes, k)
