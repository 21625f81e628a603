"""memory/persist.py: the store's part of a saved memory (its config, its rows, save/load)."""

from __future__ import annotations

import pytest
import torch

from hippo_format import SchemaError
from hippogym import Episode, MemoryStore
from hippogym.errors import ValidationError
from hippogym.memory.persist import check_rows, load_store, save_store, store_config


def _store() -> MemoryStore:
    store = MemoryStore(capacity=50, embed_dim=4)
    for n in (5, 7):
        episode = Episode(observations=torch.randn(n + 1, 3), actions=torch.zeros(n), rewards=torch.ones(n))
        store.add(episode, torch.randn(n, 4))
    return store


def test_save_then_load_gives_the_same_rows_and_keys(tmp_path):
    store = _store()
    save_store(store, tmp_path / "m")
    loaded = load_store(MemoryStore, tmp_path / "m")
    assert len(loaded) == len(store) == 12 and loaded.num_units == 2
    assert torch.equal(torch.as_tensor(loaded.keys_np), torch.as_tensor(store.keys_np))


def test_store_config_types_scalars_and_names_a_bad_field():
    config = store_config(_store().config())
    assert config["capacity"] == 50 and config["embed_dim"] == 4
    bad = dict(_store().config(), key_dtype="int8")
    with pytest.raises(ValidationError, match="store.config.key_dtype"):
        store_config(bad)


def test_check_rows_refuses_rows_outside_the_ring():
    state = {"rows": torch.tensor([0, 1, 60]), "unit_length": torch.tensor([3]), "unit_start": torch.tensor([0])}
    with pytest.raises(SchemaError, match="keys.row"):
        check_rows(state, capacity=50)
    state = {"rows": torch.tensor([0, 1, 2]), "unit_length": torch.tensor([3]), "unit_start": torch.tensor([48])}
    with pytest.raises(SchemaError, match="capacity=50"):
        check_rows(state, capacity=50)
