"""NPC's pieces: predicted-label targets, confident per-class exemplars from train rows, KNN prior."""
import numpy as np

from src.baselines.npc import confident_exemplars, npc_prior, npc_targets
from src.model.generate_prior import dirichlet_prior


def softmax_rows(pred, conf, C):
    """Rows predicting `pred` with probability `conf`, the rest spread evenly."""
    p = np.tile((1 - conf)[:, None] / (C - 1), (1, C))
    p[np.arange(len(pred)), pred] = conf
    return p


def test_targets_are_the_predicted_labels():
    probs = np.array([[0.2, 0.7, 0.1], [0.5, 0.1, 0.4], [0.0, 0.3, 0.7]])
    np.testing.assert_array_equal(npc_targets(probs), [1, 0, 2])


def test_one_batch_gives_the_most_confident_train_row_per_predicted_class():
    pred = np.array([0, 0, 1, 1, 2, 0, 1])
    conf = np.array([0.6, 0.9, 0.5, 0.8, 0.7, 0.99, 0.95])
    train = np.array([True] * 5 + [False] * 2)          # rows 5, 6 (more confident) are not train
    ex = confident_exemplars(softmax_rows(pred, conf, 3), train, batch_size=100)
    np.testing.assert_array_equal(np.flatnonzero(ex), [1, 3, 4])


def test_exemplars_per_batch_class_and_train_only():
    rng = np.random.default_rng(0)
    N, C, bs = 500, 4, 32
    pred = rng.integers(0, C, N)
    probs = softmax_rows(pred, rng.uniform(0.3, 0.99, N), C)
    train = rng.random(N) < 0.7
    ex = confident_exemplars(probs, train, batch_size=bs, seed=3)
    assert not ex[~train].any()
    n_batches = -(-train.sum() // bs)
    for c in range(C):
        n_c = int((ex & (pred == c)).sum())
        assert 1 <= n_c <= n_batches
        in_c = np.flatnonzero(train & (pred == c))
        assert ex[in_c[np.argmax(probs[in_c, c])]]       # the class's top train row always is one
    assert ex.sum() <= C * n_batches
    probs2 = probs.copy()
    probs2[~train] = softmax_rows(rng.integers(0, C, (~train).sum()), np.full((~train).sum(), 1.0), C)
    np.testing.assert_array_equal(confident_exemplars(probs2, train, batch_size=bs, seed=3), ex)


def test_prior_follows_confident_exemplars_not_the_crowd():
    # Train rows near x=0 mostly PREDICT class 1 with low confidence; one confident class-0 row
    # sits there, and a confident class-1 row sits at x=10. The KNN sees only the exemplars.
    emb = np.array([[0.0], [0.1], [0.2], [-0.1], [10.0], [0.05], [9.9]])
    pred = np.array([0, 1, 1, 1, 1, 1, 0])
    conf = np.array([0.95, 0.4, 0.4, 0.4, 0.9, 0.99, 0.99])
    train = np.array([True] * 5 + [False] * 2)          # rows 5, 6: validation/test
    prior = npc_prior(emb, softmax_rows(pred, conf, 2), train, num_classes=2, batch_size=100)
    assert prior.shape == (7, 2)
    np.testing.assert_array_equal(prior.argmax(1), [0, 0, 0, 0, 1, 0, 1])
    np.testing.assert_allclose(prior[[0, 4]], [[1, 0], [0, 1]])   # an exemplar predicts itself
    alpha = dirichlet_prior(prior, "onehot", 5.0, 1)
    np.testing.assert_allclose(alpha[0], [5 + 1.5, 1.5])


def test_prior_ignores_non_train_rows_and_keeps_absent_classes_at_zero():
    rng = np.random.default_rng(1)
    N, C = 60, 4
    emb = rng.normal(size=(N, 3))
    pred = rng.integers(0, 3, N)                       # class 3 never predicted
    probs = softmax_rows(pred, rng.uniform(0.4, 0.9, N), C)
    train = np.arange(N) < 40
    a = npc_prior(emb, probs, train, num_classes=C, k=5, batch_size=8, seed=2)
    probs2 = probs.copy()
    probs2[~train] = softmax_rows(np.full(20, 3), np.full(20, 0.99), C)
    b = npc_prior(emb, probs2, train, num_classes=C, k=5, batch_size=8, seed=2)
    np.testing.assert_array_equal(a, b)
    assert np.all(a[:, 3] == 0.0)
    np.testing.assert_allclose(a.sum(1), 1.0)
