import numpy as np

from src.dynamics.euclidean_dist import (centroid_distances, class_centroids, dynamics_score, flag_top,
                                         own_label_distances, threshold_flags)


def test_distances_equal_brute_force_loop():
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((50, 7))
    y = rng.integers(0, 4, 50)
    cent = class_centroids(emb, y, 4)
    d = centroid_distances(emb, cent)
    for i in range(50):
        for c in range(4):
            members = emb[y == c]
            ref = np.sqrt(((emb[i] - members.mean(0)) ** 2).sum())
            assert abs(d[i, c] - ref) < 1e-9


def test_absent_class_is_infinitely_far():
    emb = np.eye(3)
    d = centroid_distances(emb, class_centroids(emb, np.array([0, 0, 2]), 3))
    assert np.isinf(d[:, 1]).all() and np.isfinite(d[:, [0, 2]]).all()


def test_own_label_distance_and_score_by_hand():
    # two epochs, two samples of class 0 at +-1 and one sample of class 1 at 5.
    z = np.array([[[1.0], [-1.0], [5.0]],
                  [[3.0], [-3.0], [5.0]]])  # (E=2, N=3, D=1)
    own = own_label_distances(z, np.array([0, 0, 1]), 2)
    assert np.allclose(own, [[1, 1, 0], [3, 3, 0]])
    assert np.allclose(dynamics_score(own), [2 + 1, 2 + 1, 0])  # mean 2, population std 1


def test_flagged_set_is_top_k_of_score():
    rng = np.random.default_rng(1)
    s = rng.random(100)
    for k in (0, 1, 17, 100):
        mask = flag_top(s, k)
        assert mask.sum() == k
        if 0 < k < 100:
            assert s[mask].min() >= s[~mask].max()


def test_centroids_from_the_fit_rows_only():
    # rows 0, 1 (class 0 at +-1) are fitted; row 2 (class 0 at 10) is only measured
    z = np.array([[[1.0], [-1.0], [10.0]]])
    own = own_label_distances(z, np.array([0, 0, 0]), 1, fit=np.array([0, 1]))
    assert np.allclose(own, [[1, 1, 10]])                 # the centroid is 0, not 10/3


def test_threshold_chosen_on_fit_rows_applies_to_the_rest():
    s = np.array([0.9, 0.1, 0.5, 0.3, 0.6, 0.4, 0.2])
    fit = np.array([0, 1, 2, 3])                          # top 2 of the fit rows: 0.9 and 0.5
    assert threshold_flags(s, fit, 2).tolist() == [True, False, True, False, True, False, False]
    assert not threshold_flags(s, fit, 0).any()


def test_a_label_without_fitted_samples_ranks_with_the_most_suspect():
    z = np.array([[[0.0], [2.0], [7.0]], [[0.0], [4.0], [7.0]]])   # row 2's class 1 has no fit row
    s = dynamics_score(own_label_distances(z, np.array([0, 0, 1]), 2, fit=np.array([0, 1])))
    assert np.allclose(s, [1.5 + 0.5, 1.5 + 0.5, 2.0])             # centroid 1 then 2: row 2 gets the max
