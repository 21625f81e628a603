"""Per-call argument checks of HippocampalReplayBuffer: refused calls leave the buffer unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hippogym import Episode, HippocampalReplayBuffer
from hippogym.errors import ValidationError


def _episode(g, T=6, i=0, reward_nan=False):
    rewards = torch.randn(T, generator=g)
    if reward_nan:
        rewards[2] = float("nan")
    return Episode(
        states=torch.randn(T + 1, 3, generator=g), actions=torch.randint(0, 3, (T,), generator=g),
        rewards=rewards, terminated=[0] * (T - 1) + [1], truncated=[0] * T, episode_id=i,
    )


def _buffer(seed=0):
    buffer = HippocampalReplayBuffer(capacity=200, embed_dim=8, seed=seed)
    g = torch.Generator().manual_seed(seed)
    for i in range(10):
        buffer.add_episode(_episode(g, i=i))
    return buffer


def _unchanged(call):
    """The refused call leaves len and the next seeded sample as on an untouched twin."""
    buffer, twin = _buffer(), _buffer()
    with pytest.raises(ValidationError) as info:
        call(buffer)
    assert len(buffer) == len(twin)
    a, b = buffer.sample(16), twin.sample(16)
    assert torch.equal(a.rewards, b.rewards) and torch.equal(a.actions, b.actions)
    return info.value


@pytest.mark.parametrize("bad", [0, -3, True, 2.0, "8", np.float64(4)])
def test_bad_batch_size(bad):
    assert _unchanged(lambda b: b.sample(bad)).field == "batch_size"


@pytest.mark.parametrize("bad", [0, -1, False, 1.5])
def test_bad_top_k(bad):
    q = torch.zeros(3)
    assert _unchanged(lambda b: b.sample(8, query_state=q, top_k=bad)).field == "top_k"
    assert _unchanged(lambda b: b.retrieve(q, top_k=bad)).field == "top_k"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nonfinite_query(bad):
    q = torch.tensor([0.0, bad, 1.0])
    assert _unchanged(lambda b: b.sample(8, query_state=q)).field == "query_state"
    assert _unchanged(lambda b: b.retrieve(q)).field == "query_state"


def test_wrong_query_shape():
    _unchanged(lambda b: b.retrieve(torch.zeros(5, 7)))


def test_nan_reward_episode():
    g = torch.Generator().manual_seed(99)
    with pytest.raises(ValidationError):  # the constructor refuses it
        _episode(g, reward_nan=True)
    episode = _episode(g)
    episode.rewards[2] = float("nan")  # mutated after construction: the buffer's edge still refuses it
    assert _unchanged(lambda b: b.add_episode(episode)).field == "episode.rewards"


def test_valid_calls_still_work():
    buffer = _buffer()
    assert buffer.sample(np.int64(4)).rewards.shape[0] == 4
    assert buffer.retrieve(torch.zeros(3), top_k=2).slots.shape[-1] == 2
