"""TransitionIndex: exact MaxSim by brute force, the IVF path's upkeep, ties, the mode it reports."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hippogym import Episode, MemoryStore
from hippogym.errors import ValidationError
from hippogym.memory.indexes import make_index
from hippogym.memory.rows import keys_as_float32
from hippogym.memory.transition_index import TransitionIndex, top_units

D = 16


_LIFT = torch.randn(4, D, generator=torch.Generator().manual_seed(123))


def unit_keys(g, T, drift=0.15):
    """Keys of one unit: a random walk in a 4-d state space lifted to the sphere by a fixed
    nonlinear map, as an encoder does with a trajectory of low-dimensional observations."""
    x = torch.randn(1, 4, generator=g) + torch.cumsum(torch.randn(T, 4, generator=g) * drift, 0)
    return torch.nn.functional.normalize(torch.tanh(x @ _LIFT), dim=1)


def filled(index, n_units=120, T=20, capacity=10_000, seed=0, key_dtype="float16"):
    store = MemoryStore(embed_dim=D, capacity=capacity, index=index, key_dtype=key_dtype, seed=seed)
    g = torch.Generator().manual_seed(seed)
    for _ in range(n_units):
        T_i = int(torch.randint(T // 2, T + 1, (1,), generator=g))
        ep = Episode(states=torch.randn(T_i + 1, 3, generator=g), actions=torch.zeros(T_i, 1), rewards=torch.ones(T_i))
        store.add(ep, unit_keys(g, T_i))
    return store, g


def brute_maxsim(store, query):
    """Exact MaxSim of every live unit, the slow obvious way."""
    out = {}
    for slot in store.live_slots().tolist():
        s, n = int(store.unit_start[slot]), int(store.unit_length[slot])
        out[slot] = float((keys_as_float32(store.keys[s : s + n]) @ query).max())  # 16-bit keys: as unit vectors
    return out


def check_against_brute(store, queries, scores, slots, k):
    for qi in range(queries.shape[0]):
        truth = brute_maxsim(store, torch.from_numpy(queries[qi]))
        ranked = sorted(truth.values(), reverse=True)
        kth = ranked[min(k, len(ranked)) - 1]
        got = [s for s in slots[qi].tolist() if s >= 0]
        assert len(got) == len(set(got)) == min(k, len(truth))
        for s, slot in zip(scores[qi].tolist(), got):
            assert s == pytest.approx(truth[slot], abs=1e-5)  # scores are the units' true MaxSim
        return kth, got, truth


def queries_near(store, g, n=20, noise=0.3):
    rows = torch.nonzero(store.row_slot >= 0).flatten()
    pick = rows[torch.randint(rows.numel(), (n,), generator=g)]
    q = store.keys[pick].float() + noise * torch.randn(n, D, generator=g) / D**0.5
    return np.ascontiguousarray(torch.nn.functional.normalize(q, dim=1).numpy())


def test_top_units_groups_by_unit_breaks_ties_by_recency_and_skips_stale():
    scores = np.array([0.9, 0.95, 0.9, 0.5, 0.95, 0.7], dtype=np.float32)
    slots = np.array([3, 1, 2, 3, 1, 0])
    added = np.array([10, 5, 30, 20])  # slot 2 is newer than slot 3
    s, u = top_units(scores, slots, added, 3, first=2)
    assert u.tolist() == [1, 2, 3] and s.tolist() == pytest.approx([0.95, 0.9, 0.9])
    # A resolver can mark candidates stale (-1): they are skipped, the next ones used.
    s, u = top_units(scores, lambda part: np.where(slots.take(part) == 1, -1, slots.take(part)), added, 2, first=1)
    assert u.tolist() == [2, 3]
    # All candidates tied beyond the first round: the most recent units win, whatever the order.
    flat = np.ones(50, dtype=np.float32)
    s, u = top_units(flat, np.arange(50), np.arange(50), 4, first=4)
    assert u.tolist() == [49, 48, 47, 46]


# float16 keys: small memories are scanned through the index's float32 copy of the keys, kept up to
# date by the store's events; past 4 * exact_below rows (the last case) the scan converts as it goes.
@pytest.mark.parametrize(("key_dtype", "exact_below"), [("float32", 8_192), ("float16", 8_192), ("float16", 64)])
def test_exact_path_equals_brute_force_maxsim_after_wraps_moves_and_rekeys(key_dtype, exact_below):
    index = TransitionIndex(mode="exact", exact_below=exact_below)
    store, g = filled(index, n_units=150, capacity=1_500, key_dtype=key_dtype)  # wraps, evicts, retains
    queries = queries_near(store, g)
    for _ in range(2):
        scores, slots = store.search_np(queries, 5, exact=True)
        for qi in range(queries.shape[0]):
            kth, got, truth = check_against_brute(store, queries[qi : qi + 1], scores[qi : qi + 1], slots[qi : qi + 1], 5)
            assert all(truth[s] >= kth - 1e-6 for s in got)
            assert sorted(truth.values(), reverse=True)[:5] == pytest.approx([truth[s] for s in got], abs=1e-5)
        rows = torch.nonzero(store.row_slot >= 0).flatten()
        store.rekey(rows, torch.nn.functional.normalize(torch.randn(rows.numel(), D, generator=g), dim=1), 1)
        store.update_geometry(store.live_slots())
    store.search_np(queries, 5, exact=True)
    assert store.index.mode == "exact"
    assert (index._mirror is not None) == (key_dtype == "float16" and exact_below == 8_192)


@pytest.mark.parametrize(("key_dtype", "scan_dim"), [("float32", 8), ("float16", 8), ("float32", None)])
def test_ivf_path_finds_every_stored_key_and_keeps_recall(key_dtype, scan_dim):
    index = TransitionIndex(mode="ivf", min_ivf=256, nprobe=8, scan_dim=scan_dim)
    store = MemoryStore(embed_dim=D, capacity=6_000, index=index, key_dtype=key_dtype, seed=0)
    g = torch.Generator().manual_seed(1)
    for _ in range(250):
        ep = Episode(states=torch.randn(21, 3, generator=g), actions=torch.zeros(20, 1), rewards=torch.ones(20))
        store.add(ep, unit_keys(g, 20))
    rows = torch.nonzero(store.row_slot >= 0).flatten()[torch.randint(5_000, (60,), generator=g)]
    own = np.ascontiguousarray(keys_as_float32(store.keys[rows]).numpy())
    scores, slots = store.search_np(own, 3, exact=False)
    assert index.mode == "ivf" and index.describe()["cells"] > 1
    assert slots[:, 0].tolist() == store.row_slot[rows].tolist()  # its own unit at rank 1
    assert scores[:, 0] == pytest.approx(1.0, abs=1e-5)
    queries = queries_near(store, g, n=60)
    fast_s, fast_i = store.search_np(queries, 5, exact=False)
    exact_s, _ = store.search_np(queries, 5, exact=True)
    hits = (fast_s >= exact_s[:, -1:] - 1e-6).sum()
    assert hits / fast_s.size >= 0.95  # recall@5 of the fast path on this fixed case (1.0 when written)


def test_ivf_upkeep_never_returns_stale_rows_and_compacts():
    index = TransitionIndex(mode="ivf", min_ivf=256)
    store, g = filled(index, n_units=60, capacity=1_000)
    queries = queries_near(store, g, n=10)
    store.search_np(queries, 4, exact=False)  # fit
    fits = index.fits
    for round_ in range(12):  # keep inserting: evictions, retained units moving, cells growing
        for _ in range(15):
            ep = Episode(states=torch.randn(21, 3, generator=g), actions=torch.zeros(20, 1), rewards=torch.ones(20))
            store.add(ep, unit_keys(g, 20))
        if round_ == 5:  # a partial key refresh
            rows = torch.nonzero(store.row_slot >= 0).flatten()[:200]
            store.rekey(rows, torch.nn.functional.normalize(torch.randn(200, D, generator=g), dim=1), 2)
        queries = queries_near(store, g, n=10)
        scores, slots = store.search_np(queries, 4, exact=False)
        for qi in range(queries.shape[0]):
            truth = brute_maxsim(store, torch.from_numpy(queries[qi]))
            for s, slot in zip(scores[qi].tolist(), slots[qi].tolist()):
                assert slot in truth  # live
                assert s <= truth[slot] + 1e-5  # a real transition of that unit, with its current key
    d = index.describe(store)
    assert d["entries"] <= 2 * len(store) + 1_024 and index.fits == fits  # compacted, not re-fitted
    store.index.rebuild(store)
    store.search_np(queries, 4, exact=False)
    assert index.fits == fits + 1


def test_auto_mode_switches_at_exact_below_and_reports_it():
    index = TransitionIndex(exact_below=1_000, min_ivf=256)
    store, g = filled(index, n_units=30, T=20, capacity=5_000)
    q = queries_near(store, g, n=1)
    store.search_np(q, 2, exact=False)
    assert len(store) < 1_000 and index.mode == "exact" and index.describe(store)["mode"] == "exact"
    for _ in range(60):
        ep = Episode(states=torch.randn(21, 3, generator=g), actions=torch.zeros(20, 1), rewards=torch.ones(20))
        store.add(ep, unit_keys(g, 20))
    store.search_np(q, 2, exact=False)
    assert index.mode == "ivf"
    store.search_np(q, 2, exact=True)  # exact=True is always brute force
    assert index.mode == "exact"


def test_config_round_trips_and_bad_settings_are_named():
    index = make_index({"type": "transition", "nprobe": 4, "exact_below": 100})
    assert isinstance(index, TransitionIndex) and make_index(index.config()).config() == index.config()
    assert isinstance(MemoryStore(embed_dim=4).index, TransitionIndex)  # the default
    with pytest.raises(ValidationError, match="index.mode"):
        TransitionIndex(mode="hnsw")
    with pytest.raises(ValidationError, match="index.nprobe"):
        TransitionIndex(nprobe=0)
    with pytest.raises(ValidationError, match="index.nlist"):
        TransitionIndex(nlist=0)
    with pytest.raises(ValidationError, match="index.scan_dim"):
        TransitionIndex(scan_dim=0)
    with pytest.raises(ValidationError, match="index.scan_dim"):
        TransitionIndex(scan_dim="half")
    with pytest.raises(ValidationError, match="index.rerank"):
        TransitionIndex(rerank=0)


def test_a_query_whose_probed_cells_went_stale_is_answered_exactly():
    # Fit two cells on two regions of key space, A and B, then evict every unit of A by adding more
    # units in B (FIFO). A query at A probes only A's cell, whose entries are all stale now: it must
    # still get k live units (found by exact search), never an empty answer.
    index = TransitionIndex(mode="ivf", nprobe=1, min_ivf=16, nlist=2)
    store = MemoryStore(embed_dim=D, capacity=2_000, index=index, eviction="fifo", seed=0)
    g = torch.Generator().manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(D, generator=g), dim=0)
    b = -a

    def add_units(centre, n):
        for _ in range(n):
            keys = torch.nn.functional.normalize(centre + 0.05 * torch.randn(20, D, generator=g), dim=1)
            ep = Episode(states=torch.randn(21, 3, generator=g), actions=torch.zeros(20, 1), rewards=torch.ones(20))
            store.add(ep, keys)

    add_units(a, 50)
    add_units(b, 50)
    query = a.numpy()[None, :].astype(np.float32)
    scores, _ = store.search_np(query, 5)  # fits the two cells
    assert index.fits == 1 and index.fallbacks == 0 and float(scores.min()) > 0.9  # A's units, found by IVF
    add_units(b, 50)  # evicts every unit of A
    scores, slots = store.search_np(query, 5)
    assert index.fits == 1 and index.fallbacks == 1
    assert (slots >= 0).all() and np.isfinite(scores).all()
    check_against_brute(store, query, scores, slots, 5)
    assert index.describe()["fallbacks"] == 1


def test_cells_keep_a_quarter_of_the_key_width_by_default_in_int32_bookkeeping():
    assert TransitionIndex().scan_width(64) == 24 and TransitionIndex().scan_width(128) == 32
    assert TransitionIndex().scan_width(D) is None  # 24 >= 16: whole keys, no re-scoring
    assert TransitionIndex(scan_dim=None).scan_width(64) is None and TransitionIndex(scan_dim=12).scan_width(64) == 12
    index = TransitionIndex(mode="ivf", min_ivf=256, scan_dim=8)
    store, g = filled(index, n_units=60, capacity=2_000)
    store.search_np(queries_near(store, g, n=2), 3, exact=False)  # fits the cells
    d = index.describe(store)
    assert d["scan_width"] == 8 == index._pool_keys.shape[1]
    assert index._pool_rows.dtype == index._pool_stamps.dtype == index._stamp.dtype == np.int32
    per_entry = index._pool_keys.itemsize * 8 + 8
    assert d["bytes"] == index._pool_rows.size * per_entry + index._stamp.nbytes
