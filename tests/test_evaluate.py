import numpy as np
import torch

from src.model import evaluate as ev
from src.model.network import DirichletCVAE, true_label_posterior


def random_p_q(seed: int, M: int, N: int, C: int):
    """Random p(y~|x) (M, N, C) and q(y|y~, x) (M, N, C, C), every row a distribution."""
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(C), size=(M, N)), rng.dirichlet(np.ones(C), size=(M, N, C))


def test_posterior_sums_to_one_and_identity_q_gives_base():
    M, N, C = 3, 20, 5
    p, q = random_p_q(0, M, N, C)
    post = ev.posterior(p, q)
    assert np.allclose(post.sum(1), 1)
    eye = np.broadcast_to(np.eye(C), (M, N, C, C))
    assert np.allclose(ev.posterior(p, eye), p.mean(0))


def test_posterior_matches_loop():
    M, N, C = 2, 4, 3
    p, q = random_p_q(1, M, N, C)
    post = ev.posterior(p, q)
    for n in range(N):
        ref = sum(p[m, n, j] * q[m, n, j] for m in range(M) for j in range(C)) / M
        assert np.allclose(post[n], ref)


def test_q_all_candidates_equals_one_at_a_time():
    torch.manual_seed(0)
    vae = DirichletCVAE(6, 3)
    w = np.random.default_rng(0).standard_normal((7, 6)).astype(np.float32)
    q = ev.q_all_candidates(vae, w, 3, batch_size=4)
    for j in range(3):
        y = torch.nn.functional.one_hot(torch.full((7,), j), 3).float()
        ref = true_label_posterior(vae.alpha(torch.as_tensor(w), y)).detach().numpy()
        assert np.allclose(q[:, j], ref, atol=1e-6)


def test_corrected_distribution_picks_observed_row():
    q = np.zeros((2, 2, 3, 3))
    q[0, 0, 1] = [0, 0, 1]; q[1, 0, 1] = [0, 1, 0]
    q[0, 1, 2] = [1, 0, 0]; q[1, 1, 2] = [1, 0, 0]
    out = ev.corrected_distribution(q, np.array([1, 2]))
    assert np.allclose(out, [[0, 0.5, 0.5], [1, 0, 0]])
    # each model its own observed label (NPC: each model's predicted label)
    q[1, 0, 0] = [1, 0, 0]
    out = ev.corrected_distribution(q, np.array([[1, 2], [0, 2]]))
    assert np.allclose(out, [[0.5, 0, 0.5], [1, 0, 0]])


def test_ece_by_hand_and_metrics():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.3, 0.7]])
    labels = np.array([0, 1, 1, 1])
    # bins: 0.9 (correct), 0.8 (wrong), 0.6 (correct), 0.7 (correct)
    expect = 0.25 * (abs(1 - 0.9) + abs(0 - 0.8) + abs(1 - 0.6) + abs(1 - 0.7))
    assert abs(ev.expected_calibration_error(probs, labels) - expect) < 1e-12
    m = ev.classification_metrics(probs, labels)
    assert m["accuracy"] == 0.75


def test_detection_metrics_by_hand():
    flags = np.array([1, 1, 0, 0, 1], bool)
    truth = np.array([1, 0, 1, 0, 1], bool)
    scores = np.array([0.9, 0.8, 0.1, 0.05, 0.7])
    d = ev.detection_metrics(flags, scores, truth)
    assert np.isclose(d["precision"], 2 / 3) and np.isclose(d["recall"], 2 / 3)
    assert np.isclose(d["auroc"], 4 / 6)


def test_per_class_recall_hand_computed():
    labels = np.array([0, 0, 0, 1, 1, 2])
    pred = np.array([0, 1, 1, 1, 1, 0])          # class 0: 1 of 3, class 1: 2 of 2, class 2: 0 of 1
    probs = np.eye(4)[pred]
    r = ev.per_class_recall(probs, labels, 4)
    assert np.allclose(r[:3], [1 / 3, 1.0, 0.0]) and np.isnan(r[3])   # class 3 has no test sample

