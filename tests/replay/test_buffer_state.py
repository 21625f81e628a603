"""replay/buffer_state.py: the buffer's config, state_dict, save/load and the store-only load path."""

from __future__ import annotations

import torch

from hippogym import Episode, HippocampalReplayBuffer, MemoryStore
from hippogym.replay.buffer_state import BufferStateMixin
from hippogym.replay.persist import load_saved_memory


def _buffer(seed: int = 0) -> HippocampalReplayBuffer:
    buffer = HippocampalReplayBuffer(seed=seed)
    for i in range(3):
        rewards = torch.full((8,), float(i))
        buffer.add_episode(Episode(observations=torch.randn(9, 3), actions=torch.zeros(8), rewards=rewards))
    return buffer


def test_the_buffer_takes_its_persistence_from_the_mixin():
    assert issubclass(HippocampalReplayBuffer, BufferStateMixin)
    assert HippocampalReplayBuffer.save_pretrained is HippocampalReplayBuffer.save
    assert HippocampalReplayBuffer.save_to_hub is HippocampalReplayBuffer.push_to_hub


def test_state_dict_round_trip_resumes_the_same_batches():
    torch.manual_seed(0)
    a = _buffer()
    torch.manual_seed(0)
    b = _buffer(seed=1)
    b.load_state_dict(a.state_dict())
    x, y = a.sample(16), b.sample(16)
    assert torch.equal(x.indices, y.indices) and torch.equal(x.rewards, y.rewards)


def test_from_config_rebuilds_the_settings():
    a = _buffer()
    b = HippocampalReplayBuffer.from_config(a.config(), memory=MemoryStore.from_config(a.memory.config()), encoder=None)
    ours, theirs = a.config(), b.config()
    assert theirs.pop("featurizer") is None  # built from the first episode, which b has not seen
    ours.pop("featurizer")
    assert theirs == ours


def test_a_store_only_memory_loads_as_a_buffer_with_a_fresh_encoder(tmp_path):
    a = _buffer()
    a.memory.save(tmp_path / "store")
    loaded = load_saved_memory(HippocampalReplayBuffer, tmp_path / "store")
    assert isinstance(loaded, HippocampalReplayBuffer) and len(loaded) == len(a) == 24
    saved = a.save(tmp_path / "whole")
    again = HippocampalReplayBuffer.load_memory_from_hub(saved)  # a local path: no Hub involved
    assert torch.equal(torch.as_tensor(again.memory.keys_np), torch.as_tensor(a.memory.keys_np))


def test_load_memory_from_hub_on_a_buffer_replaces_its_memory_in_place(tmp_path):
    source = _buffer(seed=1)
    saved = source.save(tmp_path / "src")
    target = _buffer(seed=2)
    target.use_value_targets(gamma=0.9, n_steps=2)
    encoder, old = target.encoder, target.memory
    memory = target.load_memory_from_hub(saved)  # on an instance: the seed's in-place semantics
    assert isinstance(memory, MemoryStore) and target.memory is memory and memory is not old
    assert target.encoder is encoder and len(target) == len(source) == 24
    # Keys are re-encoded with the buffer's own encoder, so its queries match its keys.
    rows, _ = memory.rows_of(memory.live_slots())
    expected = encoder.encode_keys(memory.features(rows, target.featurizer))
    assert torch.allclose(torch.as_tensor(memory.keys_np)[rows].float(), expected, atol=1e-3)  # float16 keys
    batch = target.sample(32, query_state=torch.randn(3))
    assert batch.observations.shape == (32, 3) and batch.discounts is not None
    assert target.targets.store is memory and target.semantic_sampler.store is memory
    # The old store no longer feeds the buffer's parts, and the new one feeds only this buffer's.
    assert not old.listeners
    assert all(getattr(part, "store", None) is memory for part in memory.listeners)
    assert target.semantic_sampler in memory.listeners and len(memory.listeners) == 2  # + the returns table


def test_replace_memory_refuses_a_memory_of_another_width():
    import pytest

    from hippogym.errors import DimensionMismatchError, ValidationError

    target = _buffer()
    with pytest.raises(DimensionMismatchError, match="embed_dim"):
        target.replace_memory(MemoryStore(embed_dim=8, capacity=100))
    with pytest.raises(ValidationError, match="memory"):
        target.replace_memory("not a store")
    assert len(target) == 24
