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
