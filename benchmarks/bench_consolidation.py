"""Consolidation cost against memory size: the default incremental key refresh against the full one.

What a user calls is ``buffer.consolidate(50, 64)`` followed by sampling. The cost of a call is its
training steps plus the key refresh, and with the default transition index a full refresh also
resets the index's cells, which the next fresh-query search pays for (a k-means fit and re-filing
every key). Both are timed here, for each refresh setting and memory size, in the same process:

* ``auto`` (the default): all keys while the memory holds at most ``refresh_rows`` (16,384)
  transitions, then about that many per call, oldest keys first;
* ``full`` (the default before): every key, every call.

Per size and setting: the median of ``--repeats`` calls of ``consolidate(50, 64)`` (seconds), the
next fresh-query ``sample(256)`` after it (seconds), keys re-encoded per call and the share of keys
left stale. Observations of 8 floats, actions of 2, episodes of 100 steps, 128-d keys, one thread.

Example::

    python benchmarks/bench_consolidation.py --sizes 10000,100000,1000000 > consolidation.json
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import platform
import statistics
import sys
import time
from typing import Any

import numpy as np
import torch

logger = logging.getLogger("bench_consolidation")


def make_buffer(size: int, refresh: str, seed: int) -> Any:
    """A buffer of ``size`` transitions (see :func:`fill`) whose consolidator refreshes keys by ``refresh``.

    The default keys (64-d float16; runs committed before 2026-12-08 used 128-d float32).
    """
    from hippogym import Consolidator, DualEncoder, HippocampalReplayBuffer, MemoryStore
    from hippogym.types import DEFAULT_EMBED_DIM

    torch.manual_seed(seed)
    encoder = DualEncoder(input_dim=8 + 2 + 1, embed_dim=DEFAULT_EMBED_DIM)
    buffer = HippocampalReplayBuffer(
        MemoryStore(embed_dim=DEFAULT_EMBED_DIM, capacity=size, seed=seed), encoder,
        consolidator=Consolidator(encoder, refresh=refresh, seed=seed), mixture_ratio=0.5, seed=seed,
    )
    return fill(buffer, size, seed, walk=True)


def fill(buffer: Any, size: int, seed: int, walk: bool = True) -> Any:
    """Add ``size`` transitions in episodes of 100 steps (8-float observations, 2-float actions).

    Observations are random walks from a random start (``walk``) or i.i.d. normal; keys are encoded
    in groups of 1,000 episodes. Returns the buffer.
    """
    from hippogym import Episode

    rng = np.random.default_rng(seed)
    episodes = []
    for _ in range(size // 100):
        if walk:
            obs = np.cumsum(rng.normal(0, 0.1, (101, 8)), 0).astype(np.float32) + rng.normal(0, 1, 8).astype(np.float32)
        else:
            obs = rng.normal(0, 1, (101, 8)).astype(np.float32)
        actions = rng.normal(0, 1, (100, 2)).astype(np.float32)
        rewards = rng.random(100).astype(np.float32)
        episodes.append(Episode(observations=torch.from_numpy(obs), actions=torch.from_numpy(actions),
                                rewards=torch.from_numpy(rewards)))
        if len(episodes) == 1000:
            buffer.add_episodes(episodes)
            episodes = []
    if episodes:
        buffer.add_episodes(episodes)
    return buffer


def start() -> None:
    """What every benchmark here sets first: progress logged on stderr, one torch thread."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    torch.set_num_threads(1)


def report(benchmark: str, script: str, rows: list[dict[str, Any]], argv: list[str] | None,
           distributions: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    """Print (and return) a run as JSON: its rows, ``extra`` figures, the command and the versions."""
    versions = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}
    versions.update({dist: importlib.metadata.version(dist) for dist in distributions})
    out = {
        "benchmark": benchmark, "rows": rows, **extra,
        "command": f"python benchmarks/{script} " + " ".join(argv if argv is not None else sys.argv[1:]),
        "versions": versions,
    }
    print(json.dumps(out, indent=2))
    return out


def measure(size: int, refresh: str, repeats: int, seed: int) -> dict[str, Any]:
    """Median cost of ``consolidate(50, 64)`` and of the fresh-query sample after it."""
    buffer = make_buffer(size, refresh, seed)
    rng = np.random.default_rng(seed + 1)
    buffer.sample(256, query_state=rng.normal(0, 1, 8).astype(np.float32))  # the index is built before timing
    calls, after, refreshed, stale = [], [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        metrics = buffer.consolidate(50, 64)
        t1 = time.perf_counter()
        buffer.sample(256, query_state=rng.normal(0, 1, 8).astype(np.float32))
        t2 = time.perf_counter()
        calls.append(t1 - t0)
        after.append(t2 - t1)
        refreshed.append(metrics["keys_refreshed"])
        stale.append(metrics["stale_fraction"])
    return {
        "size": size, "refresh": refresh, "repeats": repeats,
        "consolidate_s": round(statistics.median(calls), 4),
        "next_sample_s": round(statistics.median(after), 4),
        "total_s": round(statistics.median(c + a for c, a in zip(calls, after)), 4),
        "keys_refreshed": int(statistics.median(refreshed)),
        "stale_fraction_after": round(stale[-1], 4),
        "index_mode": buffer.memory.index.describe()["mode"],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--refresh", default="auto,full")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start()
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        for refresh in args.refresh.split(","):
            row = measure(size, refresh, args.repeats, args.seed)
            logger.info("%s", row)
            rows.append(row)
    by = {(r["size"], r["refresh"]): r for r in rows}
    ratios = {
        str(size): round(by[(size, "full")]["total_s"] / by[(size, "auto")]["total_s"], 2)
        for size in {r["size"] for r in rows} if (size, "full") in by and (size, "auto") in by
    }
    return report("consolidation", "bench_consolidation.py", rows, argv, full_over_auto_total=ratios)


if __name__ == "__main__":
    main()
