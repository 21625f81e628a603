"""Retrieval indexes: exact and fast MaxSim search over the store's units (hippogym/memory/index.py).

The end-to-end check (a query built from a stored observation by the buffer's encoder retrieves its
unit at rank 1, for both indexes) is in ``test_retrieval.py``; here the keys are given directly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hippogym import Episode, MemoryStore
from hippogym.errors import ValidationError
from hippogym.memory.index import FaissIndex, RetrievalIndex, TorchIndex
from hippogym.memory.indexes import make_index
from hippogym.memory.rows import keys_as_float32
from hippogym.memory.views import StoreView


def smooth_keys(T, d, gen):
    """Keys of a smooth trajectory (a random walk on the sphere), as an encoder gives them."""
    walk = torch.cumsum(torch.randn(T, d, generator=gen) * 0.3, 0) + torch.randn(1, d, generator=gen)
    return torch.nn.functional.normalize(walk, dim=1)


def add_units(store, n, T=25, seed=0):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(n):
        ep = Episode(states=torch.zeros(T + 1, 2), actions=torch.zeros(T, 1), rewards=torch.zeros(T))
        store.add(ep, smooth_keys(T, store.embed_dim, gen))
    return store


def filled(n=80, T=25, d=32, index="torch", capacity=10_000, eviction="utility"):
    return add_units(MemoryStore(embed_dim=d, capacity=capacity, eviction=eviction, index=index, seed=0), n, T)


def brute_force(store, query, k):
    slots = store.live_slots()
    scores = torch.stack([store.maxsim(query, slots[i : i + 1])[0] for i in range(slots.numel())])
    top = torch.topk(scores, k)
    return top.values, slots[top.indices]


def stored_keys(store, n, seed=5):
    """``n`` (slot, key) pairs drawn from the stored rows."""
    rows = store.sample_rows(n, torch.Generator().manual_seed(seed))
    return store.row_slot[rows], keys_as_float32(store.keys[rows])  # as unit vectors (16-bit keys)


@pytest.mark.parametrize("exact", [True, False])
def test_torch_index_returns_the_unit_of_a_stored_key_at_rank_1(exact):
    store = filled()
    slots, keys = stored_keys(store, 40)
    scores, found = store.search(keys, 3, exact=exact)
    assert torch.equal(found[:, 0], slots)
    assert torch.allclose(scores[:, 0], torch.ones(40), atol=1e-5)
    assert (scores[:, :-1] >= scores[:, 1:]).all()  # best first


def test_exact_search_matches_brute_force_maxsim_and_batches():
    store = filled()
    queries = torch.nn.functional.normalize(torch.randn(6, 32, generator=torch.Generator().manual_seed(1)), dim=1)
    scores, slots = store.search(queries, 5)
    assert scores.shape == (6, 5)
    for i in range(6):
        ref_s, ref_i = brute_force(store, queries[i], 5)
        assert torch.allclose(scores[i], ref_s, atol=1e-6)
        assert torch.equal(slots[i], ref_i)


def test_exact_search_prunes_units_it_need_not_open():
    store = filled(n=200, T=10)
    _, keys = stored_keys(store, 1)
    store.search(keys, 1, exact=True)
    assert store.index.last_opened < store.num_units  # the bound ruled the rest out, exactly


def test_fast_path_recall_is_reported_and_reasonable():
    store = filled()
    gen = torch.Generator().manual_seed(2)
    queries = torch.stack([smooth_keys(1, 32, gen)[0] for _ in range(20)])
    _, exact = store.search(queries, 5, exact=True)
    _, fast = store.search(queries, 5, exact=False)
    recall = sum(len(set(exact[i].tolist()) & set(fast[i].tolist())) for i in range(20)) / 100
    assert recall >= 0.6
    assert store.index.last_opened == 20 * store.index.candidates  # a fixed cost per query


@pytest.mark.parametrize("exact", [True, False])
def test_search_np_gives_the_same_answer_as_search(exact):
    store = filled(n=40)
    _, keys = stored_keys(store, 7)
    s_t, i_t = store.search(keys, 4, exact=exact)
    s_n, i_n = store.search_np(keys.numpy(), 4, exact=exact)
    np.testing.assert_allclose(s_n, s_t.numpy(), atol=1e-6)
    np.testing.assert_array_equal(i_n, i_t.numpy())


@pytest.mark.parametrize("exact", [True, False])
def test_search_never_returns_a_free_slot(exact):
    store = filled(n=120, T=10, capacity=300, eviction="fifo")
    add_units(store, 1, T=100, seed=7)  # evicts 10 units and takes 1 slot: 9 slots are free
    alive = store.unit_alive.clone()
    assert int((~alive[: store.num_slots]).sum()) == 9
    queries = torch.nn.functional.normalize(torch.randn(30, 32, generator=torch.Generator().manual_seed(3)), dim=1)
    _, slots = store.search(queries, store.num_units, exact=exact)
    assert alive[slots].all()
    assert all(sorted(row) == sorted(store.order) for row in slots.tolist())  # k = all: every live unit once


def test_indexes_read_only_the_store_view(restricted):
    store = filled(n=30)
    view = restricted(store, StoreView)
    assert isinstance(store, StoreView) and isinstance(view, StoreView)
    _, keys = stored_keys(store, 5)
    index = TorchIndex()
    for exact in (True, False):
        s_v, i_v = index.search(view, keys, 3, exact=exact)
        s_s, i_s = index.search(store, keys, 3, exact=exact)
        assert torch.equal(i_v, i_s) and torch.equal(s_v, s_s)
    if FaissIndex in _available_indexes():
        faiss_index = FaissIndex(kind="flat")
        faiss_index.rebuild(view)
        faiss_index.remove(view, [0])
        faiss_index.add(view, [0])
        faiss_index.search_np(view, keys.numpy(), 3)
        assert view.read == view.members  # the protocol lists exactly what the indexes read


def _available_indexes():
    try:
        import faiss  # noqa: F401
    except ImportError:
        return [TorchIndex]
    return [TorchIndex, FaissIndex]


def test_faiss_flat_finds_stored_keys_and_exact_falls_back_to_torch():
    pytest.importorskip("faiss")
    store = filled(n=60, index=FaissIndex(kind="flat"))
    slots, keys = stored_keys(store, 30)
    scores, found = store.search(keys, 3)  # FAISS's default: the fast path
    assert torch.equal(found[:, 0], slots)
    assert torch.allclose(scores[:, 0], torch.ones(30), atol=1e-5)
    s_f, i_f = store.search(keys, 3, exact=True)
    s_t, i_t = TorchIndex().search(store, keys, 3, exact=True)
    assert torch.equal(i_f, i_t) and torch.equal(s_f, s_t)


def test_faiss_index_follows_inserts_and_evictions_incrementally():
    pytest.importorskip("faiss")
    store = filled(n=150, T=20, d=16, capacity=2000, eviction="fifo", index=FaissIndex(kind="ivf", train_after=40))
    index = store.index
    assert index._trained_ivf and index._index.ntotal == store.num_units
    live = set(store.unit_id[store.live_slots()].tolist())
    assert 0 not in live  # the first unit was evicted
    _, keys = stored_keys(store, 10)
    _, slots = store.search(keys, 5, exact=False)  # the FAISS path
    assert store.unit_alive[slots].all()
    assert set(store.unit_id[slots.reshape(-1)].tolist()) <= live
    # Incremental: the IVF index was trained once and then only added to / removed from.
    ntotal = index._index.ntotal
    add_units(store, 5, T=20, seed=9)
    assert index._index.ntotal == store.num_units and index._index.ntotal <= ntotal + 5


def test_make_index_builds_round_trips_and_refuses():
    torch_index = make_index({"type": "torch", "candidates": 20, "chunk": 8})
    assert isinstance(torch_index, TorchIndex) and (torch_index.candidates, torch_index.chunk) == (20, 8)
    assert make_index(torch_index.config()).config() == torch_index.config()
    assert make_index(torch_index) is torch_index
    assert isinstance(make_index("torch"), RetrievalIndex)
    faiss_index = make_index({"type": "faiss", "kind": "flat", "nprobe": 4})
    assert isinstance(faiss_index, FaissIndex) and make_index(faiss_index.config()).config() == faiss_index.config()
    for bad in ("annoy", {"type": None}, {"type": "faiss", "kind": "hnsw"}):
        with pytest.raises(ValidationError):
            make_index(bad)
    with pytest.raises(NotImplementedError):
        RetrievalIndex().search(None, torch.zeros(1, 2), 1)
