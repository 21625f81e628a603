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


def brute_force(buffer, query_emb, k):
    store = buffer.memory
    slots = store.live_slots()
    scores = torch.stack([store.maxsim(query_emb, slots[i : i + 1])[0] for i in range(slots.numel())])
    top = torch.topk(scores, k)
    return top.values, slots[top.indices]


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


def test_exact_search_matches_brute_force_maxsim_and_batches():
    buffer = HippocampalReplayBuffer(capacity=10_000, embed_dim=32, seed=0)
    fill(buffer, n=80)
    queries = torch.randn(6, 4)
    emb = buffer.embed_queries(queries)
    scores, slots = buffer.memory.search(emb, 5)
    assert scores.shape == (6, 5)
    for i in range(6):
        ref_s, ref_i = brute_force(buffer, emb[i], 5)
        assert torch.allclose(scores[i], ref_s, atol=1e-6)
        assert torch.equal(slots[i], ref_i)


def test_fast_path_recall_is_reported_and_reasonable():
    buffer = HippocampalReplayBuffer(capacity=10_000, embed_dim=32, seed=0)
    fill(buffer, n=80)
    emb = buffer.embed_queries(torch.randn(20, 4))
    _, exact = buffer.memory.search(emb, 5, exact=True)
    _, fast = buffer.memory.search(emb, 5, exact=False)
    recall = sum(len(set(exact[i].tolist()) & set(fast[i].tolist())) for i in range(20)) / 100
    assert recall >= 0.6


def test_faiss_index_follows_inserts_and_evictions_incrementally():
    from hippogym.memory.index import FaissIndex

    buffer = HippocampalReplayBuffer(capacity=2000, embed_dim=16, eviction="fifo", seed=0,
                                     index=FaissIndex(kind="ivf", train_after=40))
    eps = fill(buffer, n=150, T=20)
    index = buffer.memory.index
    assert index._trained_ivf and index._index.ntotal == buffer.num_episodes
    live = set(buffer.memory.unit_id[buffer.memory.live_slots()].tolist())
    evicted_uid, evicted_ep = eps[0]
    assert evicted_uid not in live
    store = buffer.memory
    for uid, ep in (eps[0], eps[-1]):
        emb = buffer.embed_queries(torch.cat([ep.states[2], torch.zeros(1), ep.rewards[2:3]]))
        _, slots = store.search(emb, 5, exact=False)  # the FAISS path
        assert set(store.unit_id[slots[0]].tolist()) <= live
    # Incremental: the IVF index was trained once and then only added to / removed from.
    ntotal = index._index.ntotal
    fill(buffer, n=5, T=20, seed=9)
    assert index._index.ntotal == buffer.num_episodes and index._index.ntotal <= ntotal + 5


def test_retrieval_counts_hits():
    buffer = HippocampalReplayBuffer(capacity=10_000, embed_dim=16, seed=0)
    fill(buffer, n=10)
    before = float(buffer.memory.unit_hits.sum())
    buffer.retrieve(torch.randn(3, 4), top_k=2)
    assert float(buffer.memory.unit_hits.sum()) == before + 6
