"""Discounted returns-to-go over stored units against a hand-written recurrence."""

from __future__ import annotations

import numpy as np
import pytest

from hippogym import returns as R
from hippogym.errors import ValidationError


def _naive(rewards, starts, lengths, gamma):
    out = np.zeros_like(rewards, dtype=np.float64)
    for start, length in zip(starts, lengths):
        acc = 0.0
        for t in range(start + length - 1, start - 1, -1):
            acc = rewards[t] + gamma * acc
            out[t] = acc
    return out


def test_known_episode():
    # Sparse reward at the end of 4 steps, gamma 0.9: 0.729, 0.81, 0.9, 1.
    got = R.discounted_returns(np.array([0.0, 0.0, 0.0, 1.0]), [0], [4], 0.9)
    np.testing.assert_allclose(got, [0.729, 0.81, 0.9, 1.0])


@pytest.mark.parametrize("gamma", [0.0, 0.3, 0.9, 0.99, 0.999, 1.0])
def test_matches_recurrence_on_many_units(gamma):
    rng = np.random.default_rng(int(gamma * 1000))
    lengths = rng.integers(1, 2500, size=7)
    starts = np.cumsum(lengths) - lengths + 5  # rows 0..4 belong to no unit
    rewards = rng.normal(size=int(starts[-1] + lengths[-1] + 3)) * 10
    got = R.discounted_returns(rewards, starts, lengths, gamma)
    want = _naive(rewards, starts, lengths, gamma)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * np.abs(want).max())
    assert not got[:5].any()


def test_small_blocks_chain_exactly(monkeypatch):
    monkeypatch.setattr(R, "_block_size", lambda gamma: 3)
    rewards = np.arange(20, dtype=np.float64)
    np.testing.assert_allclose(R.discounted_returns(rewards, [0, 11], [11, 9], 0.8), _naive(rewards, [0, 11], [11, 9], 0.8))


def test_bootstrap_values_complete_a_partial_unit():
    got = R.discounted_returns(np.array([1.0, 1.0]), [0], [2], 0.5, bootstrap_values=np.array([4.0]))
    np.testing.assert_allclose(got, [1 + 0.5 + 0.25 * 4, 1 + 0.5 * 4])
    np.testing.assert_allclose(R.bootstrap_discounts(np.array([2]), 0.5), [0.25, 0.5])


@pytest.mark.parametrize("gamma", [-0.1, 1.5, "0.9", True])
def test_bad_gamma(gamma):
    with pytest.raises(ValidationError, match="gamma"):
        R.discounted_returns(np.zeros(2), [0], [2], gamma)


def test_units_outside_rewards_and_nan():
    with pytest.raises(ValidationError, match="starts/lengths"):
        R.discounted_returns(np.zeros(2), [1], [2], 0.9)
    with pytest.raises(ValidationError, match="rewards"):
        R.discounted_returns(np.array([np.nan]), [0], [1], 0.9)
