from __future__ import annotations

import pytest
import torch

from hippogym import Episode, MemoryStore
from hippogym.errors import CapacityError, EmptyMemoryError, ValidationError


def unit_keys(T, d=8, seed=0):
    return torch.nn.functional.normalize(torch.randn(T, d, generator=torch.Generator().manual_seed(seed)), dim=1)


def tagged(T, tag, reward=0.0, success=None):
    """An episode whose observations all equal `tag`, so rows can be traced after moves."""
    return Episode(
        states=torch.full((T + 1, 2), float(tag)), actions=torch.zeros(T, 1),
        rewards=torch.full((T,), reward / T), success=success, episode_id=tag,
    )


def check_invariants(store: MemoryStore):
    seen = torch.zeros(store.capacity, dtype=torch.bool)
    total = 0
    for slot in store.order:
        start, length = int(store.unit_start[slot]), int(store.unit_length[slot])
        assert 0 <= start and start + length <= store.capacity
        assert not seen[start : start + length].any(), "units overlap"
        seen[start : start + length] = True
        assert (store.row_slot[start : start + length] == slot).all()
        tag = int(store.unit_source[slot])
        assert (store.obs["obs"][start : start + length] == tag).all(), "rows do not belong to their unit"
        total += length
    assert total == store.num_transitions <= store.capacity
    assert int((store.row_slot >= 0).sum()) == total


def test_capacity_counts_transitions_and_fifo_evicts_whole_oldest_units():
    store = MemoryStore(embed_dim=8, capacity=100, eviction="fifo")
    for tag in range(12):
        store.add(tagged(15, tag), unit_keys(15, seed=tag))
        check_invariants(store)
    assert store.num_transitions <= 100
    kept = [int(store.unit_source[s]) for s in store.order]
    assert kept == list(range(12 - len(kept), 12))  # the newest, in order
    assert store.num_transitions == 15 * len(kept)


def test_variable_lengths_and_wraparound_keep_invariants():
    store = MemoryStore(embed_dim=8, capacity=97, eviction="fifo")
    g = torch.Generator().manual_seed(1)
    for tag in range(300):
        T = int(torch.randint(1, 40, (1,), generator=g))
        store.add(tagged(T, tag), unit_keys(T, seed=tag))
        check_invariants(store)
    last = list(store.episodes())[-1]
    assert last.episode_id == 299


def test_utility_eviction_keeps_rare_successes_longer_than_fifo():
    def survivors(policy):
        store = MemoryStore(embed_dim=8, capacity=200, eviction=policy, seed=0)
        for tag in range(200):
            success = tag % 25 == 0
            store.add(tagged(10, tag, reward=1.0 if success else 0.0, success=success), unit_keys(10, seed=tag))
            check_invariants(store)
        return {int(store.unit_source[s]) for s in store.order}

    fifo, utility = survivors("fifo"), survivors("utility")
    successes = {t for t in range(200) if t % 25 == 0}
    assert not fifo & successes  # FIFO holds the last 20 units (180-199): no success among them
    assert len(utility & successes) >= 2  # the two most recent successes were retained
    assert 199 in utility  # still fresh: the newest unit is always there


def test_utility_retention_is_bounded_by_max_rescues():
    from hippogym.memory.eviction import UtilityEviction

    store = MemoryStore(embed_dim=8, capacity=100, eviction=UtilityEviction(max_rescues=2), seed=0)
    store.add(tagged(10, 0, reward=100.0), unit_keys(10))
    for tag in range(1, 200):
        store.add(tagged(10, tag), unit_keys(10, seed=tag))
        check_invariants(store)
    assert 0 not in {int(store.unit_source[s]) for s in store.order}


def test_errors_are_typed_and_clear():
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


def test_uniform_rows_cover_only_live_transitions():
    store = MemoryStore(embed_dim=8, capacity=50, eviction="fifo", seed=0)
    for tag in range(9):
        store.add(tagged(7, tag), unit_keys(7, seed=tag))
    rows = store.sample_rows(5000)
    assert (store.row_slot[rows] >= 0).all()
    counts = torch.bincount(store.row_slot[rows], minlength=store.num_slots)[list(store.order)].float()
    assert counts.min() > 0.6 * counts.mean()  # roughly uniform over units of equal length


def test_state_dict_round_trip_is_exact():
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
