from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from hippogym import FixedWindowSegmenter, RecordEpisodes
from hippogym.envs import register_envs
from hippogym.errors import ValidationError
from hippogym.wrappers import SpaceConverter

SPACES = {
    "box": (spaces.Box(-1.0, 1.0, (3,), np.float32), spaces.Box(-2.0, 2.0, (2,), np.float32)),
    "discrete": (spaces.Discrete(7, start=2), spaces.Discrete(3)),
    "multidiscrete": (spaces.MultiDiscrete([3, 4]), spaces.MultiDiscrete([2, 5])),
    "multibinary": (spaces.MultiBinary(5), spaces.MultiBinary(3)),
    "dict": (
        spaces.Dict(
            {
                "pos": spaces.Box(-1.0, 1.0, (2,), np.float32),
                "inner": spaces.Dict({"k": spaces.Discrete(4), "m": spaces.MultiBinary(2)}),
            }
        ),
        spaces.Discrete(2),
    ),
    "image": (spaces.Box(0, 255, (6, 6, 3), np.uint8), spaces.Discrete(4)),
}
DTYPES = {
    "box": torch.float32,
    "discrete": torch.int64,
    "multidiscrete": torch.int64,
    "multibinary": torch.int8,
    "image": torch.uint8,
}


def flat(obs, prefix=""):
    """The documented stored form of a value: nested dict keys joined with '.'."""
    if isinstance(obs, dict):
        return {k2: v2 for k, v in obs.items() for k2, v2 in flat(v, prefix + k + ".").items()}
    return {prefix[:-1]: np.asarray(obs)}


def stored(x):
    return {k: v.numpy() for k, v in x.items()} if isinstance(x, dict) else {"": x.numpy()}


def equal_values(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(equal_values(a[k], b[k]) for k in a)
    return np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("kind", sorted(SPACES))
def test_records_every_space_kind_exactly_and_passes_returns_through(kind, space_env_cls, make_buffer):
    obs_space, act_space = SPACES[kind]
    buffer = make_buffer()
    env = RecordEpisodes(space_env_cls(obs_space, act_space), buffer)
    ref = space_env_cls(copy.deepcopy(obs_space), copy.deepcopy(act_space))  # spaces carry RNGs
    act_space.seed(0)
    produced = []
    for episode in range(3):
        obs, info = env.reset(seed=episode)
        ref_obs, ref_info = ref.reset(seed=episode)
        assert equal_values(obs, ref_obs) and info == ref_info
        steps, done = [], False
        while not done:
            action = act_space.sample()
            out = env.step(action)
            ref_out = ref.step(action)
            assert all(equal_values(a, b) for a, b in zip(out, ref_out))  # the wrapper changes nothing
            steps.append((obs, action, out[1], out[0]))
            obs, done = out[0], out[2] or out[3]
        produced.append(steps)

    units = list(buffer.memory.episodes())
    assert len(units) == 3 == env.episodes_recorded and env.transitions_recorded == 12
    for unit, steps in zip(units, produced):
        states, next_states = stored(unit.states), stored(unit.next_states)
        for t, (o, a, r, no) in enumerate(steps):
            assert equal_values({k: v[t] for k, v in states.items()}, flat(o))
            assert equal_values({k: v[t] for k, v in next_states.items()}, flat(no))
            assert np.array_equal(unit.actions[t].numpy(), np.asarray(a))
            assert unit.rewards[t].item() == pytest.approx(r)
        assert bool(unit.truncated[-1]) and not bool(unit.terminated.any())
        if kind in DTYPES:
            assert unit.states.dtype == DTYPES[kind]
    if kind == "dict":
        assert sorted(units[0].states) == ["inner.k", "inner.m", "pos"]
        assert units[0].states["inner.k"].dtype == torch.int64
    if kind == "discrete":
        assert units[0].states.shape == (4,) and units[0].actions.dtype == torch.int64


def test_time_limit_truncation_keeps_bootstrap_and_termination_is_distinct(make_buffer):
    buffer = make_buffer()
    env = RecordEpisodes(gym.make("CartPole-v1", max_episode_steps=8), buffer)
    obs, _ = env.reset(seed=0)
    done = False
    while not done:  # a balancing policy: survives the 8 steps, the TimeLimit truncates
        obs, _, terminated, truncated, _ = env.step(int(obs[2] > 0))
        done = terminated or truncated
    assert truncated and not terminated
    (unit,) = buffer.memory.episodes()
    assert len(unit) == 8 and bool(unit.truncated[-1]) and not bool(unit.terminated.any())
    assert np.array_equal(unit.next_states[-1].numpy(), obs)  # the real final observation
    env.close()
    env = RecordEpisodes(gym.make("CartPole-v1", max_episode_steps=100), buffer)
    env.reset(seed=1)
    done = False
    while not done:  # always push left: the pole falls, the episode terminates
        obs, _, terminated, truncated, _ = env.step(0)
        done = terminated or truncated
    unit = list(buffer.memory.episodes())[-1]
    assert bool(unit.terminated[-1]) and not bool(unit.truncated.any())
    assert np.array_equal(unit.next_states[-1].numpy(), obs)
    env.close()


def test_info_keys_success_and_segmenter():
    register_envs()
    from hippogym import HippocampalReplayBuffer

    buffer = HippocampalReplayBuffer(capacity=1000, embed_dim=8, seed=0)
    env = RecordEpisodes(
        gym.make("hippogym/CueRecall-v0", length=4), buffer, segmenter=FixedWindowSegmenter(3), info_keys=("position",)
    )
    for seed in range(2):
        env.reset(seed=seed)
        cue = env.unwrapped.cue
        for _ in range(4):
            env.step(0)
        env.step(1 + cue if seed == 0 else 2 - cue)  # succeed, then fail
    units = list(buffer.memory.episodes())
    assert [(u.episode_id, u.start_step, len(u)) for u in units] == [(0, 0, 3), (0, 3, 2), (1, 0, 3), (1, 3, 2)]
    assert [u.success for u in units] == [None, True, None, False]
    assert units[0].infos["position"].tolist() == [1, 2, 3]
    assert units[1].rewards.tolist() == [0.0, 1.0] and units[3].rewards.tolist() == [0.0, -1.0]


def test_reset_mid_episode_flush_and_record_toggle(counter_env_cls, make_buffer):
    buffer = make_buffer()
    env = RecordEpisodes(counter_env_cls(lengths=(5,)), buffer)
    env.reset()
    env.step(0)
    env.step(1)
    assert buffer.num_episodes == 0
    env.reset()  # abandons the episode: what was recorded is handed over, ending with neither flag
    (unit,) = buffer.memory.episodes()
    assert len(unit) == 2 and not bool(unit.terminated.any() or unit.truncated.any())
    assert unit.next_states[-1].tolist() == [0.0, 0.0, 2.0]
    env.step(0)
    assert env.flush() == [1] and env.flush() == []
    env.step(0)
    env.record = False  # pausing flushes the step in progress
    assert buffer.num_episodes == 3
    env.step(0)
    env.record = True
    env.step(0)  # still paused until the next reset
    assert buffer.num_episodes == 3 and len(buffer) == 4
    env.reset()
    env.step(0)
    env.close()  # close flushes
    assert buffer.num_episodes == 4
    assert env.episodes_recorded == 4 and env.transitions_recorded == 5


def test_steps_after_the_episode_ended_are_not_recorded(counter_env_cls, make_buffer):
    buffer = make_buffer()
    env = RecordEpisodes(counter_env_cls(lengths=(1,)), buffer)
    env.reset()
    env.step(0)
    env.step(0)  # the counter env allows it; the wrapper must not record it
    assert buffer.num_episodes == 1 and len(buffer) == 1 and env.flush() == []


def test_recorder_rejects_bad_arguments(counter_env_cls, make_buffer):
    with pytest.raises(ValidationError, match="buffer"):
        RecordEpisodes(counter_env_cls(), object())
    with pytest.raises(ValidationError, match="segmenter"):
        RecordEpisodes(counter_env_cls(), make_buffer(), segmenter="windows")
    with pytest.raises(ValidationError, match="Tuple"):
        RecordEpisodes(gym.make("Blackjack-v1"), make_buffer())


def test_space_converter_bounds_and_errors():
    conv = SpaceConverter(SPACES["dict"][0], "observation_space")
    assert conv.keys == ("inner.k", "inner.m", "pos") and conv.flat_dim == 5
    low, high = conv.flat_bounds()
    assert low.tolist() == [0, 0, 0, -1, -1] and high.tolist() == [3, 1, 1, 1, 1]
    img_low, img_high = SpaceConverter(SPACES["image"][0]).flat_bounds()
    assert img_low.max() == 0.0 and img_high.min() == 1.0
    batch = conv.batch({"pos": np.zeros((2, 2)), "inner": {"k": [1, 2], "m": np.ones((2, 2))}}, 2)
    assert batch["inner.k"].dtype == np.int64 and batch["pos"].shape == (2, 2)
    with pytest.raises(ValidationError, match="key 'k'"):
        conv.single({"pos": np.zeros(2), "inner": {"m": [0, 1]}})
    with pytest.raises(ValidationError, match="shape"):
        SpaceConverter(SPACES["box"][0]).single(np.zeros(4))
    with pytest.raises(ValidationError, match="Text"):
        SpaceConverter(spaces.Dict({"a": spaces.Text(4)}))


def test_recorder_passes_env_checker_and_spec_recreation(make_buffer):
    import warnings

    from gymnasium.utils.env_checker import check_env

    register_envs()
    buffer = make_buffer()
    env = RecordEpisodes(gym.make("hippogym/CueRecall-v0", length=3), buffer, segmenter=FixedWindowSegmenter(2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env, skip_render_check=True)
    assert buffer.num_episodes > 0
    again = gym.make(env.spec)  # recreated: same buffer, its own fresh segmenter
    assert again.buffer is buffer and again.segmenter is not env.segmenter and again.segmenter.n == 2


def test_success_is_read_from_the_success_key_too(success_key_env_cls):
    register_envs()
    from hippogym import HippocampalReplayBuffer

    buffer = HippocampalReplayBuffer(capacity=1000, embed_dim=8, seed=0)
    env = RecordEpisodes(success_key_env_cls(gym.make("hippogym/CueRecall-v0", length=3)), buffer)
    outcomes = []
    for seed in range(4):
        env.reset(seed=seed)
        cue = env.unwrapped.cue
        for _ in range(3):
            env.step(0)
        *_, info = env.step(1 + cue if seed % 2 == 0 else 2 - cue)
        assert "is_success" not in info  # the caller sees the env's own info
        outcomes.append(bool(info["success"]))
    assert outcomes == [True, False, True, False]
    assert [u.success for u in buffer.memory.episodes()] == outcomes


def test_recorders_fill_env_id_and_spaces_into_the_manifest(tmp_path):
    register_envs()
    import json

    from hippogym import HippocampalReplayBuffer

    buffer = HippocampalReplayBuffer(capacity=500, embed_dim=8, seed=0)
    env = RecordEpisodes(gym.make("hippogym/SparseCorridor-v0", length=4), buffer)
    env.reset(seed=0)
    for _ in range(3):
        env.step(1)
    assert buffer.provenance["env_id"] == "hippogym/SparseCorridor-v0"
    assert buffer.spaces == {"observation_space": env.observation_space, "action_space": env.action_space}
    manifest = json.loads((buffer.save(tmp_path / "m") / "manifest.json").read_text())
    assert manifest["provenance"]["env_id"] == "hippogym/SparseCorridor-v0"
    assert manifest["spaces"]["action_space"]["type"] == "Discrete"
    assert manifest["spaces"]["observation_space"]["type"] == "Box"
