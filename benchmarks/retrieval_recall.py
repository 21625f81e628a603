"""Recall and cost of every retrieval path against exact search (a part of ``bench_memory.py``).

For one memory, each path answers the same queries; a retrieved unit counts as a hit at ``k`` when
its exact MaxSim is at least the k-th best exact MaxSim (so ties count as hits). Paths:

* ``default``: the store's default index (``TransitionIndex``), the path hybrid sampling takes
  (``exact=False``); its mode (``exact`` below 8,192 transitions, ``ivf`` above) is reported.
* ``centroid``: the former default (``TorchIndex``: unit centroids, top 10, exact re-rank).
* ``faiss-centroid``: ``FaissIndex`` over unit centroids (flat until 2,048 units, IVF after).
* ``exact``: brute force over every key (``exact=True``), the reference; only its cost is new.

Key sets: the benchmark's random-walk memory, a CartPole memory recorded with a random policy
through ``RecordEpisodes``, and the same CartPole memory after ``consolidate(100, 64)``.
Queries: stored observations, and random observations with the stored data's per-axis mean and
spread.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np
import torch

from hippogym import HippocampalReplayBuffer, MemoryStore, RecordEpisodes
from hippogym.memory.index import FaissIndex, TorchIndex
from hippogym.memory.transition_index import TransitionIndex
from hippogym.types import DEFAULT_KEY_DTYPE


def cartpole_buffer(size: int, embed_dim: int, seed: int, key_dtype: str = DEFAULT_KEY_DTYPE) -> HippocampalReplayBuffer:
    """``size`` CartPole transitions recorded with a random policy."""
    import gymnasium as gym

    buffer = HippocampalReplayBuffer(MemoryStore(embed_dim=embed_dim, capacity=size, key_dtype=key_dtype, seed=seed), seed=seed)
    env = RecordEpisodes(gym.make("CartPole-v1"), buffer, ingest_every=4_096)
    env.action_space.seed(seed)
    env.reset(seed=seed)
    steps = 0
    while steps < size:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        steps += 1
        if terminated or truncated:
            env.reset()
    env.close()
    return buffer


def query_sets(buffer: HippocampalReplayBuffer, n: int, seed: int) -> dict[str, np.ndarray]:
    store = buffer.memory
    rows = np.flatnonzero(store.row_slot.numpy() >= 0)
    rng = np.random.default_rng(seed)
    name = next(iter(store.obs))
    obs = store.obs[name].numpy()[rows]
    stored = obs[rng.choice(rows.size, n, replace=False)].astype(np.float32)
    random = rng.normal(obs.mean(0), obs.std(0) + 1e-6, (n, *obs.shape[1:])).astype(np.float32)
    return {"stored": stored, "random": random}


def _paths(store: MemoryStore, default: Any) -> dict[str, tuple[Any, bool]]:
    paths: dict[str, tuple[Any, bool]] = {"default": (default, False), "centroid": (TorchIndex(), False)}
    try:
        import faiss  # noqa: F401

        paths["faiss-centroid"] = (FaissIndex(), False)
    except ImportError:  # pragma: no cover
        pass
    paths["exact"] = (TransitionIndex(mode="exact"), True)
    return paths


def measure(buffer: HippocampalReplayBuffer, queries: dict[str, np.ndarray], k: int = 5) -> dict[str, Any]:
    """Recall@1/@5 and median search cost (µs) of every path on ``buffer``'s memory."""
    store = buffer.memory
    default = store.index
    out: dict[str, Any] = {"transitions": len(store), "units": store.num_units}
    embs = {name: buffer.embed_queries(q).numpy() for name, q in queries.items()}
    # The exact answer of every query (the reference all paths are scored against).
    truth: dict[str, list[tuple[float, float, np.ndarray]]] = {}
    exact_index = TransitionIndex(mode="exact")
    store.index = exact_index
    for name, emb in embs.items():
        rows = []
        for i in range(emb.shape[0]):
            s, _ = store.search_np(emb[i : i + 1], k, exact=True)
            rows.append((float(s[0, 0]), float(s[0, k - 1]), emb[i]))
        truth[name] = rows
    try:
        for label, (index, exact) in _paths(store, default).items():
            store.index = index
            index.rebuild(store)
            store.search_np(embs["stored"][:1], k, exact=exact)  # fit / warm up outside the timing
            res: dict[str, Any] = {}
            for name, emb in embs.items():
                hits1 = hits5 = 0
                times = []
                for i in range(emb.shape[0]):
                    t0 = time.perf_counter()
                    s, slots = store.search_np(emb[i : i + 1], k, exact=exact)
                    times.append(time.perf_counter() - t0)
                    best1, kth, q = truth[name][i]
                    valid = slots[0][slots[0] >= 0]
                    true = store.maxsim(torch.from_numpy(q), torch.from_numpy(valid)).numpy()
                    hits5 += int((true >= kth - 1e-6).sum())
                    hits1 += int(valid.size > 0 and true[0] >= best1 - 1e-6)
                res[name] = {
                    "recall@1": round(hits1 / emb.shape[0], 3),
                    "recall@5": round(hits5 / (emb.shape[0] * k), 3),
                    "search_us": round(statistics.median(times) * 1e6, 1),
                }
            if label == "default":
                res["mode"] = index.describe(store)["mode"]
            out[label] = res
    finally:
        store.index = default
        default.rebuild(store)
    return out


def recall_table(buffer: HippocampalReplayBuffer, size: int, n_queries: int, seed: int, cartpole: bool,
                 embed_dim: int, logger: Any, key_dtype: str = DEFAULT_KEY_DTYPE) -> dict[str, Any]:
    """The recall/cost rows for one size: random-walk memory, CartPole, CartPole consolidated."""
    t0 = time.perf_counter()
    sets: dict[str, Any] = {"random-walk": measure(buffer, query_sets(buffer, n_queries, seed))}
    logger.info("recall random-walk@%d done (%.1f s)", size, time.perf_counter() - t0)
    if cartpole:
        cp = cartpole_buffer(size, embed_dim, seed, key_dtype)
        q = query_sets(cp, n_queries, seed + 1)
        sets["cartpole"] = measure(cp, q)
        cp.consolidate(steps=100, batch_size=64)
        sets["cartpole-consolidated"] = measure(cp, q)
        logger.info("recall cartpole@%d done (%.1f s)", size, time.perf_counter() - t0)
        del cp
    return sets
