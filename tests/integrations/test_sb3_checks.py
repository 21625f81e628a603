"""The SB3 adapter's input checks: bad steps are refused before anything is stored."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

pytest.importorskip("stable_baselines3")

from hippogym.errors import ValidationError
from hippogym.integrations.sb3 import HippoReplayBuffer

OBS = spaces.Box(-1, 1, (3,), dtype=np.float32)


def _buffer(n_envs=1):
    return HippoReplayBuffer(100, OBS, spaces.Discrete(2), device="cpu", n_envs=n_envs, embed_dim=8, seed=0)


def _step(buf, obs, reward=0.0, done=True, n=1):
    buf.add(obs, np.zeros((n, 3), np.float32), np.zeros((n, 1)), np.full(n, reward), np.full(n, done), [{}] * n)


@pytest.mark.parametrize(
    "obs, reward, field",
    [
        (np.array([[np.nan, 0, 0]], np.float32), 0.0, "obs"),
        (np.array([[np.inf, 0, 0]], np.float32), 0.0, "obs"),
        (np.zeros((1, 3), np.float32), float("nan"), "reward"),
        (np.zeros((1, 4), np.float32), 0.0, "obs"),
    ],
)
def test_refused_step_changes_nothing(obs, reward, field):
    buf = _buffer()
    _step(buf, np.zeros((1, 3), np.float32))
    before = (len(buf), buf.num_received, buf.num_pending)
    with pytest.raises(ValidationError, match=field):
        _step(buf, obs, reward)
    assert (len(buf), buf.num_received, buf.num_pending) == before


def test_wrong_number_of_envs_is_refused():
    buf = _buffer(n_envs=2)
    with pytest.raises(ValidationError, match="obs"):
        _step(buf, np.zeros((3, 3), np.float32), n=2)


def test_one_env_unbatched_arrays_are_a_batch_of_one():
    buf = _buffer()
    buf.adapter.add(np.zeros(3, np.float32), np.ones(3, np.float32), np.int64(1), 1.0, True)
    assert len(buf) == 1
    ep = next(buf.hippo.memory.episodes())
    assert ep.states.shape == (1, 3) and float(ep.rewards[0]) == 1.0


def test_observations_of_another_kind_are_refused():
    buf = HippoReplayBuffer(100, spaces.Box(0, 255, (3,), dtype=np.uint8), spaces.Discrete(2), device="cpu",
                            embed_dim=8, seed=0)
    with pytest.raises(ValidationError, match="dtype uint8"):
        buf.add(np.full((1, 3), 0.5), np.zeros((1, 3), np.uint8), np.zeros((1, 1)), np.zeros(1), np.ones(1), [{}])
    assert buf.num_received == 0
    buf.add(np.full((1, 3), 7, np.int64), np.zeros((1, 3), np.uint8), np.zeros((1, 1)), np.zeros(1), np.ones(1), [{}])
    assert len(buf) == 1  # int64 -> uint8 is the same kind: accepted, as SB3 does
