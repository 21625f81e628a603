from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env

from hippogym import RecallObservation, RecordEpisodes
from hippogym.envs import register_envs
from hippogym.errors import ValidationError


def cue_env(**kw):
    register_envs()
    return gym.make("hippogym/CueRecall-v0", length=4, noise=0.05, **kw)


def fill(buffer, episodes=6):
    env = RecordEpisodes(cue_env(), buffer)
    rng = np.random.default_rng(0)
    for seed in range(episodes):
        env.reset(seed=seed)
        done = False
        while not done:
            _, _, terminated, truncated, _ = env.step(int(rng.integers(3)))
            done = terminated or truncated
    return env


def test_observation_space_is_declared():
    from hippogym import HippocampalReplayBuffer

    buffer = HippocampalReplayBuffer(capacity=1000, embed_dim=8, seed=0)
    env = RecallObservation(cue_env(), buffer, top_k=4)
    space = env.observation_space
    assert isinstance(space, spaces.Dict) and list(space.keys()) == ["observation", "recall", "recall_scores"]
    assert space["observation"] == env.env.observation_space
    assert space["recall"].shape == (4, 6) and space["recall"].dtype == np.float32  # 5 obs features + return
    assert space["recall_scores"].shape == (4,) and space["recall_scores"].low.min() == -1
    assert np.isneginf(space["recall"].low[:, -1]).all() and (space["recall"].low[:, :-1] <= 0).all()
    emb = RecallObservation(cue_env(), buffer, top_k=2, features="embedding", include_scores=False)
    assert list(emb.observation_space.keys()) == ["observation", "recall"]
    assert emb.observation_space["recall"].shape == (2, 8)


def test_empty_memory_gives_zero_padding(make_buffer):
    env = RecallObservation(cue_env(), make_buffer(), top_k=3)
    obs, _ = env.reset(seed=0)
    assert obs in env.observation_space
    assert not obs["recall"].any() and not obs["recall_scores"].any() and env.last_recall is None


@pytest.mark.parametrize("features", ["observation", "embedding"])
def test_env_checker_passes(features, make_buffer):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(RecallObservation(cue_env(), make_buffer(), features=features), skip_render_check=True)
        buffer = make_buffer()
        fill(buffer)
        check_env(RecallObservation(cue_env(), buffer, top_k=3, features=features), skip_render_check=True)


def test_recall_of_a_stored_observation_returns_its_unit_first(make_buffer):
    buffer = make_buffer()
    fill(buffer, episodes=5)
    units = list(buffer.memory.episodes())
    target = 2
    unit = units[target]
    # A step with reward 0: its key equals the query built from its observation.
    query = unit.states[0].numpy()
    env = RecallObservation(cue_env(), buffer, top_k=3)
    recall = env.recall(query)
    assert int(env.last_recall.episode_ids[0, 0]) == target  # unit ids count from 0 in insertion order
    assert recall["recall_scores"][0] == pytest.approx(1.0, abs=1e-5)
    assert (np.diff(recall["recall_scores"]) <= 1e-6).all()  # best first
    expected = np.append(unit.next_states[-1].numpy(), unit.episode_return)
    assert np.allclose(recall["recall"][0], expected)
    emb = RecallObservation(cue_env(), buffer, top_k=3, features="embedding").recall(query)
    slot = int(env.last_recall.slots[0, 0])
    assert np.allclose(emb["recall"][0], buffer.memory.centroid[slot].numpy())


def test_fewer_units_than_top_k_are_padded(make_buffer):
    buffer = make_buffer()
    fill(buffer, episodes=2)
    env = RecallObservation(cue_env(), buffer, top_k=5)
    obs, _ = env.reset(seed=0)
    assert obs in env.observation_space
    assert (obs["recall_scores"][2:] == 0).all() and not obs["recall"][2:].any()
    assert obs["recall"][:2].any()


def test_recording_and_recall_in_one_loop(make_buffer):
    buffer = make_buffer()
    env = RecallObservation(RecordEpisodes(cue_env(), buffer), buffer, top_k=2)
    obs, _ = env.reset(seed=0)
    done = False
    while not done:
        obs, _, terminated, truncated, _ = env.step(0)
        done = terminated or truncated
    assert buffer.num_episodes == 1
    obs, _ = env.reset(seed=1)
    assert obs["recall_scores"][0] > 0 and obs["recall_scores"][1] == 0


def test_dict_and_image_observations(space_env_cls, make_buffer):
    obs_space = spaces.Dict({"img": spaces.Box(0, 255, (4, 4, 1), np.uint8), "k": spaces.Discrete(3, start=2)})
    buffer = make_buffer()
    rec = RecordEpisodes(space_env_cls(obs_space, spaces.Discrete(2)), buffer)
    rec.reset(seed=0)
    for _ in range(4):
        rec.step(0)
    env = RecallObservation(space_env_cls(obs_space, spaces.Discrete(2)), buffer, top_k=2)
    assert env.observation_space["recall"].shape == (2, 18)
    obs, _ = env.reset(seed=0)
    assert obs in env.observation_space
    unit = next(buffer.memory.episodes())
    final = np.concatenate(
        [
            unit.next_states["img"][-1].numpy().reshape(-1) / 255.0,
            [float(unit.next_states["k"][-1])],
            [unit.episode_return],
        ]
    )
    assert np.allclose(obs["recall"][0], final, atol=1e-6)


def test_layout_mismatch_and_bad_arguments(make_buffer, counter_env_cls):
    buffer = make_buffer()
    fill(buffer, episodes=1)
    env = RecallObservation(counter_env_cls(), buffer)
    with pytest.raises(ValidationError, match="layout"):
        env.reset()
    with pytest.raises(ValidationError, match="top_k"):
        RecallObservation(cue_env(), buffer, top_k=0)
    with pytest.raises(ValidationError, match="features"):
        RecallObservation(cue_env(), buffer, features="centroid")
    with pytest.raises(ValidationError, match="buffer"):
        RecallObservation(cue_env(), object())
    assert torch.is_tensor(buffer.memory.unit_return)


def tmaze_memory(context, episodes=120, length=6):
    from hippogym import FeatureConfig, HippocampalReplayBuffer, MemoryStore
    from hippogym.envs.cue_recall import CueRecallCorridorEnv

    buffer = HippocampalReplayBuffer(
        MemoryStore(embed_dim=32, capacity=20_000, seed=0), features=FeatureConfig(context=context), seed=0
    )
    env = RecordEpisodes(CueRecallCorridorEnv(length=length), buffer)
    rng = np.random.default_rng(0)
    for seed in range(episodes):  # walk to the junction, then turn at random
        obs, _ = env.reset(seed=seed)
        done = False
        while not done:
            obs, _, terminated, truncated, _ = env.step(0 if obs[0] < 1 else int(rng.integers(1, 3)))
            done = terminated or truncated
    env.close()
    return buffer


def cue_match_at_the_junction(buffer, context, length=6, episodes=30):
    """Share of the units recalled at the junction whose cue is the episode's (0.5 = chance)."""
    from hippogym.envs.cue_recall import CueRecallCorridorEnv

    env = RecallObservation(CueRecallCorridorEnv(length=length), buffer, top_k=5, context=context)
    match = []
    for seed in range(episodes):
        obs, _ = env.reset(seed=10_000 + seed)
        cue = int(np.argmax(obs["observation"][1:3]))
        while obs["observation"][3] < 1:  # walk to the junction: the cue is long gone
            obs, *_ = env.step(0)
        for unit_id in env.last_recall.episode_ids[0].tolist():
            first = buffer.episode(unit_id).states[0]
            match.append(int(np.argmax(first[1:3].numpy())) == cue)
    return float(np.mean(match))


def test_history_keyed_recall_sees_the_cue_that_the_current_observation_lacks():
    windowed = tmaze_memory(context=7)
    assert cue_match_at_the_junction(windowed, context=None) >= 0.95  # the buffer's context: 7 steps
    plain = tmaze_memory(context=1)
    assert cue_match_at_the_junction(plain, context=None) <= 0.75  # chance, give or take


def test_windowed_recall_passes_the_env_checker_and_resets_its_window():
    from hippogym.envs.cue_recall import CueRecallCorridorEnv

    buffer = tmaze_memory(context=4, episodes=10, length=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(RecallObservation(CueRecallCorridorEnv(length=4), buffer, top_k=2), skip_render_check=True)
    env = RecallObservation(CueRecallCorridorEnv(length=4), buffer, top_k=2)
    assert env.context == 4
    env.reset(seed=0)
    env.step(0)
    assert env.window_length == 2
    env.reset(seed=1)
    assert env.window_length == 1
    with pytest.raises(ValidationError, match="context"):
        RecallObservation(CueRecallCorridorEnv(length=4), buffer, context=0)
