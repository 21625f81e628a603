"""Eviction policies: which units the ring forgets (hippogym/memory/eviction.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hippogym import MemoryStore
from hippogym.errors import ValidationError
from hippogym.memory.eviction import EvictionPolicy, FIFOEviction, UtilityEviction, make_eviction
from hippogym.memory.views import UnitTable


def sources(store):
    """Tags of the units in memory, oldest first."""
    return [int(store.unit_source[s]) for s in store.order]


def test_capacity_counts_transitions_and_fifo_evicts_whole_oldest_units(tagged, unit_keys, check_invariants):
    store = MemoryStore(embed_dim=8, capacity=100, eviction="fifo")
    for tag in range(12):
        store.add(tagged(15, tag), unit_keys(15, seed=tag))
        check_invariants(store)
    assert store.num_transitions <= 100
    kept = sources(store)
    assert kept == list(range(12 - len(kept), 12))  # the newest, in order
    assert store.num_transitions == 15 * len(kept)


def test_fifo_evicts_exactly_the_units_the_new_rows_overlap(tagged, unit_keys, check_invariants):
    store = MemoryStore(embed_dim=8, capacity=100, eviction="fifo")
    for tag in range(3):
        store.add(tagged(30, tag), unit_keys(30, seed=tag))  # rows [0, 90)
    store.add(tagged(20, 3), unit_keys(20, seed=3))  # no room before the end: wraps onto unit 0
    check_invariants(store)
    assert sources(store) == [1, 2, 3]
    assert store.num_transitions == 80  # unit 0 went whole, not just the 20 rows needed
    store.add(tagged(5, 4), unit_keys(5, seed=4))  # fits in unit 0's old rows: nothing else goes
    check_invariants(store)
    assert sources(store) == [1, 2, 3, 4]
    assert (store.unit_rescues[list(store.order)] == 0).all()


def test_utility_eviction_keeps_rare_successes_longer_than_fifo(tagged, unit_keys, check_invariants):
    def survivors(policy):
        store = MemoryStore(embed_dim=8, capacity=200, eviction=policy, seed=0)
        for tag in range(200):
            success = tag % 25 == 0
            store.add(tagged(10, tag, reward=1.0 if success else 0.0, success=success), unit_keys(10, seed=tag))
            check_invariants(store)
        return set(sources(store))

    fifo, utility = survivors("fifo"), survivors("utility")
    successes = {t for t in range(200) if t % 25 == 0}
    assert not fifo & successes  # FIFO holds the last 20 units (180-199): no success among them
    assert len(utility & successes) >= 2  # the two most recent successes were retained
    assert 199 in utility  # still fresh: the newest unit is always there


def test_utility_retention_is_bounded_by_max_rescues(tagged, unit_keys, check_invariants):
    store = MemoryStore(embed_dim=8, capacity=100, eviction=UtilityEviction(max_rescues=2), seed=0)
    store.add(tagged(10, 0, reward=100.0), unit_keys(10))
    for tag in range(1, 200):
        store.add(tagged(10, tag), unit_keys(10, seed=tag))
        check_invariants(store)
    assert 0 not in sources(store)


@pytest.mark.parametrize("max_rescues", [1, 3])
def test_a_rare_success_is_retained_exactly_max_rescues_times(max_rescues, tagged, unit_keys, check_invariants):
    store = MemoryStore(embed_dim=8, capacity=300, eviction=UtilityEviction(max_rescues=max_rescues), seed=0)
    store.add(tagged(10, 0, reward=100.0, success=True), unit_keys(10))
    slot = store.order[0]
    store.record_hits_np(np.array([slot] * 8))
    rescues, hits, alive_for = [], [], 0
    for tag in range(1, 30 * (max_rescues + 3)):
        store.add(tagged(10, tag), unit_keys(10, seed=tag))
        check_invariants(store)
        if 0 not in sources(store):
            break
        alive_for += 1
        rescues.append(int(store.unit_rescues[slot]))
        hits.append(float(store.unit_hits[slot]))
    assert 0 not in sources(store)  # forgotten in the end: the memory turns over
    assert rescues[-1] == max_rescues  # retained at every pass until the cap, then evicted
    assert sorted(set(rescues)) == list(range(max_rescues + 1))
    assert alive_for >= 29 * (max_rescues + 1)  # one pass of 30 units per life, max_rescues + 1 lives
    assert hits[-1] == 8 * 0.5**max_rescues  # hits halve at every rescue


def test_policies_that_cannot_retain_forget_like_fifo(tagged, unit_keys):
    def run(policy, rewarding):
        store = MemoryStore(embed_dim=8, capacity=300, eviction=policy, seed=0)
        for tag in range(150):
            reward = 1.0 if rewarding and tag % 30 == 0 else 0.0
            store.add(tagged(10, tag, reward=reward), unit_keys(10, seed=tag))
        return sources(store), int(store.unit_rescues[list(store.order)].sum())

    fifo, _ = run("fifo", True)
    assert fifo == list(range(120, 150))
    assert run(UtilityEviction(), False) == (fifo, 0)  # all returns tie: ties are evicted
    assert run(UtilityEviction(max_rescues=0), True) == (fifo, 0)
    assert run(UtilityEviction(rescue_budget=0.0), True) == (fifo, 0)  # no rows may be moved
    assert run(UtilityEviction(), True) != (fifo, 0)  # the same stream with a policy that can retain


def test_utility_is_standardised_return_plus_log_hits_in_torch_and_numpy(tagged, unit_keys):
    store = MemoryStore(embed_dim=8, capacity=100, seed=0)
    returns = [0.0, 1.0, 4.0, -2.0, 7.0]
    for tag, ret in enumerate(returns):
        store.add(tagged(5, tag, reward=ret), unit_keys(5, seed=tag))
    slots = store.live_slots()
    store.record_hits(torch.tensor([int(slots[1])] * 3 + [int(slots[4])]))
    policy = UtilityEviction(return_weight=2.0, hits_weight=0.25)
    mean = float(np.mean(returns))
    std = float(np.std(returns))
    hits = np.array([0.0, 3.0, 0.0, 0.0, 1.0])
    expected = 2.0 * (np.array(returns) - mean) / std + 0.25 * np.log1p(hits)
    np.testing.assert_allclose(policy.utility(store, slots).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(policy.utility_np(store, slots.numpy()), expected, rtol=1e-6)


def test_policies_read_only_the_unit_table(tagged, unit_keys, restricted):
    store = MemoryStore(embed_dim=8, capacity=200, seed=0)
    for tag in range(40):
        store.add(tagged(5, tag, reward=100.0 if tag == 3 else 0.0), unit_keys(5, seed=tag))
    view = restricted(store, UnitTable)
    assert isinstance(store, UnitTable) and isinstance(view, UnitTable)
    policy = UtilityEviction()
    slots = store.live_slots()
    decisions = [policy.retain(view, int(s)) for s in slots]
    assert decisions == [tag == 3 for tag in range(40)]
    policy.utility(view, slots)
    assert FIFOEviction().retain(view, int(slots[3])) is False
    assert view.read == view.members  # the protocol lists exactly what a policy reads


def test_make_eviction_builds_round_trips_and_refuses():
    assert isinstance(make_eviction("fifo"), FIFOEviction)
    default = make_eviction("utility")
    assert isinstance(default, UtilityEviction) and default.config() == UtilityEviction().config()
    custom = make_eviction({"type": "utility", "keep_fraction": 0.25, "max_rescues": 5, "peers": 16})
    assert (custom.keep_fraction, custom.max_rescues, custom.peers) == (0.25, 5, 16)
    assert make_eviction(custom.config()).config() == custom.config()
    assert make_eviction(FIFOEviction().config()).config() == {"type": "fifo"}
    assert make_eviction(custom) is custom
    assert isinstance(custom, EvictionPolicy)
    for bad in ("lru", {"type": None}, {"type": "utility", "keep_fraction": 1.0},
                {"type": "utility", "keep_fraction": 0.0}, {"type": "utility", "max_rescues": -1}):
        with pytest.raises(ValidationError):
            make_eviction(bad)
    with pytest.raises(NotImplementedError):
        EvictionPolicy().retain(None, 0)
