"""Tiny deterministic environments for the wrapper tests."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from hippogym import HippocampalReplayBuffer


class CounterEnv(gym.Env):
    """Observation ``[env_id, episode, step]``; episode ``e`` lasts ``lengths[e % len(lengths)]`` steps.

    Even episodes end terminated (``is_success=True``), odd ones truncated (``is_success=False``).
    Reward ``10 * step + action`` ties each reward to its step and action. ``info["t"]`` is the step
    count after the step (``0`` at reset).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, env_id: int = 0, lengths: tuple[int, ...] = (3,)) -> None:
        self.env_id = env_id
        self.lengths = tuple(lengths)
        self.observation_space = spaces.Box(-1.0, 1e4, (3,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.episode = -1
        self.t = 0

    def _obs(self) -> np.ndarray:
        return np.array([self.env_id, self.episode, self.t], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.episode += 1
        self.t = 0
        return self._obs(), {"t": 0, "reset": True}

    def step(self, action):
        self.t += 1
        end = self.t >= self.lengths[self.episode % len(self.lengths)]
        terminated = end and self.episode % 2 == 0
        truncated = end and self.episode % 2 == 1
        info: dict[str, Any] = {"t": self.t}
        if end:
            info["is_success"] = bool(terminated)
        return self._obs(), float(10 * (self.t - 1) + int(action)), terminated, truncated, info


class SpaceEnv(gym.Env):
    """Random observations of any space (seeded), fixed-length episodes ending by truncation."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, length: int = 4) -> None:
        self.observation_space = observation_space
        self.action_space = action_space
        self.length = length
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.observation_space.seed(int(self.np_random.integers(2**31)))
        self.t = 0
        return self.observation_space.sample(), {}

    def step(self, action):
        self.t += 1
        reward = float(self.np_random.normal())
        return self.observation_space.sample(), reward, False, self.t >= self.length, {}


class SuccessKeyEnv(gym.Wrapper):
    """Reports the outcome as ``info["success"]`` (as PointMaze does) instead of ``is_success``."""

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return obs, {k: v for k, v in info.items() if k != "is_success"}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        info = dict(info)
        info["success"] = info.pop("is_success")
        return obs, reward, terminated, truncated, info


@pytest.fixture
def counter_env_cls():
    return CounterEnv


@pytest.fixture
def space_env_cls():
    return SpaceEnv


@pytest.fixture
def make_buffer():
    def make(**kw):
        kw.setdefault("capacity", 5000)
        kw.setdefault("embed_dim", 8)
        kw.setdefault("seed", 0)
        return HippocampalReplayBuffer(**kw)

    return make


@pytest.fixture
def success_key_env_cls():
    """A wrapper that reports the outcome as ``info["success"]`` instead of ``is_success``."""
    return SuccessKeyEnv
