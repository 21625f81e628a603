"""n-step targets equal Stable-Baselines3's NStepReplayBuffer on the same transitions."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

from hippogym.errors import ValidationError
from hippogym.replay.nstep import nstep_targets

sb3_buffers = pytest.importorskip("stable_baselines3.common.buffers")


def _episodes(rng: np.random.Generator, n_episodes: int):
    """Random episodes: (obs [T+1, 3], actions [T], rewards [T], terminated_at_end, truncated_at_end)."""
    out = []
    for i in range(n_episodes):
        length = int(rng.integers(1, 9))
        obs = rng.normal(size=(length + 1, 3)).astype(np.float32)
        out.append((obs, rng.integers(0, 2, size=length), rng.normal(size=length).astype(np.float32), i % 3 != 0))
    return out


@pytest.mark.parametrize("n", [1, 3, 5])
@pytest.mark.parametrize("gamma", [0.9, 0.99])
def test_matches_sb3_nstep_replay_buffer(n, gamma):
    rng = np.random.default_rng(n)
    episodes = _episodes(rng, 12)
    total = sum(len(e[1]) for e in episodes)
    sb3 = sb3_buffers.NStepReplayBuffer(
        total + 1, spaces.Box(-10, 10, (3,)), spaces.Discrete(2), device="cpu", n_steps=n, gamma=gamma
    )
    rewards, term, trunc, next_obs, ends = [], [], [], [], []
    for obs, actions, rew, terminated in episodes:
        length = len(actions)
        for t in range(length):
            done = t == length - 1
            info = {"TimeLimit.truncated": done and not terminated}
            sb3.add(obs[t][None], obs[t + 1][None], np.array([actions[t]]), np.array([rew[t]]), np.array([done]), [info])
        rewards.append(rew)
        term.append(np.arange(length) == length - 1 if terminated else np.zeros(length, bool))
        trunc.append(np.arange(length) == length - 1 if not terminated else np.zeros(length, bool))
        next_obs.append(obs[1:])
        ends.append(np.full(length, sum(len(x) for x in rewards)))
    rewards, term, trunc = np.concatenate(rewards), np.concatenate(term), np.concatenate(trunc)
    next_obs, ends = np.concatenate(next_obs), np.concatenate(ends)
    rows = np.arange(total)
    expected = sb3._get_samples(rows)
    got = nstep_targets(rows, ends, rewards, term, trunc, n, gamma)
    np.testing.assert_allclose(got.rewards, expected.rewards.numpy().ravel(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got.discounts, expected.discounts.numpy().ravel(), rtol=1e-6)
    np.testing.assert_array_equal(got.terminated.astype(np.float32), expected.dones.numpy().ravel())
    np.testing.assert_allclose(next_obs[got.last_rows], expected.next_observations.numpy())


def test_hand_computed_case():
    # One unit of 4 rows, terminal at its end; n = 3, gamma = 0.5.
    rewards = np.array([1.0, 2.0, 4.0, 8.0])
    term = np.array([False, False, False, True])
    trunc = np.zeros(4, bool)
    got = nstep_targets(np.arange(4), np.full(4, 4), rewards, term, trunc, 3, 0.5)
    np.testing.assert_allclose(got.rewards, [1 + 1 + 1, 2 + 2 + 2, 4 + 4, 8])
    np.testing.assert_array_equal(got.last_rows, [2, 3, 3, 3])
    np.testing.assert_array_equal(got.steps, [3, 3, 2, 1])
    np.testing.assert_array_equal(got.terminated, [False, True, True, True])
    np.testing.assert_allclose(got.discounts, [0.125, 0.125, 0.25, 0.5])


def test_segment_cut_bootstraps_like_truncation():
    # A unit cut by a segmenter: neither flag set at its last row.
    got = nstep_targets(np.array([0]), np.array([2]), np.array([1.0, 1.0]), np.zeros(2, bool), np.zeros(2, bool), 5, 0.9)
    assert got.steps.tolist() == [2] and got.truncated.tolist() == [True] and got.terminated.tolist() == [False]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_n_is_a_typed_error(bad):
    with pytest.raises(ValidationError, match="n_steps"):
        nstep_targets(np.array([0]), np.array([1]), np.zeros(1), np.zeros(1, bool), np.zeros(1, bool), bad, 0.9)
