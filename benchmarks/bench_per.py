"""Prioritised replay: ``sample(256)`` + ``update_priorities`` against cpprb and SB3's uniform buffer.

What a user calls on each gradient step of a prioritised agent: draw a batch (proportional
priorities, importance weights with ``beta``) and write back the new TD errors. The peers:

* cpprb's ``PrioritizedReplayBuffer`` (a C++ segment tree; what users pick for fast PER in Python),
  the same ``alpha`` 0.6 and ``beta`` 0.4, the same data;
* SB3's ``ReplayBuffer.sample(256)`` (uniform, no update), the cost a DQN user pays today.

Both buffers hold ``size`` transitions of 8-float observations and 2-float actions. Calls are timed
in interleaved blocks (``--calls`` per block, order flipped on every repeat), median of ``--repeats``.
**Ratio = peer time / hippogym time** (above 1: hippogym faster).

Example::

    python benchmarks/bench_per.py --sizes 100000,1000000 > per.json
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_consolidation import fill, report, start  # noqa: E402 - the same data and report
from bench_memory import interleaved  # noqa: E402 - the memory benchmark's interleaved timing

logger = logging.getLogger("bench_per")

BATCH = 256


def _hippo(size: int, seed: int) -> Any:
    from hippogym import HippocampalReplayBuffer, MemoryStore

    buffer = HippocampalReplayBuffer(MemoryStore(embed_dim=16, capacity=size, seed=seed), mixture_ratio=0.0,
                                     sampler="prioritized", seed=seed)
    return fill(buffer, size, seed, walk=False)


def _cpprb(size: int, seed: int) -> Any:
    from cpprb import PrioritizedReplayBuffer

    rng = np.random.default_rng(seed)
    rb = PrioritizedReplayBuffer(size, {"obs": {"shape": 8}, "next_obs": {"shape": 8}, "act": {"shape": 2},
                                        "rew": {}, "done": {}}, alpha=0.6)
    for _ in range(size // 10_000):
        rb.add(obs=rng.normal(0, 1, (10_000, 8)), next_obs=rng.normal(0, 1, (10_000, 8)),
               act=rng.normal(0, 1, (10_000, 2)), rew=rng.random(10_000), done=np.zeros(10_000))
    return rb


def _sb3(size: int, seed: int) -> Any:
    from gymnasium import spaces
    from stable_baselines3.common.buffers import ReplayBuffer

    rng = np.random.default_rng(seed)
    rb = ReplayBuffer(size, spaces.Box(-np.inf, np.inf, (8,), np.float32), spaces.Box(-1, 1, (2,), np.float32),
                      device="cpu", n_envs=1)
    rb.observations[:size, 0] = rng.normal(0, 1, (size, 8))
    rb.next_observations[:size, 0] = rng.normal(0, 1, (size, 8))
    rb.actions[:size, 0] = rng.normal(0, 1, (size, 2))
    rb.rewards[:size, 0] = rng.random(size)
    rb.full, rb.pos = True, 0
    return rb


def measure(size: int, calls: int, repeats: int, seed: int) -> dict[str, Any]:
    hippo, cp, sb3 = _hippo(size, seed), _cpprb(size, seed), _sb3(size, seed)
    td = [torch.from_numpy(np.abs(np.random.default_rng(seed + i).normal(0, 1, BATCH)).astype(np.float32))
          for i in range(16)]
    td_np = [t.numpy().astype(np.float64) for t in td]
    state = {"i": 0}

    def ours() -> None:
        batch = hippo.sample(BATCH)
        hippo.update_priorities(batch.indices, td[state["i"] % 16])
        state["i"] += 1

    def theirs() -> None:
        batch = cp.sample(BATCH, beta=0.4)
        cp.update_priorities(batch["indexes"], td_np[state["i"] % 16])
        state["i"] += 1

    for fn in (ours, theirs):  # warm up (first calls build caches)
        for _ in range(50):
            fn()
    timed = interleaved({"hippogym": ours, "cpprb": theirs, "sb3_uniform": lambda: sb3.sample(BATCH)}, calls, repeats)
    res = {name: t["median"] for name, t in timed.items()}
    return {
        "size": size, "calls": calls, "repeats": repeats,
        **{f"{k}_us": round(v * 1e6, 1) for k, v in res.items()},
        "ratio_vs_cpprb": round(res["cpprb"] / res["hippogym"], 2),
        "ratio_vs_sb3_uniform": round(res["sb3_uniform"] / res["hippogym"], 2),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start()
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        row = measure(size, args.calls, args.repeats, args.seed)
        logger.info("%s", row)
        rows.append(row)
    return report("prioritized", "bench_per.py", rows, argv, distributions=("cpprb",))


if __name__ == "__main__":
    main()
