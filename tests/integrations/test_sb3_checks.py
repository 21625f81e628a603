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


def _fill(buf, steps=40, n=2, seed=0):  # 80 transitions: below the capacity of 100
    rng = np.random.default_rng(seed)
    obs = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
    for t in range(steps):
        nxt = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
        done = rng.random(n) < 0.15
        infos = [{"is_success": bool(d and rng.random() < 0.5), "TimeLimit.truncated": bool(d and t % 2)} for d in done]
        buf.add(obs, nxt, rng.integers(0, 2, (n, 1)), rng.normal(size=n).astype(np.float32), done, infos)
        obs = nxt


@pytest.mark.parametrize("n_envs, path", [(2, "add_batch_trusted"), (1, "add_trusted")])
def test_checked_once_steps_skip_the_segmenters_checks_and_store_the_same(monkeypatch, n_envs, path):
    """Vector steps take the unchecked batch path, single-env steps the unchecked single-stream path."""
    fast, slow = _buffer(n_envs=n_envs), _buffer(n_envs=n_envs)
    calls = []
    trusted = getattr(fast.adapter.segmenter, path)
    monkeypatch.setattr(fast.adapter.segmenter, path, lambda *a: calls.append(1) or trusted(*a))
    monkeypatch.setattr(slow.adapter, "_trusted_layout", lambda *a: False)
    _fill(fast, steps=80 // n_envs, n=n_envs)
    _fill(slow, steps=80 // n_envs, n=n_envs)
    assert len(calls) == 80 // n_envs - 1  # every step after the first, which fixes the layout
    fast.flush(), slow.flush()
    a, b = fast.hippo.memory, slow.hippo.memory
    hw = a.high_water
    assert hw == b.high_water == len(fast) > 0
    for name in ("actions", "rewards", "terminated", "truncated", "row_slot"):
        assert np.array_equal(getattr(a, name)[:hw], getattr(b, name)[:hw]), name
    assert np.array_equal(a.obs["obs"][:hw], b.obs["obs"][:hw])
    assert np.array_equal(a.next_obs["obs"][:hw], b.next_obs["obs"][:hw])
    assert [(u.episode_id, u.outcome) for u in a.episodes()] == [(u.episode_id, u.outcome) for u in b.episodes()]
    assert any(u.outcome for u in a.episodes())  # success flags came through the info dicts


def test_a_step_outside_the_checked_layout_goes_through_the_checks():
    buf = _buffer()
    _step(buf, np.zeros((1, 3), np.float32), done=False)
    with pytest.raises(ValidationError, match="obs"):
        buf.add(np.zeros((1, 3), np.float64) + np.nan, np.zeros((1, 3), np.float32), np.zeros((1, 1)), np.zeros(1),
                np.zeros(1, bool), [{}])
    _step(buf, np.zeros((1, 3), np.float64), done=True)  # float64: cast to the space's float32, then stored
    buf.flush()
    assert len(buf) == 2 and buf.hippo.memory.obs["obs"].dtype.is_floating_point
