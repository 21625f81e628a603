"""MemoryStore: the ring of rows, the unit table, sampling of rows, persistence.

Eviction policies are tested in ``test_eviction.py``, retrieval indexes in ``test_index.py``.
"""

from __future__ import annotations

import pytest
import torch

from hippogym import Episode, MemoryStore
from hippogym.errors import CapacityError, EmptyMemoryError, ValidationError


def test_variable_lengths_and_wraparound_keep_invariants(tagged, unit_keys, check_invariants):
    store = MemoryStore(embed_dim=8, capacity=97, eviction="fifo")
    g = torch.Generator().manual_seed(1)
    for tag in range(300):
        T = int(torch.randint(1, 40, (1,), generator=g))
        store.add(tagged(T, tag), unit_keys(T, seed=tag))
        check_invariants(store)
    last = list(store.episodes())[-1]
    assert last.episode_id == 299


def test_errors_are_typed_and_clear(tagged, unit_keys):
    store = MemoryStore(embed_dim=8, capacity=10)
    with pytest.raises(CapacityError, match="capacity=10"):
        store.add(tagged(11, 0), unit_keys(11))
    with pytest.raises(EmptyMemoryError):
        store.sample_rows(4)
    store.add(tagged(5, 0), unit_keys(5))
    with pytest.raises(ValidationError, match="episode.states"):
        store.add(Episode(states=torch.zeros(6, 3), actions=torch.zeros(5, 1), rewards=torch.zeros(5)), unit_keys(5))
    with pytest.raises(ValidationError, match="keys"):
        store.add(tagged(5, 1), unit_keys(4))
    with pytest.raises(ValidationError, match="capacity"):
        MemoryStore(embed_dim=8, capacity=0)


def test_uniform_rows_cover_only_live_transitions(tagged, unit_keys):
    store = MemoryStore(embed_dim=8, capacity=50, eviction="fifo", seed=0)
    for tag in range(9):
        store.add(tagged(7, tag), unit_keys(7, seed=tag))
    rows = store.sample_rows(5000)
    assert (store.row_slot[rows] >= 0).all()
    counts = torch.bincount(store.row_slot[rows], minlength=store.num_slots)[list(store.order)].float()
    assert counts.min() > 0.6 * counts.mean()  # roughly uniform over units of equal length


def test_state_dict_round_trip_is_exact(tagged, unit_keys, check_invariants):
    store = MemoryStore(embed_dim=8, capacity=60, seed=3)
    for tag in range(20):
        store.add(tagged(7, tag, reward=float(tag % 3)), unit_keys(7, seed=tag))
    clone = MemoryStore(embed_dim=8, capacity=60)
    clone.load_state_dict(store.state_dict())
    check_invariants(clone)
    for name in ("keys", "rewards", "row_slot"):
        assert torch.equal(getattr(clone, name), getattr(store, name))
    assert list(clone.order) == list(store.order) and clone.tail == store.tail
    assert torch.equal(clone.sample_rows(100), store.sample_rows(100))
