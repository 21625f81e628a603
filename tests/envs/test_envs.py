"""Tests for the built-in hippogym environments."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from hippogym.envs import (
    ENV_IDS,
    CueRecallCorridorEnv,
    CurriculumCorridorEnv,
    SparseCorridorEnv,
    register_envs,
)
from hippogym.errors import HippoError, ResetNeededError, ValidationError

FORWARD, TURN_LEFT, TURN_RIGHT = 0, 1, 2
LEFT, RIGHT = 0, 1


@pytest.fixture(autouse=True, scope="module")
def _registered() -> Iterator[None]:
    register_envs()
    yield


def _no_warnings(fn: Callable[[], Any]) -> Any:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn()
    messages = [str(w.message) for w in caught]
    assert messages == [], messages
    return result


def _rollout(env: gymnasium.Env, seed: int, actions: list[int]) -> list[tuple[Any, ...]]:
    obs, info = env.reset(seed=seed)
    trace: list[tuple[Any, ...]] = [(obs.copy(), dict(info))]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        trace.append((obs.copy(), reward, terminated, truncated, dict(info)))
        if terminated or truncated:
            break
    return trace


def _assert_same_trace(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> None:
    assert len(a) == len(b)
    for step_a, step_b in zip(a, b):
        np.testing.assert_array_equal(step_a[0], step_b[0])
        assert step_a[1:] == step_b[1:]


# --------------------------------------------------------------------------- API

CHECK_CASES = [
    ("hippogym/SparseCorridor-v0", {}),
    ("hippogym/SparseCorridor-v0", {"length": 5, "slip": 0.3, "obs_mode": "scalar"}),
    ("hippogym/CueRecall-v0", {}),
    ("hippogym/CueRecall-v0", {"length": 6, "noise": 0.2, "cue_steps": 3}),
    ("hippogym/CurriculumCorridor-v0", {}),
    ("hippogym/CurriculumCorridor-v0", {"lengths": (3, 7), "slip": 0.1, "window": 2}),
]


@pytest.mark.parametrize(("env_id", "kwargs"), CHECK_CASES)
def test_check_env_passes_without_warnings(env_id: str, kwargs: dict[str, Any]) -> None:
    env = _no_warnings(lambda: gymnasium.make(env_id, **kwargs))
    _no_warnings(lambda: check_env(env.unwrapped))
    env.close()


@pytest.mark.parametrize(("env_id", "kwargs"), CHECK_CASES)
def test_observations_in_space_with_declared_dtype(env_id: str, kwargs: dict[str, Any]) -> None:
    env = gymnasium.make(env_id, **kwargs)
    env.action_space.seed(0)
    for seed in range(5):
        obs, _ = env.reset(seed=seed)
        done = False
        while not done:
            assert obs.dtype == env.observation_space.dtype
            assert obs in env.observation_space
            obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
            done = terminated or truncated
        assert obs in env.observation_space


def test_register_envs_is_idempotent_and_has_no_time_limit() -> None:
    assert register_envs() == []
    assert register_envs() == []
    for env_id, entry_point in ENV_IDS.items():
        spec = gymnasium.registry[env_id]
        assert spec.entry_point == entry_point
        assert spec.max_episode_steps is None
    env = gymnasium.make("hippogym/SparseCorridor-v0")
    assert isinstance(env.unwrapped, SparseCorridorEnv)
    assert isinstance(gymnasium.make("hippogym/CueRecall-v0").unwrapped, CueRecallCorridorEnv)
    assert isinstance(
        gymnasium.make("hippogym/CurriculumCorridor-v0").unwrapped, CurriculumCorridorEnv
    )


@pytest.mark.parametrize(
    "env",
    [
        SparseCorridorEnv(length=6, render_mode="ansi"),
        CueRecallCorridorEnv(length=4, render_mode="ansi"),
        CurriculumCorridorEnv(lengths=(3, 5), render_mode="ansi"),
    ],
)
def test_ansi_render_and_step_guards(env: gymnasium.Env) -> None:
    with pytest.raises(ResetNeededError, match="before reset"):
        env.step(0)
    env.reset(seed=0)
    text = env.render()
    assert isinstance(text, str) and "A" in text
    with pytest.raises(ValidationError, match="`action`") as excinfo:
        env.step(7)
    assert excinfo.value.field == "action" and excinfo.value.got == "7"


# ---------------------------------------------------------------- sparse corridor


@pytest.mark.parametrize("obs_mode", ["onehot", "scalar"])
def test_corridor_always_right_succeeds(obs_mode: str) -> None:
    length = 12
    env = SparseCorridorEnv(length=length, obs_mode=obs_mode)
    obs, info = env.reset(seed=0)
    assert info == {"is_success": False, "position": 0}
    total, steps = 0.0, 0
    terminated = truncated = False
    while not (terminated or truncated):
        obs, reward, terminated, truncated, info = env.step(RIGHT)
        total += reward
        steps += 1
        assert reward == (1.0 if terminated else 0.0)
    assert steps == length - 1
    assert total == 1.0
    assert terminated and not truncated
    assert info == {"is_success": True, "position": length - 1}
    expected = np.zeros(length, np.float32)
    expected[-1] = 1.0
    if obs_mode == "scalar":
        expected = np.array([1.0], np.float32)
    np.testing.assert_array_equal(obs, expected)
    with pytest.raises(ResetNeededError, match="episode is over"):
        env.step(RIGHT)


def test_corridor_truncates_at_max_steps() -> None:
    env = SparseCorridorEnv(length=10, max_steps=5)
    env.reset(seed=0)
    results = [env.step(LEFT) for _ in range(5)]
    assert all(not r[2] and not r[3] for r in results[:-1])
    _, reward, terminated, truncated, info = results[-1]
    assert truncated and not terminated and reward == 0.0
    assert info["is_success"] is False
    assert SparseCorridorEnv(length=7).max_steps == 28


def test_corridor_is_deterministic_given_seed() -> None:
    rng = np.random.default_rng(0)
    actions = [int(a) for a in rng.integers(0, 2, size=60)]
    env_a = SparseCorridorEnv(length=8, slip=0.4)
    env_b = SparseCorridorEnv(length=8, slip=0.4)
    _assert_same_trace(_rollout(env_a, 5, actions), _rollout(env_b, 5, actions))
    _assert_same_trace(_rollout(env_a, 5, actions), _rollout(env_a, 5, actions))
    positions = {
        tuple(step[-1]["position"] for step in _rollout(env_a, seed, actions)) for seed in range(5)
    }
    assert len(positions) > 1, "slip should make different seeds diverge"


def test_corridor_slip_flips_actions() -> None:
    env = SparseCorridorEnv(length=5, slip=1.0)
    env.reset(seed=0)
    env.step(RIGHT)
    _, _, _, _, info = env.step(LEFT)
    assert info["position"] == 1


def test_corridor_random_policy_rarely_succeeds() -> None:
    env = SparseCorridorEnv(length=30)
    rng = np.random.default_rng(0)
    successes = 0
    for seed in range(200):
        env.reset(seed=seed)
        done = False
        while not done:
            _, _, terminated, truncated, info = env.step(int(rng.integers(2)))
            done = terminated or truncated
        successes += info["is_success"]
    assert successes / 200 < 0.1


# ------------------------------------------------------------------------- T-maze


def _run_tmaze(
    env: CueRecallCorridorEnv, seed: int, choose: Callable[[np.ndarray, int | None], int]
) -> tuple[list[np.ndarray], float, dict[str, Any], bool, bool]:
    """Walk to the junction, then turn with ``choose(obs, remembered_cue)``."""
    obs, info = env.reset(seed=seed)
    observations = [obs]
    remembered = int(np.argmax(obs[1:3])) if obs[1:3].any() else None
    total = 0.0
    while True:
        action = choose(obs, remembered) if obs[3] == 1.0 else FORWARD
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        total += reward
        if terminated or truncated:
            return observations, total, info, terminated, truncated


@pytest.mark.parametrize("cue_steps", [1, 3])
def test_tmaze_cue_only_visible_during_first_cue_steps(cue_steps: int) -> None:
    env = CueRecallCorridorEnv(length=6, cue_steps=cue_steps, noise=0.1)
    for seed in range(10):
        observations, *_ = _run_tmaze(env, seed, lambda _o, c: TURN_LEFT)
        cue = env.cue
        for index, obs in enumerate(observations):
            expected = np.zeros(2, np.float32)
            if index < cue_steps:
                expected[cue] = 1.0
            np.testing.assert_array_equal(obs[1:3], expected)
        assert observations[-1][3] == 1.0  # still at the junction after the turn
        assert not observations[-2][1:3].any()  # no cue at the junction


@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_tmaze_cue_following_always_wins_and_opposite_always_loses(noise: float) -> None:
    env = CueRecallCorridorEnv(length=5, noise=noise)
    cues = set()
    for seed in range(40):
        _, total, info, terminated, truncated = _run_tmaze(env, seed, lambda _o, c: TURN_LEFT + c)
        assert total == 1.0 and terminated and not truncated and info["is_success"]
        cues.add(info["cue"])
        _, total, info, terminated, truncated = _run_tmaze(env, seed, lambda _o, c: TURN_RIGHT - c)
        assert total == -1.0 and terminated and not truncated and not info["is_success"]
    assert cues == {0, 1}


def test_tmaze_memoryless_policy_is_at_chance() -> None:
    env = CueRecallCorridorEnv(length=8)

    def memoryless(obs: np.ndarray, _remembered: int | None) -> int:
        # Uses only the current observation; the cue is gone at the junction.
        return TURN_LEFT + int(obs[2] > obs[1])

    wins = sum(_run_tmaze(env, seed, memoryless)[2]["is_success"] for seed in range(200))
    assert 0.35 <= wins / 200 <= 0.65


def test_tmaze_turning_early_does_nothing_and_truncates() -> None:
    env = CueRecallCorridorEnv(length=4, max_steps=6)
    obs0, _ = env.reset(seed=1)
    for step in range(1, 7):
        obs, reward, terminated, truncated, info = env.step(TURN_LEFT)
        assert reward == 0.0 and not terminated and info["position"] == 0
        assert obs[0] == obs0[0]
        assert truncated == (step == 6)
    assert CueRecallCorridorEnv(length=7).max_steps == 21


def test_tmaze_forced_cue_and_layout() -> None:
    env = CueRecallCorridorEnv(length=4)
    obs, info = env.reset(seed=0, options={"cue": 1})
    assert info == {"is_success": False, "cue": 1, "position": 0}
    np.testing.assert_array_equal(obs, np.array([0.0, 0.0, 1.0, 0.0], np.float32))
    assert CueRecallCorridorEnv(noise=0.5).observation_space.shape == (5,)
    with pytest.raises(ValidationError, match="cue") as excinfo:
        env.reset(options={"cue": 2})
    assert excinfo.value.field == "options['cue']"


def test_tmaze_is_deterministic_given_seed() -> None:
    actions = [FORWARD] * 3 + [TURN_LEFT, FORWARD, FORWARD, TURN_RIGHT]
    env_a = CueRecallCorridorEnv(length=5, noise=0.2, cue_steps=2)
    env_b = CueRecallCorridorEnv(length=5, noise=0.2, cue_steps=2)
    for seed in range(5):
        _assert_same_trace(_rollout(env_a, seed, actions), _rollout(env_b, seed, actions))
    cues = {env_a.reset(seed=seed)[1]["cue"] for seed in range(20)}
    assert cues == {0, 1}


# --------------------------------------------------------------------- curriculum


def _play(env: CurriculumCorridorEnv, action: int) -> dict[str, Any]:
    env.reset()
    while True:
        _, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            return info


def test_curriculum_promotes_and_keeps_observation_space() -> None:
    env = CurriculumCorridorEnv(lengths=(3, 5, 8), promote_at=0.75, window=4)
    space = env.observation_space
    assert space.shape == (9,)
    obs, info = env.reset(seed=0)
    assert info["level"] == 0 and env.current_length == 3
    assert obs[-1] == pytest.approx(3 / 8)

    for _ in range(2):
        assert _play(env, LEFT)["is_success"] is False  # failures (truncated)
    for _ in range(2):
        assert _play(env, RIGHT)["promoted"] is False  # window full, 2/4 < 0.75
    assert env.level == 0
    last = _play(env, RIGHT)  # oldest failure drops out: 3/4 >= 0.75
    assert last["promoted"] is True and last["level"] == 0
    assert env.level == 1 and env.current_length == 5

    obs, info = env.reset()
    assert info["level"] == 1 and env.max_steps == 20
    assert obs.shape == space.shape and obs in space and obs[-1] == pytest.approx(5 / 8)
    assert env.observation_space is space
    for _ in range(4):
        _play(env, RIGHT)
    for _ in range(8):
        _play(env, RIGHT)  # stays at the top level
    assert env.level == 2
    obs, info = env.reset()
    assert info["level"] == 2 and obs in space


def test_curriculum_set_level_for_retention() -> None:
    env = CurriculumCorridorEnv(lengths=(4, 6), window=1, promote_at=1.0, auto_promote=False)
    env.set_level(1)
    _, info = env.reset(seed=0)
    assert info["level"] == 1 and env.current_length == 6
    env.set_level(0)
    assert _play(env, RIGHT)["is_success"] and env.level == 0  # frozen: no promotion
    _, info = env.reset(options={"level": 1})
    assert info["level"] == 1
    for bad in (2, -1, 0.5):
        with pytest.raises(ValidationError, match="`level`") as excinfo:
            env.set_level(bad)  # type: ignore[arg-type]
        assert excinfo.value.field == "level"


def test_curriculum_is_deterministic_given_seed() -> None:
    actions = [RIGHT, LEFT, RIGHT, RIGHT, RIGHT, LEFT, RIGHT, RIGHT]
    env_a = CurriculumCorridorEnv(lengths=(4, 6), slip=0.3)
    env_b = CurriculumCorridorEnv(lengths=(4, 6), slip=0.3)
    for seed in range(5):
        _assert_same_trace(_rollout(env_a, seed, actions), _rollout(env_b, seed, actions))


# --------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("factory", "kwargs", "name"),
    [
        (SparseCorridorEnv, {"length": 1}, "length"),
        (SparseCorridorEnv, {"length": 3.0}, "length"),
        (SparseCorridorEnv, {"length": True}, "length"),
        (SparseCorridorEnv, {"max_steps": 0}, "max_steps"),
        (SparseCorridorEnv, {"slip": 1.5}, "slip"),
        (SparseCorridorEnv, {"slip": float("nan")}, "slip"),
        (SparseCorridorEnv, {"obs_mode": "pixels"}, "obs_mode"),
        (SparseCorridorEnv, {"render_mode": "human"}, "render_mode"),
        (CueRecallCorridorEnv, {"length": 1}, "length"),
        (CueRecallCorridorEnv, {"noise": -0.1}, "noise"),
        (CueRecallCorridorEnv, {"cue_steps": 0}, "cue_steps"),
        (CueRecallCorridorEnv, {"length": 4, "cue_steps": 5}, "cue_steps"),
        (CueRecallCorridorEnv, {"max_steps": -3}, "max_steps"),
        (CueRecallCorridorEnv, {"render_mode": "rgb_array"}, "render_mode"),
        (CurriculumCorridorEnv, {"lengths": ()}, "lengths"),
        (CurriculumCorridorEnv, {"lengths": (10, 5)}, "lengths"),
        (CurriculumCorridorEnv, {"lengths": (1, 5)}, "lengths"),
        (CurriculumCorridorEnv, {"lengths": "abc"}, "lengths"),
        (CurriculumCorridorEnv, {"promote_at": 0.0}, "promote_at"),
        (CurriculumCorridorEnv, {"promote_at": 1.2}, "promote_at"),
        (CurriculumCorridorEnv, {"window": 0}, "window"),
        (CurriculumCorridorEnv, {"max_steps_factor": 0}, "max_steps_factor"),
        (CurriculumCorridorEnv, {"auto_promote": 1}, "auto_promote"),
    ],
)
def test_bad_arguments_raise_value_error(
    factory: Callable[..., gymnasium.Env], kwargs: dict[str, Any], name: str
) -> None:
    with pytest.raises(ValidationError, match=rf"^Expected `{name}` to be .*, got .*\.$") as excinfo:
        factory(**kwargs)
    assert excinfo.value.field == name
    assert isinstance(excinfo.value, ValueError) and isinstance(excinfo.value, HippoError)


def test_error_message_format() -> None:
    with pytest.raises(ValidationError) as excinfo:
        SparseCorridorEnv(length=1)
    assert str(excinfo.value) == "Expected `length` to be an int >= 2, got 1."
    assert (excinfo.value.field, excinfo.value.expected, excinfo.value.got) == ("length", "an int >= 2", "1")
