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
    state = {"rows": torch.tensor([4, 7, 4, 9, 7]), "unit_length": torch.tensor([5]), "unit_start": torch.tensor([0])}
    with pytest.raises(SchemaError, match="with 2 duplicates"):
        check_rows(state, capacity=50)
    state = {"rows": torch.tensor([9, 4, 7, 49]), "unit_length": torch.tensor([4]), "unit_start": torch.tensor([0])}
    check_rows(state, capacity=50)  # distinct, in range, in any order


def test_an_empty_store_saves_and_loads_and_takes_its_layout_from_the_first_episode(tmp_path):
    import hippo_format
    from hippogym import DualEncoder, Episode, HippocampalReplayBuffer
    from hippogym.replay.persist import load_saved_memory

    empty = MemoryStore(embed_dim=16, capacity=100, seed=0)
    empty.save(tmp_path / "store")
    with hippo_format.open_memory(tmp_path / "store") as reader:
        assert reader.num_transitions == 0 and reader.manifest["store"]["config"]["layout"] is None
    again = MemoryStore.load(tmp_path / "store")
    assert len(again) == 0 and again.capacity == 100 and again.layout is None
    # A store-only empty memory loads as a buffer too, and the first episode fixes the layout.
    buffer = load_saved_memory(HippocampalReplayBuffer, tmp_path / "store")
    buffer.add_episode(Episode(observations=torch.randn(5, 3), actions=torch.zeros(4, dtype=torch.int64),
                               rewards=torch.ones(4)))
    assert len(buffer) == 4 and buffer.memory.layout is not None
    # A whole empty buffer (encoder included) too.
    whole = HippocampalReplayBuffer(MemoryStore(embed_dim=16, capacity=100), DualEncoder(input_dim=5, embed_dim=16))
    whole.save(tmp_path / "whole")
    loaded = HippocampalReplayBuffer.load(tmp_path / "whole")
    assert len(loaded) == 0 and loaded.encoder.input_dim == 5


def test_unit_geometry_is_saved_and_restored_and_recomputed_when_missing_or_invalid(tmp_path, monkeypatch):
    import hippo_format

    store = _store()
    save_store(store, tmp_path / "m")
    with hippo_format.open_memory(tmp_path / "m") as reader:
        assert {"unit_centroid", "unit_theta"} <= set(reader.tensor_names("keys"))
        assert reader.manifest["row_aligned"]["keys"]["unit_theta"] == "episodes"

    calls = []
    original = MemoryStore._update_geometry
    monkeypatch.setattr(MemoryStore, "_update_geometry", lambda self, slots: (calls.append(1), original(self, slots)))
    loaded = load_store(MemoryStore, tmp_path / "m")
    assert calls == []  # taken from the file, not recomputed
    slots = torch.nonzero(store.unit_alive).flatten()
    assert torch.allclose(loaded.centroid[slots], store.centroid[slots])
    assert torch.allclose(loaded.theta[slots], store.theta[slots])

    # An invalid saved geometry (not unit length) is not trusted: it is recomputed from the keys.
    state = store.state_dict()
    state["centroid"] = state["centroid"] * 3
    fresh = MemoryStore(capacity=50, embed_dim=4)
    fresh.load_state_dict(state)
    assert calls == [1] and torch.allclose(fresh.centroid[slots], store.centroid[slots])
    # A state without it (memories saved before it was stored) recomputes it too.
    state.pop("centroid")
    MemoryStore(capacity=50, embed_dim=4).load_state_dict(state)
    assert calls == [1, 1]
