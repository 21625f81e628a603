"""The default consolidator: one builder, used by the buffer, the SB3 adapter and the Minari import."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

from hippogym import Episode, HippocampalReplayBuffer
from hippogym.encoders.dual import DualEncoder
from hippogym.errors import ValidationError
from hippogym.replay.defaults import build_default_consolidator

KWARGS = {"temperature": 0.05, "reward_weight": 0.25}


def _episode(length: int = 12, seed: int = 0) -> Episode:
    rng = np.random.default_rng(seed)
    return Episode(
        observations=rng.normal(size=(length, 2)).astype(np.float32),
        actions=rng.integers(0, 2, size=length),
        rewards=rng.normal(size=length).astype(np.float32),
        next_observations=rng.normal(size=(length, 2)).astype(np.float32),
        terminated=np.r_[np.zeros(length - 1, bool), True],
    )


def test_builder_orders_seed_overrides_and_buffer_kwargs():
    encoder = DualEncoder(4, embed_dim=8)
    plain = build_default_consolidator(encoder, 3)
    assert plain.temperature == 0.07
    # consolidator_kwargs win over the caller's defaults
    built = build_default_consolidator(encoder, 3, {"temperature": 0.05}, temperature=0.2, reward_weight=0.1)
    assert built.temperature == 0.05 and built.reward_weight == 0.1 and built.encoder is encoder
    # same seed, same generator stream; a seed in consolidator_kwargs wins over the argument
    a = build_default_consolidator(encoder, 3).generator.get_state()
    b = build_default_consolidator(encoder, 99, {"seed": 3}).generator.get_state()
    assert (a == b).all()
    with pytest.raises(ValidationError, match="consolidator_kwargs"):
        build_default_consolidator(encoder, 3, [("temperature", 0.05)])
    with pytest.raises(ValidationError, match="temperature"):
        build_default_consolidator(encoder, 3, {"temperature": -1.0})


def test_buffer_uses_its_consolidator_kwargs():
    buffer = HippocampalReplayBuffer(capacity=200, embed_dim=8, seed=0, consolidator_kwargs=KWARGS)
    buffer.add_episode(_episode())
    buffer.consolidate(steps=2, batch_size=8)
    assert buffer.consolidator.temperature == 0.05 and buffer.consolidator.reward_weight == 0.25


def test_sb3_adapter_honours_consolidator_kwargs():
    pytest.importorskip("stable_baselines3")
    from hippogym.integrations.sb3 import HippoReplayBuffer

    hippo = HippocampalReplayBuffer(capacity=200, embed_dim=8, seed=0, consolidator_kwargs=KWARGS)
    rb = HippoReplayBuffer(200, spaces.Box(-1, 1, (2,), np.float32), spaces.Discrete(2), "cpu", buffer=hippo)
    for t in range(10):
        obs = np.full((1, 2), t / 10, np.float32)
        rb.add(obs, obs, np.zeros(1, np.int64), np.ones(1, np.float32), np.array([t == 9]), [{}])
    rb.consolidate()
    assert hippo.consolidator is not None
    assert hippo.consolidator.temperature == 0.05 and hippo.consolidator.reward_weight == 0.25


@pytest.mark.filterwarnings("ignore:`.*` is set to None:UserWarning")
def test_minari_import_honours_consolidator_kwargs(tmp_path, monkeypatch):
    minari = pytest.importorskip("minari")
    pytest.importorskip("h5py")
    import gymnasium as gym
    from minari.data_collector.episode_buffer import EpisodeBuffer

    import hippogym
    from hippogym.integrations.minari import memory_from_minari

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    hippogym.register_envs()
    env = gym.make("hippogym/SparseCorridor-v0", length=4, max_steps=6)
    episodes = []
    for i in range(3):
        obs, _ = env.reset(seed=i)
        observations, actions, rewards, terms, truncs = [obs], [], [], [], []
        done = False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(1)
            observations.append(obs)
            actions.append(1)
            rewards.append(reward)
            terms.append(terminated)
            truncs.append(truncated)
            done = terminated or truncated
        episodes.append(EpisodeBuffer(
            id=i, observations=np.stack(observations), actions=np.asarray(actions), rewards=np.asarray(rewards),
            terminations=np.asarray(terms), truncations=np.asarray(truncs),
        ))
    dataset = minari.create_dataset_from_buffers("corridor/defaults-v0", episodes, env=env, algorithm_name="scripted")
    for seed in (None, 5):  # seed=None: the buffer's consolidate path; seed=5: the importer builds it
        buffer = HippocampalReplayBuffer(capacity=500, embed_dim=8, seed=0, consolidator_kwargs=KWARGS)
        memory_from_minari(dataset, buffer=buffer, consolidate_steps=2, consolidate_batch_size=4, progress=False,
                           seed=seed)
        assert buffer.consolidator.temperature == 0.05 and buffer.consolidator.reward_weight == 0.25
