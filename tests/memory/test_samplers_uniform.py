from __future__ import annotations

import numpy as np
import pytest
import torch

from hippogym import Episode, MemoryStore
from hippogym.errors import DimensionMismatchError, EmptyMemoryError, ValidationError
from hippogym.memory.samplers import UniformSampler


def filled(capacity=50, lengths=(10, 15, 20, 12), eviction="fifo"):
    store = MemoryStore(embed_dim=8, capacity=capacity, eviction=eviction, seed=0)
    gen = torch.Generator().manual_seed(0)
    for T in lengths:
        ep = Episode(states=torch.randn(T + 1, 2, generator=gen), actions=torch.zeros(T, 1), rewards=torch.zeros(T))
        store.add(ep, torch.nn.functional.normalize(torch.randn(T, 8, generator=gen), dim=1))
    return store


def test_same_rows_as_the_store_with_the_same_generator():
    store = filled()
    assert store.num_transitions < store.high_water  # the rejection path
    sampler = UniformSampler(store, generator=torch.Generator().manual_seed(4))
    rows, probs = sampler.sample_np(100)
    np.testing.assert_array_equal(rows, store.sample_rows_np(100, torch.Generator().manual_seed(4)))
    np.testing.assert_array_equal(probs, np.full(100, 1.0 / store.num_transitions))


def test_seeded_samplers_repeat_and_differ_by_seed():
    store = filled(capacity=100)
    a, b, c = (UniformSampler(store, seed=s) for s in (1, 1, 2))
    ra, rb, rc = (x.sample_np(200)[0] for x in (a, b, c))
    np.testing.assert_array_equal(ra, rb)
    assert not np.array_equal(ra, rc)


def test_draws_are_uniform_over_live_rows():
    store = filled(capacity=50)
    live = np.flatnonzero(store.row_slot.numpy() >= 0)
    rows, _ = UniformSampler(store, seed=0).sample_np(40_000)
    counts = np.bincount(rows, minlength=store.capacity)
    assert (counts[np.setdiff1d(np.arange(store.capacity), live)] == 0).all()
    expected = rows.size / live.size
    assert np.abs(counts[live] - expected).max() < 5 * np.sqrt(expected)


def test_empty_store_raises_and_has_zero_probabilities():
    store = MemoryStore(embed_dim=8, capacity=10)
    sampler = UniformSampler(store, seed=0)
    with pytest.raises(EmptyMemoryError):
        sampler.sample_np(4)
    assert (sampler.probability_np(np.arange(3)) == 0).all()


def test_priority_feedback_is_checked_and_changes_nothing():
    store = filled()
    sampler = UniformSampler(store, seed=0)
    before = sampler.state_dict()["generator"].clone()
    sampler.update(torch.tensor([1, 2]), torch.tensor([5.0, 0.0]))
    torch.testing.assert_close(sampler.state_dict()["generator"], before)
    with pytest.raises(DimensionMismatchError):
        sampler.update_priorities(np.array([1, 2]), np.array([1.0]))
    with pytest.raises(ValidationError):
        sampler.update_priorities(np.array([1]), np.array([-1.0]))
    with pytest.raises(ValidationError):
        UniformSampler(store, generator=3)
