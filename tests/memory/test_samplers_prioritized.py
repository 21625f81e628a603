from __future__ import annotations

import numpy as np
import pytest
import torch

from hippogym import Episode, MemoryStore
from hippogym.errors import DimensionMismatchError, EmptyMemoryError, ValidationError
from hippogym.memory.samplers import PrioritizedSampler, Sampler


def add(store, T, seed):
    gen = torch.Generator().manual_seed(seed)
    ep = Episode(states=torch.randn(T + 1, 2, generator=gen), actions=torch.zeros(T, 1), rewards=torch.zeros(T))
    store.add(ep, torch.nn.functional.normalize(torch.randn(T, 8, generator=gen), dim=1))


def test_is_a_sampler_and_old_import_paths_work():
    import hippogym.memory as memory

    assert issubclass(PrioritizedSampler, Sampler)
    assert memory.PrioritizedSampler is PrioritizedSampler


def test_probabilities_follow_priorities_to_the_alpha():
    store = MemoryStore(embed_dim=8, capacity=40, eviction="fifo")
    add(store, 4, 0)
    sampler = PrioritizedSampler(store, alpha=0.5, eps=0.0, seed=0)
    sampler.update_priorities(np.arange(4), np.array([1.0, 4.0, 9.0, 16.0]))
    np.testing.assert_allclose(sampler.probability_np(np.arange(4)), np.array([1, 2, 3, 4]) / 10)
    rows, _ = sampler.sample_np(20_000)
    freq = np.bincount(rows, minlength=4) / rows.size
    np.testing.assert_allclose(freq, np.array([1, 2, 3, 4]) / 10, atol=0.01)


def test_new_rows_get_the_max_priority_and_tree_follows_evictions():
    store = MemoryStore(embed_dim=8, capacity=10, eviction="fifo")
    sampler = PrioritizedSampler(store, alpha=1.0, eps=0.0, seed=0)
    add(store, 5, 0)
    sampler.update_priorities(np.arange(5), np.full(5, 3.0))
    add(store, 5, 1)  # rows 5..9 at max priority 3
    np.testing.assert_allclose(sampler.probability_np(np.arange(10)), np.full(10, 0.1))
    add(store, 5, 2)  # evicts the oldest unit
    live = np.flatnonzero(store.row_slot.numpy() >= 0)
    assert sampler.probability_np(live).sum() == pytest.approx(1.0)
    assert sampler.tree.total == pytest.approx(3.0 * store.num_transitions)


def test_feedback_for_evicted_rows_is_skipped_and_bad_feedback_refused():
    store = MemoryStore(embed_dim=8, capacity=10, eviction="fifo")
    add(store, 5, 0)
    sampler = PrioritizedSampler(store, alpha=1.0, eps=0.0, seed=0)
    add(store, 5, 1)
    add(store, 5, 2)
    dead = np.flatnonzero(store.row_slot.numpy() < 0)
    total = sampler.tree.total
    sampler.update_priorities(dead, np.full(dead.size, 100.0))
    assert sampler.tree.total == total and sampler.max_priority == 1.0
    with pytest.raises(DimensionMismatchError):
        sampler.update(torch.tensor([0, 1]), torch.tensor([1.0]))
    with pytest.raises(ValidationError):
        sampler.update(torch.tensor([0]), torch.tensor([float("nan")]))
    with pytest.raises(ValidationError):
        PrioritizedSampler(store, alpha=1.5)


def test_empty_store_raises():
    with pytest.raises(EmptyMemoryError):
        PrioritizedSampler(MemoryStore(embed_dim=8, capacity=10), seed=0).sample_np(2)


def test_state_dict_restores_priorities_after_a_reset():
    store = MemoryStore(embed_dim=8, capacity=30, eviction="fifo")
    for i in range(3):
        add(store, 6, i)
    sampler = PrioritizedSampler(store, alpha=1.0, eps=0.0, seed=0)
    rows = np.flatnonzero(store.row_slot.numpy() >= 0)
    sampler.update_priorities(rows, np.arange(1, rows.size + 1, dtype=np.float64))
    state = sampler.state_dict()
    before = sampler.probability_np(rows)
    sampler.on_reset()  # as after a store reload: every row back at max priority
    assert not np.allclose(sampler.probability_np(rows), before)
    sampler.load_state_dict(state)
    np.testing.assert_allclose(sampler.probability_np(rows), before)
