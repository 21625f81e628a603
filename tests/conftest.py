"""Shared test setup: one thread (small networks run ~10x faster than with 2 here), no telemetry."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def make_episode():
    """Factory of random vector episodes (T+1 observations)."""

    def make(T: int = 20, obs_dim: int = 4, action_dim: int = 1, seed: int = 0, reward: float | None = None, **kw):
        g = torch.Generator().manual_seed(seed)
        from hippogym import Episode

        rewards = torch.randn(T, generator=g) if reward is None else torch.full((T,), float(reward))
        return Episode(
            states=torch.randn(T + 1, obs_dim, generator=g),
            actions=torch.randn(T, action_dim, generator=g),
            rewards=rewards,
            **kw,
        )

    return make
