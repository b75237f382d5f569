"""Length-bucketed training batches: a permutation per epoch, deterministic, less padding."""
from __future__ import annotations

import numpy as np
import torch

from src.data.batching import bucketed_batches, padding_waste, random_batches, shard


def _lengths(n=1000, seed=0):
    return np.random.default_rng(seed).integers(3, 150, n)


def test_every_index_exactly_once_per_epoch():
    lengths = _lengths(1003)
    gen = torch.Generator().manual_seed(1)
    for _ in range(3):  # several epochs from one generator
        batches = bucketed_batches(lengths, 16, gen, chunk_batches=10)
        flat = np.concatenate(batches)
        assert np.array_equal(np.sort(flat), np.arange(1003))
        assert len(batches) == int(np.ceil(1003 / 16))
        assert sum(len(b) < 16 for b in batches) <= 1


def test_deterministic_for_a_seed_and_epochs_differ():
    lengths = _lengths()
    a = bucketed_batches(lengths, 32, torch.Generator().manual_seed(5))
    b = bucketed_batches(lengths, 32, torch.Generator().manual_seed(5))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    gen = torch.Generator().manual_seed(5)
    e1, e2 = bucketed_batches(lengths, 32, gen), bucketed_batches(lengths, 32, gen)
    assert not all(np.array_equal(x, y) for x, y in zip(e1, e2))
    c = bucketed_batches(lengths, 32, torch.Generator().manual_seed(6))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_generator_state_resumes_the_same_batches():
    lengths = _lengths()
    gen = torch.Generator().manual_seed(3)
    bucketed_batches(lengths, 32, gen)
    state = gen.get_state()
    after = bucketed_batches(lengths, 32, gen)
    gen2 = torch.Generator()
    gen2.set_state(state)
    again = bucketed_batches(lengths, 32, gen2)
    assert all(np.array_equal(x, y) for x, y in zip(after, again))


def test_less_padding_than_random_batches_and_still_shuffled():
    lengths = _lengths(2000)
    gen = torch.Generator().manual_seed(0)
    bucketed = bucketed_batches(lengths, 32, gen, chunk_batches=50)
    rand = random_batches(len(lengths), 32, torch.Generator().manual_seed(0))
    assert padding_waste(lengths, bucketed) < 0.05 < 0.3 < padding_waste(lengths, rand)
    # batch order is shuffled: batch lengths are not sorted over the epoch
    maxlen = [lengths[b].max() for b in bucketed]
    assert not (np.all(np.diff(maxlen) >= 0) or np.all(np.diff(maxlen) <= 0))


def test_zero_chunk_is_plain_random_batching():
    lengths = _lengths(100)
    a = bucketed_batches(lengths, 8, torch.Generator().manual_seed(2), chunk_batches=0)
    b = random_batches(100, 8, torch.Generator().manual_seed(2))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_shards_cover_the_batch_in_order():
    idx = np.arange(10, 27)
    parts = [shard(idx, r, 3) for r in range(3)]
    assert np.array_equal(np.concatenate(parts), idx)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
