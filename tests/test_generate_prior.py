import numpy as np

from src.model.generate_prior import dirichlet_prior, knn_proba


def test_knn_prior_with_class_missing_from_fit_set():
    rng = np.random.default_rng(0)
    emb = np.concatenate([rng.normal(0, 0.1, (10, 2)), rng.normal(5, 0.1, (10, 2)), rng.normal(10, 0.1, (5, 2))])
    y = np.array([0] * 10 + [1] * 10 + [2] * 5)
    fit = y != 2                      # every class-2 sample flagged
    p = knn_proba(emb, y, fit, num_classes=3, k=10)
    assert p.shape == (25, 3)
    assert np.allclose(p.sum(1), 1) and np.all(p[:, 2] == 0)
    assert np.all(p[:10].argmax(1) == 0) and np.all(p[10:20].argmax(1) == 1)


def test_knn_matches_brute_force_distance_weighting():
    rng = np.random.default_rng(3)
    emb, y = rng.standard_normal((40, 3)), rng.integers(0, 3, 40)
    fit = np.arange(40) < 30
    p = knn_proba(emb, y, fit, 3, k=5)
    for i in range(30, 40):  # samples outside the fit set: no zero distances
        d = np.linalg.norm(emb[:30] - emb[i], axis=1)
        nn = np.argsort(d)[:5]
        ref = np.bincount(y[:30][nn], weights=1 / d[nn], minlength=3)
        assert np.allclose(p[i], ref / ref.sum())


def test_dirichlet_prior_modes_by_hand():
    proba = np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]])
    a = dirichlet_prior(proba, "onehot", 5.0, 2)
    assert np.allclose(a, [[1 + 1 / 3, 6 + 1 / 3, 1 + 1 / 3], [6 + 1 / 3, 1 + 1 / 3, 1 + 1 / 3]])
    b = dirichlet_prior(proba, "proba", 5.0, 2)
    assert np.allclose(b, 5 * np.array([[0, 0.6, 0.3], [0.5, 0, 0.3]]) + 1 + 1 / 3)
