"""Batched hand-over of recorded units (``ingest_every``) and the vectorised ``add_episodes``."""

from __future__ import annotations

import gc

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import SyncVectorEnv

from hippogym import Episode, FixedWindowSegmenter, RecallObservation, RecordEpisodes, RecordEpisodesVector
from hippogym.errors import ValidationError
from hippogym.wrappers.record import ingest_pending


def units_of(buffer):
    return [
        (ep.episode_id, ep.start_step, ep.states.tolist(), ep.actions.tolist(), ep.rewards.tolist(),
         ep.next_states.tolist(), ep.terminated.tolist(), ep.truncated.tolist(), ep.success)
        for ep in buffer.memory.episodes()
    ]


def keys_of(buffer):
    mem = buffer.memory
    return torch.cat([mem.keys[int(mem.unit_start[s]) : int(mem.unit_start[s] + mem.unit_length[s])] for s in mem.order])


def run_single(env, steps, seed=0):
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(int(rng.integers(2)))
        if terminated or truncated:
            env.reset()


@pytest.mark.parametrize("segmenter", [None, lambda: FixedWindowSegmenter(4, overlap=1)])
def test_batched_hand_over_stores_the_same_units_in_the_same_order(segmenter, make_buffer):
    buffers = []
    for ingest_every in (1, 40):
        buffer = make_buffer()
        env = RecordEpisodes(
            gym.make("CartPole-v1"), buffer, segmenter=segmenter and segmenter(), ingest_every=ingest_every
        )
        run_single(env, 300)
        if ingest_every > 1:
            assert env.pending_episodes > 0 or env.segmenter.pending() > 0
        env.close()
        assert env.pending_episodes == 0 and env.segmenter.pending() == 0
        buffers.append((buffer, env))
    (immediate, env_a), (batched, env_b) = buffers
    assert units_of(immediate) == units_of(batched)
    assert torch.allclose(keys_of(immediate), keys_of(batched), atol=1e-6)
    assert [ep.episode_id for ep in batched.memory.episodes()] == sorted(ep.episode_id for ep in batched.memory.episodes())
    assert (env_a.episodes_recorded, env_a.transitions_recorded) == (env_b.episodes_recorded, env_b.transitions_recorded)
    assert len(immediate) == len(batched)


def test_latency_is_bounded_and_flush_hands_everything_over(counter_env_cls, make_buffer):
    buffer = make_buffer()
    env = RecordEpisodes(counter_env_cls(lengths=(3,)), buffer, ingest_every=10)
    env.reset()
    waiting_max = completed = 0
    for _ in range(40):
        _, _, terminated, truncated, _ = env.step(0)
        waiting_max = max(waiting_max, env.pending_episodes)
        if terminated or truncated:
            completed += 1
            env.reset()
        # Every completed unit is in the buffer or waiting, and fewer than ingest_every transitions wait.
        assert buffer.num_episodes + env.pending_episodes == completed
        assert len(buffer) == 3 * env.episodes_recorded and 3 * env.pending_episodes < 10
    assert waiting_max > 0
    env.step(0)
    waiting = env.pending_episodes
    ids = env.flush()  # the waiting units, then the in-progress one
    assert len(ids) == waiting + 1 and ids == sorted(ids) and env.pending_episodes == 0
    assert buffer.num_episodes == env.episodes_recorded


def test_record_off_and_close_hand_over_waiting_units(counter_env_cls, make_buffer):
    buffer = make_buffer()
    env = RecordEpisodes(counter_env_cls(lengths=(2,)), buffer, ingest_every=1000)
    env.reset()
    for _ in range(4):  # the first unit goes in at once (it fixes the memory layout), the next waits
        _, _, terminated, truncated, _ = env.step(0)
        if terminated or truncated:
            env.reset()
    assert buffer.num_episodes == 1 and env.pending_episodes == 1
    env.record = False
    assert buffer.num_episodes == 2 and env.pending_episodes == 0
    env.record = True
    env.reset()
    env.step(0)
    env.step(0)
    env.reset()
    env.step(0)
    assert env.pending_episodes == 1 and buffer.num_episodes == 2
    env.close()
    assert buffer.num_episodes == 4 and env.episodes_recorded == 4


def test_recall_sees_units_a_recorder_still_holds(make_buffer):
    from hippogym.envs import register_envs

    register_envs()
    buffer = make_buffer()
    recorder = RecordEpisodes(gym.make("hippogym/CueRecall-v0", length=3), buffer, ingest_every=10**6)
    env = RecallObservation(recorder, buffer, top_k=2)
    for seed in range(3):
        env.reset(seed=seed)
        done = False
        while not done:
            obs, _, terminated, truncated, _ = env.step(0)
            done = terminated or truncated
        # The unit completed by this very step was handed over before the recall was computed.
        assert recorder.pending_episodes == 0 and buffer.num_episodes == seed + 1
        assert env.last_recall is not None
    assert ingest_pending(buffer) == []


def test_a_dropped_recorder_hands_over_its_waiting_units(counter_env_cls, make_buffer):
    buffer = make_buffer()
    env = RecordEpisodes(counter_env_cls(lengths=(2,)), buffer, ingest_every=1000)
    env.reset()
    for _ in range(6):
        _, _, terminated, truncated, _ = env.step(0)
        if terminated or truncated:
            env.reset()
    assert buffer.num_episodes == 1 and env.pending_episodes == 2
    del env
    gc.collect()
    assert buffer.num_episodes == 3


def test_a_rejected_unit_raises_in_the_step_that_completed_it(counter_env_cls, make_buffer):
    buffer = make_buffer()
    buffer.add_episode(Episode(states=torch.zeros(2, 5), actions=torch.zeros(1, dtype=torch.int64), rewards=torch.zeros(1)))
    env = RecordEpisodes(counter_env_cls(lengths=(2,)), buffer, ingest_every=1000)  # 3-wide observations
    env.reset()
    env.step(0)
    with pytest.raises(ValidationError, match="episode.states"):
        env.step(0)
    assert env.pending_episodes == 0 and env.episodes_recorded == 0 and buffer.num_episodes == 1


def test_ingest_every_is_validated(counter_env_cls, make_buffer):
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValidationError, match="ingest_every"):
            RecordEpisodes(counter_env_cls(), make_buffer(), ingest_every=bad)
    env = RecordEpisodes(gym.make("CartPole-v1"), make_buffer(), ingest_every=64)
    again = gym.make(env.spec)  # recreated from its spec: same setting, same buffer
    assert again.ingest_every == 64 and again.buffer is env.buffer


@pytest.mark.parametrize("ingest_every", [1, 25])
def test_vector_recorder_batches_without_changing_what_is_stored(ingest_every, counter_env_cls, make_buffer):
    lengths = [(3, 1, 4), (2, 5), (1,), (6,)]

    def record(every):
        buffer = make_buffer()
        envs = SyncVectorEnv([lambda i=i: counter_env_cls(env_id=i, lengths=lengths[i]) for i in range(len(lengths))])
        env = RecordEpisodesVector(envs, buffer, info_keys=("t",), ingest_every=every)
        env.reset(seed=0)
        for k in range(30):
            env.step(np.array([(k + i) % 2 for i in range(len(lengths))]))
        env.close()
        return buffer, env

    reference, ref_env = record(1)
    buffer, env = record(ingest_every)
    assert units_of(buffer) == units_of(reference)
    assert [ep.infos["t"].tolist() for ep in buffer.memory.episodes()] == [
        ep.infos["t"].tolist() for ep in reference.memory.episodes()
    ]
    assert torch.allclose(keys_of(buffer), keys_of(reference), atol=1e-6)
    assert env.episodes_recorded == ref_env.episodes_recorded == buffer.num_episodes


def _random_episodes(n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        T = int(rng.integers(1, 30))
        out.append(
            Episode(
                states=torch.from_numpy(rng.normal(size=(T + 1, 4)).astype(np.float32)),
                actions=torch.from_numpy(rng.integers(0, 2, T)),
                rewards=torch.from_numpy(rng.normal(size=T)),
                truncated=np.arange(T) == T - 1,
                episode_id=i,
            )
        )
    return out


def test_add_episodes_matches_a_loop_of_add_episode(make_buffer):
    episodes = _random_episodes(40)
    loop, batched = make_buffer(capacity=400, embed_dim=16), make_buffer(capacity=400, embed_dim=16)
    ids_loop = [loop.add_episode(ep) for ep in episodes]
    ids_batched = batched.add_episodes(episodes)
    assert ids_loop == ids_batched
    assert units_of(loop) == units_of(batched)  # the same evictions (capacity 400 < the total)
    assert torch.allclose(keys_of(loop), keys_of(batched), atol=1e-6)
    assert loop.memory.total_added == batched.memory.total_added and len(loop) == len(batched)


def test_add_episodes_stores_the_units_before_a_rejected_one(make_buffer):
    episodes = _random_episodes(5)
    bad = Episode(states=torch.zeros(3, 7), actions=torch.zeros(2, dtype=torch.int64), rewards=torch.zeros(2))
    buffer = make_buffer()
    with pytest.raises(ValidationError):
        buffer.add_episodes(episodes[:3] + [bad] + episodes[3:])
    assert [ep.episode_id for ep in buffer.memory.episodes()] == [0, 1, 2]
    assert buffer.add_episodes([]) == []
