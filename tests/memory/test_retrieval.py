"""Retrieval through the buffer: queries embedded by its encoder find the stored units.

The indexes themselves (exact vs brute force, fast-path recall, FAISS upkeep) are tested in
``test_index.py``.
"""

from __future__ import annotations

import pytest
import torch

from hippogym import Episode, HippocampalReplayBuffer


def fill(buffer, n=60, T=25, seed=0):
    g = torch.Generator().manual_seed(seed)
    eps = []
    for i in range(n):
        # Smooth trajectories (random walks), as real episodes are.
        s = torch.cumsum(torch.randn(T + 1, 4, generator=g) * 0.3, 0) + torch.randn(1, 4, generator=g)
        ep = Episode(states=s, actions=torch.randn(T, 1, generator=g), rewards=torch.randn(T, generator=g))
        eps.append((buffer.add_episode(ep), ep))
    return eps


@pytest.mark.parametrize("index", ["torch", "faiss"])
def test_query_from_a_stored_observation_retrieves_its_unit_at_rank_1(index):
    buffer = HippocampalReplayBuffer(capacity=10_000, embed_dim=32, index=index, seed=0)
    eps = fill(buffer)
    g = torch.Generator().manual_seed(5)
    for _ in range(40):
        uid, ep = eps[int(torch.randint(len(eps), (1,), generator=g))]
        t = int(torch.randint(len(ep), (1,), generator=g))
        # Built exactly as in the quickstart: observation, zero action, reward.
        query = torch.cat([ep.states[t], torch.zeros(1), ep.rewards[t : t + 1]])
        result = buffer.retrieve(query, top_k=3)
        assert int(result.episode_ids[0, 0]) == uid
        assert float(result.scores[0, 0]) == pytest.approx(1.0, abs=1e-5)


def test_retrieval_counts_hits():
    buffer = HippocampalReplayBuffer(capacity=10_000, embed_dim=16, seed=0)
    fill(buffer, n=10)
    before = float(buffer.memory.unit_hits.sum())
    buffer.retrieve(torch.randn(3, 4), top_k=2)
    assert float(buffer.memory.unit_hits.sum()) == before + 6
