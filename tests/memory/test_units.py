"""UnitTableMixin (hippogym/memory/units.py): the unit table's views, growth, geometry and queries."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hippogym import MemoryStore
from hippogym.memory.rows import keys_as_float32
from hippogym.memory.units import UnitTableMixin


def _filled(tagged, unit_keys, lengths, capacity=1000, key_dtype="float16"):
    store = MemoryStore(embed_dim=8, capacity=capacity, eviction="fifo", key_dtype=key_dtype, seed=0)
    for tag, T in enumerate(lengths):
        store.add(tagged(T, tag, reward=float(tag)), unit_keys(T, seed=tag))
    return store


def test_memory_store_mixes_in_the_unit_table():
    assert issubclass(MemoryStore, UnitTableMixin)
    assert MemoryStore.rows_of is UnitTableMixin.rows_of


def test_views_share_memory_with_the_unit_tensors(tagged, unit_keys):
    store = _filled(tagged, unit_keys, [3, 5, 2])
    assert store.unit_starts_np[:3].tolist() == [0, 3, 8]
    assert store.unit_lengths_np[:3].tolist() == [3, 5, 2]
    assert store.unit_returns_np[:3].tolist() == [0.0, 1.0, 2.0]
    assert store.dead_mask_np[:3].tolist() == [0.0, 0.0, 0.0]
    assert np.isneginf(store.dead_mask_np[3:]).all()
    store.unit_hits_np[1] = 7.0
    assert float(store.unit_hits[1]) == 7.0
    assert store.centroids_np.shape == (store.unit_start.shape[0], 8)
    assert store.keys_np is not None and store.keys_np.shape == (1000, 8)


def test_unit_table_grows_past_its_initial_size_and_keeps_old_units(tagged, unit_keys):
    store = _filled(tagged, unit_keys, [2] * 70, capacity=1000)
    assert store.unit_start.shape[0] == 128
    assert store.num_units == 70
    assert store.unit_source[:70].tolist() == list(range(70))
    assert store.unit_source[70:].eq(-1).all() and not store.unit_alive[70:].any()
    assert torch.allclose(store.theta[70:], torch.full((58,), math.pi))
    assert store.unit_starts_np.shape[0] == 128  # views were refreshed after the growth


def test_rows_of_concatenates_unit_rows_with_their_position(tagged, unit_keys):
    store = _filled(tagged, unit_keys, [3, 5, 2])
    rows, seg = store.rows_of(torch.tensor([2, 0]))
    assert rows.tolist() == [8, 9, 0, 1, 2]
    assert seg.tolist() == [0, 0, 1, 1, 1]


@pytest.mark.parametrize("key_dtype", ["float16", "float32"])
def test_geometry_bounds_every_key_and_maxsim_is_the_best_key(tagged, unit_keys, key_dtype):
    store = _filled(tagged, unit_keys, [4, 6, 3], key_dtype=key_dtype)
    for slot in range(3):
        rows, _ = store.rows_of(torch.tensor([slot]))
        cos = keys_as_float32(store.keys[rows]) @ store.centroid[slot]
        assert torch.all(torch.acos(cos.clamp(-1, 1)) <= store.theta[slot])
    query = torch.nn.functional.normalize(torch.randn(8, generator=torch.Generator().manual_seed(5)), dim=0)
    slots = torch.tensor([0, 1, 2])
    keys = keys_as_float32(store.keys)  # 16-bit keys are scored as unit vectors
    expected = torch.stack([(keys[store.rows_of(torch.tensor([s]))[0]] @ query).max() for s in range(3)])
    assert torch.allclose(store.maxsim(query, slots), expected)


@pytest.mark.parametrize("key_dtype", ["float16", "float32"])
def test_update_geometry_follows_rekey(tagged, unit_keys, key_dtype):
    store = _filled(tagged, unit_keys, [4, 4], key_dtype=key_dtype)
    rows, _ = store.rows_of(torch.tensor([1]))
    new = torch.nn.functional.normalize(torch.ones(4, 8), dim=1)
    store.rekey(rows, new, version=3)
    before = store.mutations
    store.update_geometry(torch.tensor([1]))
    assert store.mutations > before
    assert torch.allclose(store.centroid[1], new[0], atol=1e-6 if key_dtype == "float32" else 1e-3)
    assert float(store.theta[1]) < 0.01
    assert store.key_version[rows].eq(3).all()


def test_live_and_random_slots_and_return_stats(tagged, unit_keys):
    store = _filled(tagged, unit_keys, [5, 5, 5], capacity=12)  # the 3rd unit evicts the 1st and reuses its slot
    assert store.live_slots().tolist() == [1, 0]
    assert store.live_slots_np().tolist() == [1, 0]
    draws = store.random_slots_np(50)
    assert draws.size == 50 and set(draws.tolist()) == {0, 1}
    assert store.random_slots(4).dtype == torch.int64
    mean, std = store.return_stats()
    assert mean == 1.5 and math.isclose(std, 0.5)
    assert store.num_units == 2


def test_record_hits_counts_repeats(tagged, unit_keys):
    store = _filled(tagged, unit_keys, [2, 2, 2])
    store.record_hits(torch.tensor([0, 2, 2]))
    assert store.unit_hits[:3].tolist() == [1.0, 0.0, 2.0]
    store.record_hits_np(np.array([1, 2]), unique=True)
    assert store.unit_hits_np[:3].tolist() == [1.0, 1.0, 3.0]
