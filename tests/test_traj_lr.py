"""traj_lr: logistic regression on noisy train rows, C chosen on noisy validation rows."""
import numpy as np
import pytest

from src.baselines.traj_lr import fit_lr_select_c, flatten_trajectory, traj_lr


def blobs(n_per_class, centers, rng, spread=0.3):
    centers = np.asarray(centers, dtype=float)
    y = np.repeat(np.arange(len(centers)), n_per_class)
    x = centers[y] + spread * rng.normal(size=(len(y), centers.shape[1]))
    return x, y


CENTERS = [[4, 0, 0], [0, 4, 0], [0, 0, 4]]


def imbalanced_1d():
    """Train: 90 rows of class 0 around -1, 10 of class 1 around +1. A tiny C leaves the weight
    ~0 and the (unpenalised) intercept predicts class 0 everywhere; C = 1 follows the feature."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-1, 0.3, 90), rng.normal(1, 0.3, 10)])[:, None]
    y = np.array([0] * 90 + [1] * 10)
    x_val = np.full((8, 1), 1.5)
    return x, y, x_val


def test_flatten_trajectory_is_epoch_major_per_sample():
    z = np.arange(2 * 3 * 2, dtype=np.float16).reshape(2, 3, 2)    # (E, N, D)
    flat = flatten_trajectory(z)
    assert flat.shape == (3, 4) and flat.dtype == np.float32
    for n in range(3):
        assert flat[n].tolist() == z[0, n].tolist() + z[1, n].tolist()


def test_separable_problem_is_fit_exactly():
    rng = np.random.default_rng(1)
    x_tr, y_tr = blobs(40, CENTERS, rng)
    x_va, y_va = blobs(10, CENTERS, rng)
    x_te, y_te = blobs(20, CENTERS, rng)
    res = fit_lr_select_c(x_tr, y_tr, x_va, y_va, x_te, num_classes=3)
    assert res.probs.shape == (60, 3)
    np.testing.assert_allclose(res.probs.sum(1), 1.0, atol=1e-9)
    assert (res.probs.argmax(1) == y_te).mean() == 1.0
    assert set(res.val_acc) == {1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0} and res.C in res.val_acc


@pytest.mark.parametrize("val_label, chosen, accs", [(1, 1.0, (0.0, 1.0)), (0, 1e-4, (1.0, 0.0))])
def test_c_is_chosen_by_noisy_validation_accuracy(val_label, chosen, accs):
    x, y, x_val = imbalanced_1d()
    y_val = np.full(len(x_val), val_label)
    res = fit_lr_select_c(x, y, x_val, y_val, x_val, num_classes=2, Cs=(1.0, 1e-4))
    assert res.C == chosen
    assert (res.val_acc[1e-4], res.val_acc[1.0]) == accs


def test_ties_go_to_the_stronger_regularisation():
    rng = np.random.default_rng(2)
    x_tr, y_tr = blobs(30, CENTERS, rng)
    x_va, y_va = blobs(5, CENTERS, rng)
    res = fit_lr_select_c(x_tr, y_tr, x_va, y_va, x_va, num_classes=3, Cs=(1.0, 0.1))
    assert res.val_acc == {0.1: 1.0, 1.0: 1.0} and res.C == 0.1


def test_validation_features_only_move_the_choice_of_c():
    x, y, x_val = imbalanced_1d()
    x_te = np.linspace(-2, 2, 9)[:, None]
    y_val = np.ones(len(x_val), int)
    a = fit_lr_select_c(x, y, x_val, y_val, x_te, num_classes=2, Cs=(1.0, 1e-4))
    b = fit_lr_select_c(x, y, -x_val, y_val, x_te, num_classes=2, Cs=(1.0, 1e-4))
    assert (a.C, b.C) == (1.0, 1e-4)                  # moved validation rows: another C ...
    for C, res in ((1.0, a), (1e-4, b)):               # ... but each C's model is the same fit
        alone = fit_lr_select_c(x, y, x_val[:0], y_val[:0], x_te, num_classes=2, Cs=(C,))
        np.testing.assert_array_equal(res.probs, alone.probs)


def test_rows_to_predict_do_not_touch_the_fit():
    rng = np.random.default_rng(3)
    x_tr, y_tr = blobs(30, CENTERS, rng)
    x_va, y_va = blobs(5, CENTERS, rng)
    x_te, _ = blobs(5, CENTERS, rng)
    a = fit_lr_select_c(x_tr, y_tr, x_va, y_va, x_te, num_classes=3)
    x_te2 = x_te.copy()
    x_te2[0] = 100.0
    b = fit_lr_select_c(x_tr, y_tr, x_va, y_va, x_te2, num_classes=3)
    np.testing.assert_array_equal(a.probs[1:], b.probs[1:])
    assert a.C == b.C and a.val_acc == b.val_acc


def test_traj_lr_reads_train_and_validation_labels_only():
    rng = np.random.default_rng(4)
    x, y = blobs(30, CENTERS, rng)                      # 90 rows: [train 60 | val 15 | test 15]
    perm = rng.permutation(len(y))
    x, y = x[perm], y[perm]
    z = np.stack([x + 0.1 * rng.normal(size=x.shape), x]).astype(np.float16)   # (E=2, N, D=3)
    tr, va, te = np.arange(60), np.arange(60, 75), np.arange(75, 90)
    a = traj_lr(z, y, tr, va, te, num_classes=3)
    y_other = y.copy()
    y_other[te] = (y[te] + 1) % 3                       # test labels changed
    b = traj_lr(z, y_other, tr, va, te, num_classes=3)
    np.testing.assert_array_equal(a.probs, b.probs)
    assert a.C == b.C and a.val_acc == b.val_acc
    assert (a.probs.argmax(1) == y[te]).mean() == 1.0


def test_class_absent_from_train_gets_zero_in_its_own_column():
    rng = np.random.default_rng(5)
    centers = CENTERS + [[4, 4, 4]]
    x_tr, y_tr = blobs(20, centers, rng)
    keep = y_tr != 2                                    # class 2 never seen in train
    x_te, y_te = blobs(5, centers, rng)
    res = fit_lr_select_c(x_tr[keep], y_tr[keep], x_te, y_te, x_te, num_classes=4, Cs=(1.0,))
    assert np.all(res.probs[:, 2] == 0.0)
    seen = y_te != 2
    assert (res.probs.argmax(1)[seen] == y_te[seen]).all()   # class 3 lands in column 3


def test_one_class_in_train_is_the_constant_classifier():
    x = np.random.default_rng(6).normal(size=(10, 2))
    res = fit_lr_select_c(x, np.full(10, 2), x[:3], np.array([2, 2, 0]), x[:4], num_classes=3, Cs=(1.0,))
    np.testing.assert_array_equal(res.probs, np.tile([0.0, 0.0, 1.0], (4, 1)))
    assert res.val_acc[1.0] == pytest.approx(2 / 3)


def test_choosing_c_without_validation_rows_is_refused():
    x = np.random.default_rng(7).normal(size=(10, 2))
    with pytest.raises(ValueError):
        fit_lr_select_c(x, np.arange(10) % 2, x[:0], np.zeros(0, int), x, num_classes=2, Cs=(0.1, 1.0))


def test_grid_edge_names_a_choice_at_either_end_of_the_grid():
    from src.baselines.traj_lr import grid_edge
    grid = (1e-2, 1e-6, 1.0)                        # any order
    assert [grid_edge(c, grid) for c in (1e-6, 1e-2, 1.0)] == ["low", "", "high"]
    assert grid_edge(0.1, (0.1,)) == ""             # one value: nothing was chosen, no edge


def test_fits_stopped_at_max_iter_are_recorded_not_printed():
    import warnings
    rng = np.random.default_rng(2)
    x_tr, y_tr = blobs(40, CENTERS, rng)
    x_va, y_va = blobs(10, CENTERS, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # a ConvergenceWarning escaping would fail here
        short = fit_lr_select_c(x_tr, y_tr, x_va, y_va, x_va, num_classes=3, Cs=(1e-2, 1.0), max_iter=1)
        full = fit_lr_select_c(x_tr, y_tr, x_va, y_va, x_va, num_classes=3, Cs=(1e-2, 1.0), max_iter=1000)
    assert short.unconverged == (1e-2, 1.0)       # one lbfgs iteration converges at neither C
    assert full.unconverged == ()
