from __future__ import annotations

import numpy as np
import pytest
import torch

from hippogym import Episode, MemoryStore
from hippogym.memory.samplers import PrioritizedSampler, Sampler, UniformSampler


def store_with_holes(seed=0):
    """A FIFO store that has evicted units, so live rows do not fill [0, high_water)."""
    store = MemoryStore(embed_dim=8, capacity=60, eviction="fifo", seed=seed)
    gen = torch.Generator().manual_seed(seed)
    for i, T in enumerate([7, 13, 9, 21, 5, 17, 11]):
        ep = Episode(states=torch.randn(T + 1, 3, generator=gen), actions=torch.zeros(T, 1), rewards=torch.ones(T))
        store.add(ep, torch.nn.functional.normalize(torch.randn(T, 8, generator=gen), dim=1))
    return store


def live_rows(store):
    return np.flatnonzero(store.row_slot.numpy() >= 0)


def test_abc_refuses_incomplete_subclasses():
    class NoState(Sampler):
        def sample_np(self, n):
            return np.zeros(n, dtype=np.int64), np.ones(n)

        def probability_np(self, rows):
            return np.ones(len(rows))

        def update_priorities(self, rows, priorities):
            pass

    store = MemoryStore(embed_dim=8, capacity=10)
    with pytest.raises(TypeError, match="abstract"):
        NoState(store)
    with pytest.raises(TypeError, match="abstract"):
        Sampler(store)


def test_complete_subclass_is_registered_as_listener_and_detaches():
    class Complete(Sampler):
        def sample_np(self, n):
            return np.zeros(n, dtype=np.int64), np.ones(n)

        def probability_np(self, rows):
            return np.ones(len(rows))

        def update_priorities(self, rows, priorities):
            pass

        def state_dict(self):
            return {}

        def load_state_dict(self, state):
            pass

    store = MemoryStore(embed_dim=8, capacity=10)
    sampler = Complete(store)
    assert store.listeners == [sampler]
    sampler.detach()
    assert store.listeners == []


@pytest.mark.parametrize(
    "make", [lambda s: UniformSampler(s, seed=1), lambda s: PrioritizedSampler(s, alpha=0.7, seed=1)]
)
def test_probabilities_sum_to_one_over_live_rows_and_are_zero_elsewhere(make):
    store = store_with_holes()
    sampler = make(store)
    if isinstance(sampler, PrioritizedSampler):
        rows = live_rows(store)
        sampler.update_priorities(rows, np.linspace(0.1, 3.0, rows.size))
    live = live_rows(store)
    assert store.num_transitions < store.high_water  # holes exist
    assert sampler.probability_np(live).sum() == pytest.approx(1.0, abs=1e-9)
    dead = np.setdiff1d(np.arange(store.capacity), live)
    assert dead.size and (sampler.probability_np(dead) == 0).all()
    rows, probs = sampler.sample_np(256)
    assert rows.dtype == np.int64 and probs.dtype == np.float64
    assert np.isin(rows, live).all()
    np.testing.assert_allclose(probs, sampler.probability_np(rows))
    t_rows, t_probs = sampler.sample(8)
    assert t_rows.dtype == torch.int64 and t_probs.dtype == torch.float64
    torch.testing.assert_close(sampler.probability(t_rows), t_probs)


@pytest.mark.parametrize("make", [lambda s: UniformSampler(s, seed=3), lambda s: PrioritizedSampler(s, seed=3)])
def test_state_dict_round_trip_gives_the_same_next_draws(make):
    store = store_with_holes()
    a = make(store)
    if isinstance(a, PrioritizedSampler):
        rows = live_rows(store)
        a.update_priorities(rows, np.arange(rows.size, dtype=np.float64))
    a.sample_np(10)
    state = a.state_dict()
    b = make(store)
    b.sample_np(3)  # a different position in its stream
    b.load_state_dict(state)
    ra, pa = a.sample_np(64)
    rb, pb = b.sample_np(64)
    np.testing.assert_array_equal(ra, rb)
    np.testing.assert_array_equal(pa, pb)
