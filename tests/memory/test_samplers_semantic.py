from __future__ import annotations

import numpy as np
import torch

from hippogym import Episode, MemoryStore
from hippogym.memory.samplers.semantic import SemanticSampler


def store_with_units(n=6, T=5, dim=8):
    store = MemoryStore(embed_dim=dim, capacity=200, seed=0)
    g = torch.Generator().manual_seed(0)
    for _ in range(n):
        ep = Episode(states=torch.randn(T + 1, 3, generator=g), actions=torch.zeros(T, dtype=torch.int64), rewards=torch.randn(T, generator=g))
        store.add(ep, torch.nn.functional.normalize(torch.randn(T, dim, generator=g), dim=-1), 0)
    return store


def test_probabilities_sum_to_one_and_rows_come_from_retrieved_units():
    store = store_with_units()
    sampler = SemanticSampler(store, temperature=0.1, exact=True, generator=torch.Generator().manual_seed(0))
    keys = np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32)
    recall = sampler.set_query(keys, 3)
    rows, probs = sampler.sample_np(200)
    retrieved = set(recall.slots[recall.slots >= 0].tolist())
    assert set(store.row_slot.numpy()[rows].tolist()) <= retrieved
    live, _ = store.rows_of(store.live_slots())
    assert np.isclose(sampler.probability_np(live.numpy()).sum(), 1.0)
    assert (probs > 0).all()
    assert np.allclose(recall.pi.sum(axis=1), 1.0) and (recall.cdf[:, -1] == 1.0).all()


def test_recall_is_cached_and_state_dict_round_trips():
    store = store_with_units()
    sampler = SemanticSampler(store, generator=torch.Generator().manual_seed(1))
    keys = np.ones((1, 8), dtype=np.float32)
    assert sampler.recall(keys, 2) is sampler.recall(keys, 2)
    sampler.set_query(keys, 2)
    state = sampler.state_dict()
    first = sampler.sample_np(16)[0]
    other = SemanticSampler(store, temperature=5.0, generator=torch.Generator().manual_seed(9))
    other.load_state_dict(state)
    other.set_query(keys, 2)
    assert other.temperature == sampler.temperature
    assert np.array_equal(other.sample_np(16)[0], first)
