"""HippoReplayBuffer with keys over windows: the default query is each env's own recent window."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

from hippogym import FeatureConfig, ObservationWindow
from hippogym.integrations.sb3 import HippoReplayBuffer


def make(context, n_envs=2):
    return HippoReplayBuffer(
        1_000, spaces.Box(-10, 10, (2,), np.float32), spaces.Discrete(2), device="cpu", n_envs=n_envs,
        embed_dim=8, seed=0, hippo_kwargs=dict(features=FeatureConfig(context=context)),
    )


def step(rb, t, done=(False, False)):
    obs = np.array([[t, 0.0], [t, 1.0]], dtype=np.float32)
    rb.add(obs, obs + [1.0, 0.0], np.zeros((2, 1)), np.zeros(2), np.array(done), [{}, {}])


def test_the_recent_query_is_each_envs_window_of_its_current_episode():
    rb = make(context=3)
    for t in range(4):
        step(rb, t)
    windows = rb.adapter.recent_query()
    assert all(isinstance(w, ObservationWindow) for w in windows) and len(windows) == 2
    assert np.array_equal(np.stack(windows[0].observations), [[2, 0], [3, 0], [4, 0]])  # the last 3, env 0
    assert np.array_equal(np.stack(windows[1].observations)[:, 1], [1, 1, 1])  # env 1's own
    step(rb, 4, done=(True, False))  # env 0's episode ends: its next window starts afresh
    step(rb, 10)
    assert np.array_equal(np.stack(rb.adapter.recent_query()[0].observations), [[10, 0], [11, 0]])
    emb = rb.adapter.hippo.embed_queries(rb.adapter.recent_query())
    assert emb.shape == (2, 8)
    rb.adapter.reset()
    assert rb.adapter.recent_query() is None


def test_a_window_of_a_stored_episode_finds_that_episode():
    rb = make(context=3, n_envs=1)
    for t in range(5):
        obs = np.array([[t, 5.0]], dtype=np.float32)
        rb.add(obs, obs + [1.0, 0.0], np.zeros((1, 1)), np.zeros(1), np.array([t == 4]), [{}])
    window = ObservationWindow([np.array([t, 5.0], np.float32) for t in range(3)])  # steps 0..2 of it
    result = rb.adapter.hippo.retrieve(window, top_k=1)
    assert float(result.scores[0, 0]) == pytest.approx(1.0, abs=1e-5)
    assert len(rb.sample(4).observations) == 4
