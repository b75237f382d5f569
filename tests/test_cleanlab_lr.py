"""cleanlab_lr: cross-validated LR -> cleanlab drops label issues -> LR refit, C on validation."""
import numpy as np

from src.baselines.cleanlab_lr import cleanlab_lr

CENTERS = np.array([[4, 0, 0, 0], [0, 4, 0, 0], [0, 0, 4, 0]], dtype=float)


def blobs(n_per_class, rng, spread=0.5):
    y = np.repeat(np.arange(len(CENTERS)), n_per_class)
    return CENTERS[y] + spread * rng.normal(size=(len(y), CENTERS.shape[1])), y


def planted(seed=0, n_flip=30):
    rng = np.random.default_rng(seed)
    x_tr, clean = blobs(100, rng)
    flipped = rng.choice(len(clean), n_flip, replace=False)
    noisy = clean.copy()
    noisy[flipped] = (clean[flipped] + rng.integers(1, 3, n_flip)) % 3
    x_va, y_va = blobs(15, rng)
    x_te, y_te = blobs(30, rng)
    return x_tr, clean, noisy, flipped, x_va, y_va, x_te, y_te


def test_planted_flips_are_removed_and_accuracy_recovered():
    x_tr, clean, noisy, flipped, x_va, y_va, x_te, y_te = planted()
    res = cleanlab_lr(x_tr, noisy, x_va, y_va, x_te, num_classes=3)
    is_flip = np.zeros(len(noisy), bool)
    is_flip[flipped] = True
    assert res.n_removed == int(res.issues.sum())
    recall = (res.issues & is_flip).sum() / is_flip.sum()
    precision = (res.issues & is_flip).sum() / res.issues.sum()
    assert recall >= 0.9 and precision >= 0.9, (recall, precision)
    kept = ~res.issues
    assert (noisy[kept] == clean[kept]).mean() >= 0.99 > (noisy == clean).mean()
    assert (res.probs.argmax(1) == y_te).mean() == 1.0
    assert res.C in res.val_acc and res.cv_C in res.val_acc


def test_clean_labels_lose_almost_nothing():
    x_tr, clean, _, _, x_va, y_va, x_te, _ = planted(seed=1)
    res = cleanlab_lr(x_tr, clean, x_va, y_va, x_te, num_classes=3, cv_C=1.0)
    assert res.n_removed <= 3


def test_validation_features_never_enter_the_fit():
    x_tr, _, noisy, _, x_va, y_va, x_te, _ = planted(seed=2)
    a = cleanlab_lr(x_tr, noisy, x_va, y_va, x_te, num_classes=3, Cs=(0.1,), cv_C=0.1)
    b = cleanlab_lr(x_tr, noisy, x_va + 50.0, y_va, x_te, num_classes=3, Cs=(0.1,), cv_C=0.1)
    np.testing.assert_array_equal(a.issues, b.issues)
    np.testing.assert_array_equal(a.probs, b.probs)
    assert a.val_acc != b.val_acc                       # the validation rows were indeed scored


def test_class_absent_from_train_keeps_its_column_at_zero():
    x_tr, _, noisy, _, x_va, y_va, x_te, _ = planted(seed=3)
    res = cleanlab_lr(x_tr, noisy, x_va, y_va, x_te, num_classes=5, Cs=(1.0,), cv_C=1.0)
    assert res.probs.shape == (len(x_te), 5)
    assert np.all(res.probs[:, 3:] == 0.0)


def test_cleaning_recovers_accuracy_lost_to_pair_flips():
    """40% of each class's labels pair-flipped (c -> c+1) in train AND validation: the plain LR
    is pulled off the class centres; cleaning first recovers most of the test accuracy."""
    from src.baselines.traj_lr import fit_lr_select_c
    rng = np.random.default_rng(0)
    centres = np.array([[3, 0], [0, 3], [-3, 0]], dtype=float)

    def split(n):
        y = np.repeat(np.arange(3), n)
        return centres[y] + rng.normal(size=(len(y), 2)), y

    def pair_flip(y):
        out = y.copy()
        for c in range(3):
            idx = np.flatnonzero(y == c)
            out[rng.choice(idx, int(0.4 * len(idx)), replace=False)] = (c + 1) % 3
        return out

    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = split(100), split(20), split(200)
    noisy_tr, noisy_va = pair_flip(y_tr), pair_flip(y_va)
    plain = fit_lr_select_c(x_tr, noisy_tr, x_va, noisy_va, x_te, num_classes=3)
    res = cleanlab_lr(x_tr, noisy_tr, x_va, noisy_va, x_te, num_classes=3)
    acc_plain = (plain.probs.argmax(1) == y_te).mean()
    acc_clean = (res.probs.argmax(1) == y_te).mean()
    assert acc_clean >= 0.85 and acc_clean >= acc_plain + 0.1, (acc_plain, acc_clean)
    flipped = noisy_tr != y_tr
    assert (res.issues & flipped).sum() >= 0.6 * flipped.sum()
