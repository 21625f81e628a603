"""Does consolidation serve values? k-NN value estimates from keys, by what the reward target compares.

A memory of CartPole-v1 episodes (random policy, recorded through ``RecordEpisodes``) is
consolidated with three settings of the same consolidator, one fresh encoder each (same seed):

* ``none``: no consolidation (the random initial encoder);
* ``unit_return``: the reward target compares anchors' unit returns (the default);
* ``return_to_go``: it compares each anchor's own discounted return-to-go (``gamma`` 0.99).

The figure is how well the keys serve an episodic value estimate (MFEC/NEC style): for held-out
transitions (other episodes, same policy), the mean return-to-go of their ``k`` nearest stored
transitions (``hippogym.replay.value.episodic_values``, exact search) against their own
return-to-go: mean absolute error, and the Spearman rank correlation. Lower error / higher
correlation = neighbouring keys agree on value. Per-seed results go to ``--out`` as JSON, with the
command and versions.

Examples::

    python benchmarks/rl/consolidation_values.py --out docs/evidence/runs/consolidation_values
    python benchmarks/rl/consolidation_values.py --seeds 1 --steps 2000 --consolidate 20 --out /tmp/cv
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

SETTINGS = ("none", "unit_return", "return_to_go")


def record(steps: int, seed: int) -> Any:
    """A buffer holding ``steps`` CartPole transitions of a random policy."""
    import gymnasium as gym

    from hippogym import HippocampalReplayBuffer, MemoryStore, RecordEpisodes

    buffer = HippocampalReplayBuffer(MemoryStore(embed_dim=64, capacity=steps + 1_000, key_dtype="float32", seed=seed), seed=seed)
    env = RecordEpisodes(gym.make("CartPole-v1"), buffer)
    env.action_space.seed(seed)
    env.reset(seed=seed)
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    env.close()
    return buffer


def returns_to_go(buffer: Any, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """Live rows and their discounted returns-to-go inside their units."""
    from hippogym.returns import discounted_returns

    store = buffer.memory
    slots = store.live_slots()
    starts, lengths = store.unit_start[slots].numpy(), store.unit_length[slots].numpy()
    rtg = discounted_returns(store.rewards.numpy(), starts, lengths, gamma)
    rows = store.rows_of(slots)[0].numpy()
    return rows, rtg[rows]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def run_seed(seed: int, args: argparse.Namespace) -> dict[str, Any]:
    from hippogym.replay.value import episodic_values

    torch.manual_seed(seed)
    held_out = record(args.held_out, seed + 10_000)
    all_rows, all_rtg = returns_to_go(held_out, args.gamma)
    pick = np.random.default_rng(seed).choice(all_rows.size, min(args.queries, all_rows.size), replace=False)
    q_rows, q_rtg = all_rows[pick], all_rtg[pick]
    out: dict[str, Any] = {"seed": seed}
    for setting in SETTINGS:
        buffer = record(args.steps, seed)
        if setting != "none":
            buffer.consolidator = None
            buffer.consolidator_kwargs = {"value": setting, "gamma": args.gamma}
            t0 = time.perf_counter()
            for _ in range(args.consolidate // 50):
                buffer.consolidate(steps=50, batch_size=64)
            out[f"{setting}_seconds"] = round(time.perf_counter() - t0, 2)
        rows, rtg = returns_to_go(buffer, args.gamma)
        keys = buffer.memory.keys[torch.from_numpy(rows)].float()
        obs = held_out.memory.gather(torch.from_numpy(q_rows))["observations"]
        queries = buffer.embed_queries(obs)
        est = episodic_values(queries, keys, torch.from_numpy(rtg.astype(np.float32)), k=args.k, mode="mean")
        pred = est.values.numpy()
        out[setting] = {
            "mae": round(float(np.abs(pred - q_rtg).mean()), 4),
            "spearman": round(spearman(pred, q_rtg), 4),
        }
    out["rtg_std"] = round(float(q_rtg.std()), 4)
    return out


def versions() -> dict[str, str]:
    import gymnasium

    import hippogym

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:  # pragma: no cover
        commit = ""
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "gymnasium": gymnasium.__version__, "hippogym": hippogym.__version__, "commit": commit}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=20_000, help="CartPole transitions in memory")
    parser.add_argument("--held-out", type=int, default=3_000, help="transitions recorded for the queries")
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--consolidate", type=int, default=500, help="consolidation steps (batches of 64)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--gamma", type=float, default=0.99)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    runs = [run_seed(s, args) for s in range(args.first_seed, args.first_seed + args.seeds)]
    summary = {
        s: {m: round(float(np.mean([r[s][m] for r in runs])), 4) for m in ("mae", "spearman")} for s in SETTINGS
    }
    result = {"command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
              "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "versions": versions(), "runs": runs, "mean": summary}
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
