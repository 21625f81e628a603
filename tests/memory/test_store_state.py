"""StoreStateMixin (hippogym/memory/store_state.py): episode export, config, state dict, save/load."""

from __future__ import annotations

import pytest
import torch

from hippogym import MemoryStore
from hippogym.memory.store_state import StoreStateMixin


def _filled(tagged, unit_keys, n=6, capacity=20):
    store = MemoryStore(embed_dim=8, capacity=capacity, eviction="fifo", seed=3)
    for tag in range(n):
        store.add(tagged(4, tag, reward=float(tag), success=tag % 2 == 0), unit_keys(4, seed=tag))
    return store


def test_memory_store_mixes_in_the_state_part():
    assert issubclass(MemoryStore, StoreStateMixin)
    assert MemoryStore.state_dict is StoreStateMixin.state_dict


def test_unit_episode_and_episodes_rebuild_the_units(tagged, unit_keys):
    store = _filled(tagged, unit_keys)  # 6 units of 4 rows in 20: the first is evicted
    episodes = list(store.episodes())
    assert [ep.episode_id for ep in episodes] == [1, 2, 3, 4, 5]
    ep = store.unit_episode(store.order[0])
    assert len(ep) == 4 and ep.episode_id == 1 and ep.success is False
    assert torch.equal(ep.states, torch.full((4, 2), 1.0))
    assert abs(float(ep.rewards.sum()) - 1.0) < 1e-6


def test_config_round_trip_builds_an_equal_empty_store(tagged, unit_keys):
    store = _filled(tagged, unit_keys)
    config = store.config()
    assert config["embed_dim"] == 8 and config["capacity"] == 20 and config["action_shape"] == [1]
    empty = MemoryStore.from_config(config)
    assert isinstance(empty, MemoryStore) and empty.num_units == 0
    assert empty.eviction.config() == store.eviction.config()


@pytest.mark.parametrize("n", [1, 3, 5, 6, 9])  # one run of rows from 0 (1-5 units), then a wrapped ring
def test_state_dict_round_trip_reproduces_units_and_draws(tagged, unit_keys, n):
    store = _filled(tagged, unit_keys, n=n)
    clone = MemoryStore.from_config(store.config())
    clone.load_state_dict(store.state_dict())
    assert list(clone.order) == list(store.order)
    assert torch.equal(clone.row_slot, store.row_slot)
    assert torch.allclose(clone.centroid[: store.num_slots], store.centroid[: store.num_slots])
    assert clone.return_stats() == store.return_stats()
    assert torch.equal(clone.sample_rows(32), store.sample_rows(32))


def test_save_and_load(tmp_path, tagged, unit_keys):
    store = _filled(tagged, unit_keys)
    path = store.save(tmp_path / "mem")
    loaded = MemoryStore.load(path)
    assert [ep.episode_id for ep in loaded.episodes()] == [1, 2, 3, 4, 5]
    assert torch.equal(loaded.keys, store.keys)
