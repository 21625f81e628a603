"""replay/buffer_writes.py: episodes enter the buffer in one encoder pass, checked against the layout."""

from __future__ import annotations

import pytest
import torch

from hippogym import Episode, HippocampalReplayBuffer
from hippogym.errors import ValidationError
from hippogym.replay.buffer_writes import BufferWriteMixin


def _episode(n: int, obs_dim: int = 3) -> Episode:
    return Episode(observations=torch.randn(n + 1, obs_dim), actions=torch.zeros(n), rewards=torch.ones(n))


def test_the_first_episode_builds_the_featurizer_and_batches_match_single_adds():
    assert issubclass(HippocampalReplayBuffer, BufferWriteMixin)
    torch.manual_seed(0)
    episodes = [_episode(n) for n in (4, 6, 5)]
    one, many = HippocampalReplayBuffer(seed=0), HippocampalReplayBuffer(seed=0)
    assert one.featurizer is None
    ids = [one.add_episode(e) for e in episodes]
    assert one.featurizer is not None
    assert many.add_episodes(episodes) == ids
    assert len(one) == len(many) == 15 and one.num_episodes == many.num_episodes == 3
    assert torch.allclose(torch.as_tensor(one.memory.keys_np), torch.as_tensor(many.memory.keys_np), atol=1e-6)


def test_an_episode_of_another_layout_is_refused_by_name():
    buffer = HippocampalReplayBuffer(seed=0)
    buffer.add_episode(_episode(4))
    with pytest.raises(ValidationError):
        buffer.add_episode(_episode(4, obs_dim=5))
    assert len(buffer) == 4
