import numpy as np

from src.data.splits import stratified_subset, train_val_split


def test_stratified_subset_size_classes_and_shares():
    y = np.repeat(np.arange(5), [400, 300, 200, 80, 20])
    idx = stratified_subset(y, 100, seed=1)
    assert len(idx) == 100 and len(np.unique(idx)) == 100
    counts = np.bincount(y[idx], minlength=5)
    assert np.all(np.abs(counts - np.array([40, 30, 20, 8, 2])) <= 1)


def test_stratified_subset_keeps_rare_classes():
    y = np.array([0] * 500 + [1, 2, 3])
    idx = stratified_subset(y, 20, seed=0)
    assert len(idx) == 20 and set(y[idx]) == {0, 1, 2, 3}


def test_train_val_split_is_a_seeded_80_20_partition():
    tr, va = train_val_split(101, seed=3)
    assert len(tr) == 81 and len(va) == 20
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(101))
    tr2, va2 = train_val_split(101, seed=3)
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)
