"""The default sampling path finds what exact search finds (random states, CartPole, Dict observations).

Queries are what users pass: a stored observation (unbatched, batched, a dict), never a hand-built
key. Memories are above the index's ``exact_below``, so the default path is the IVF one.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from hippogym import Episode, HippocampalReplayBuffer, MemoryStore, RecordEpisodes
from hippogym.replay.batch import SampleMode

N_QUERIES = 60


def walk(g, T, dim):
    return torch.randn(1, dim, generator=g) + torch.cumsum(torch.randn(T + 1, dim, generator=g) * 0.2, 0)


def random_state_buffer(dict_obs=False, n=120, T=100):
    buffer = HippocampalReplayBuffer(MemoryStore(capacity=20_000, seed=0), mixture_ratio=1.0, seed=0)
    g = torch.Generator().manual_seed(0)
    episodes = []
    for _ in range(n):
        states = {"pos": walk(g, T, 3), "vel": walk(g, T, 2)} if dict_obs else walk(g, T, 6)
        episodes.append(Episode(states=states, actions=torch.randn(T, 1, generator=g), rewards=torch.rand(T, generator=g)))
    buffer.add_episodes(episodes)
    return buffer


def cartpole_buffer(steps=10_000):
    buffer = HippocampalReplayBuffer(MemoryStore(capacity=steps + 1_000, seed=0), mixture_ratio=1.0, seed=0)
    env = RecordEpisodes(gym.make("CartPole-v1"), buffer)
    env.action_space.seed(0)
    env.reset(seed=0)
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    env.close()
    return buffer


def stored_observations(buffer, n, seed=1):
    rows = np.flatnonzero(buffer.memory.row_slot.numpy() >= 0)
    pick = np.random.default_rng(seed).choice(rows, n, replace=False)
    obs = buffer.memory.gather(torch.from_numpy(pick))["observations"]
    return pick, obs


def self_retrieval(buffer, n=N_QUERIES):
    rows, obs = stored_observations(buffer, n)
    own = buffer.memory.row_slot[torch.from_numpy(rows)]
    hits = 0
    for i in range(n):
        query = {k: v[i] for k, v in obs.items()} if isinstance(obs, dict) else obs[i]  # unbatched
        result = buffer.retrieve(query, top_k=5, exact=False, record_hits=False)  # the sampling path
        hits += int(result.slots[0, 0]) == int(own[i]) and abs(float(result.scores[0, 0]) - 1.0) < 1e-5
    return hits / n


@pytest.mark.parametrize("dict_obs", [False, True], ids=["random states", "dict observations"])
def test_stored_observations_retrieve_their_own_unit_on_the_default_path(dict_obs):
    buffer = random_state_buffer(dict_obs)
    assert self_retrieval(buffer) >= 0.95
    assert buffer.memory.index.mode == "ivf" and buffer.stats()["retrieval"]["mode"] == "ivf"  # the choice, reported


def share_of_draws_from_exact_top_k(buffer, k=5, n=30):
    _, obs = stored_observations(buffer, n, seed=3)
    inside = total = 0
    for i in range(n):
        query = obs[i] + 0.05 * torch.randn(obs[i].shape, generator=torch.Generator().manual_seed(i))
        exact = buffer.retrieve(query, top_k=k, exact=True, record_hits=False)
        kth = float(exact.scores[0, -1])
        # Every unit whose exact MaxSim ties or beats the k-th best counts as a top-k unit.
        emb = buffer.embed_queries(query)
        batch = buffer.sample(256, query_state=query, top_k=k)
        slots = buffer.memory.row_slot[batch.indices[batch.modes == SampleMode.SEMANTIC]]
        best = buffer.memory.maxsim(emb[0], slots)
        inside += int((best >= kth - 1e-6).sum())
        total += slots.numel()
    return inside / total


def test_semantic_draws_come_from_the_exact_top_k_units_on_cartpole_10k():
    buffer = cartpole_buffer()
    assert len(buffer) >= 9_000 and buffer.mixture_ratio == 1.0
    assert self_retrieval(buffer) >= 0.95
    assert share_of_draws_from_exact_top_k(buffer) >= 0.95
    buffer.consolidate(steps=30, batch_size=64)  # new keys, index re-fitted
    assert self_retrieval(buffer) >= 0.95
    assert share_of_draws_from_exact_top_k(buffer) >= 0.95


def test_observation_queries_score_one_on_their_unit_whatever_the_reward():
    """CartPole keys used to carry reward 1 while observation queries carried 0."""
    buffer = cartpole_buffer(steps=2_000)  # below exact_below: the exact path
    rows, obs = stored_observations(buffer, 20)
    full = torch.cat([obs, torch.ones(20, 1), torch.full((20, 1), 7.0)], dim=1)  # action and reward ignored
    for query in (obs, full):
        result = buffer.retrieve(query, top_k=1, record_hits=False)
        assert result.slots[:, 0].tolist() == buffer.memory.row_slot[torch.from_numpy(rows)].tolist()
        assert result.scores[:, 0] == pytest.approx(torch.ones(20), abs=1e-5)
