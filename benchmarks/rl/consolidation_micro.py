"""Experiment 6: consolidation micro-benchmark on synthetic data with planted rare successes.

Episodes are smooth random walks in a 6-d state space; a rare share (``--rate``) are successes
(return > 0 at the last step) whose trajectories run through a shifted region of state space. So
what paid off is *learnable* from the features, but rare. We call
``buffer.consolidate(steps=--chunk, report_quality=True)`` repeatedly and record how the quality
figures move with the number of encoder steps:

* ``reward_alignment``: correlation of a transition's unit return with its neighbours' (1 = the
  key space is organised by outcome);
* ``success_precision`` vs ``success_base_rate``: share of a success's nearest neighbours that are
  successes, against chance;
* ``effective_rank`` and ``mean_cosine``: collapse indicators;
* ``steps_per_s`` (training only) and ``refresh_s`` (re-encoding every key).

Settings (``--settings``): ``rank`` (the default consolidator), ``raw`` (standardised raw returns),
``rw0`` (temporal only); ``--returns heavy`` gives successes heavy-tailed returns (lognormal) and a
few failures small positive noise, where rank and raw weighting differ most.

Examples::

    python benchmarks/rl/consolidation_micro.py --out runs/rl/consolidation
    python benchmarks/rl/consolidation_micro.py --seeds 1 --rounds 3 --chunk 20 --out /tmp/cm
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.rl import common

SETTINGS = {"rank": dict(reward_mode="rank", reward_weight=0.5), "raw": dict(reward_mode="raw", reward_weight=0.5),
            "rw0": dict(reward_mode="rank", reward_weight=0.0)}
FIGURES = ["reward_alignment", "success_precision", "success_base_rate", "effective_rank", "mean_cosine"]


def planted_episodes(n: int, T: int, rate: float, seed: int, returns: str = "binary", shift: float = 3.0) -> list[Any]:
    """Synthetic episodes: random walks; rare successes pass through a region shifted by ``shift``."""
    import torch

    from hippogym import Episode

    g = torch.Generator().manual_seed(seed)
    episodes = []
    for i in range(n):
        success = bool(torch.rand(1, generator=g) < rate) or i == 0  # at least one success
        states = torch.cumsum(torch.randn(T + 1, 6, generator=g) * 0.3, 0) + torch.randn(1, 6, generator=g)
        rewards = torch.zeros(T)
        if success:
            states[:, 0] += shift
            rewards[-1] = 1.0 if returns == "binary" else float(torch.exp(torch.randn(1, generator=g) * 1.5))
        elif returns == "heavy":
            rewards[-1] = float(torch.rand(1, generator=g) * 0.05)
        episodes.append(Episode(states=states, actions=torch.randn(T, 1, generator=g), rewards=rewards, success=success))
    return episodes


def run_one(arm: str, seed: int, group: str = "binary", episodes: int = 400, T: int = 16, rate: float = 0.05,
            rounds: int = 10, chunk: int = 50, batch_size: int = 128, embed_dim: int = 64,
            temperature: float = 0.07, lr: float = 1e-3) -> dict[str, Any]:
    """Fill a memory with planted episodes, then consolidate ``rounds`` x ``chunk`` steps."""
    import torch

    from hippogym import Consolidator, DualEncoder, HippocampalReplayBuffer, MemoryStore

    data = planted_episodes(episodes, T, rate, seed, group)
    torch.manual_seed(seed)
    encoder = DualEncoder(input_dim=6 + 1 + 1, embed_dim=embed_dim, momentum=0.99)
    settings = SETTINGS[arm]
    consolidator = Consolidator(encoder, temperature=temperature, lr=lr, seed=seed, **settings)
    buffer = HippocampalReplayBuffer(MemoryStore(embed_dim=embed_dim, capacity=episodes * T + 1, key_dtype=common.KEY_DTYPE, seed=seed), encoder,
                                     consolidator=consolidator, seed=seed)
    buffer.add_episodes(data)
    curve: list[dict[str, Any]] = []
    done, train_s, refresh_s = 0, 0.0, 0.0
    for i in range(rounds):
        t0 = time.perf_counter()
        m = buffer.consolidate(steps=chunk, batch_size=batch_size, report_quality=True)
        wall = time.perf_counter() - t0
        if i == 0:
            curve.append({"step": 0, **{k: m.get(f"before_{k}", math.nan) for k in FIGURES}})
        done += chunk
        train_s += chunk / m["steps_per_s"] if m["steps_per_s"] else 0.0
        refresh_s += float(m.get("refresh_s", 0.0))
        curve.append({"step": done, **{k: m.get(k, math.nan) for k in FIGURES}, "loss": m["loss"],
                      "steps_per_s": m["steps_per_s"], "refresh_s": m.get("refresh_s"), "call_s": wall})
    last, first = curve[-1], curve[0]
    return {
        "experiment": "consolidation_micro", "arm": arm, "group": group, "seed": seed,
        "transitions": len(buffer), "units": buffer.num_episodes, "batch_size": batch_size, "chunk": chunk,
        "rounds": rounds, **{f"final_{k}": last[k] for k in FIGURES}, **{f"initial_{k}": first[k] for k in FIGURES},
        "alignment_gain": last["reward_alignment"] - first["reward_alignment"],
        "precision_lift": last["success_precision"] / max(last["success_base_rate"], 1e-9),
        "steps_per_s": done / train_s if train_s > 0 else math.nan,
        "refresh_s_per_call": refresh_s / rounds,
        "curve": curve,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(parser, steps=None, seeds="3")
    parser.add_argument("--settings", default="rank,raw,rw0")
    parser.add_argument("--returns", default="binary,heavy", help="binary and/or heavy (comma list)")
    parser.add_argument("--episodes", type=int, default=400)
    parser.add_argument("--rate", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--chunk", type=int, default=50, help="consolidation steps per call")
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args(argv)
    seeds = common.parse_seeds(args.seeds)
    arms = common.parse_list(args.settings, str)
    groups = common.parse_list(args.returns, str)
    jobs = [dict(arm=a, seed=s, group=g, episodes=args.episodes, rate=args.rate, rounds=args.rounds, chunk=args.chunk,
                 batch_size=args.batch_size) for g in groups for s in seeds for a in arms]
    if args.dry_run:
        return common.dry_run(jobs)
    out = Path(args.out)
    results = common.run_jobs("benchmarks.rl.consolidation_micro:run_one", jobs, args.workers, on_result=lambda r: common.write_seed(out, r))
    metrics = ["final_reward_alignment", "alignment_gain", "final_success_precision", "final_success_base_rate",
               "precision_lift", "final_effective_rank", "final_mean_cosine", "steps_per_s", "refresh_s_per_call"]
    baseline = "rank" if "rank" in arms else arms[0]
    summary = common.summarize(results, metrics, baseline=baseline, extra={
        "experiment": "consolidation_micro", "command": " ".join(sys.argv),
        "config": dict(seeds=seeds, settings={a: SETTINGS[a] for a in arms}, returns=groups, episodes=args.episodes,
                       rate=args.rate, rounds=args.rounds, chunk=args.chunk, batch_size=args.batch_size)})
    labels = {"final_reward_alignment": "reward alignment", "alignment_gain": "alignment gain",
              "final_success_precision": "success precision", "final_success_base_rate": "base rate",
              "precision_lift": "precision / base rate", "final_effective_rank": "effective rank",
              "steps_per_s": "steps/s"}
    common.finish(out, "Consolidation micro-benchmark", summary,
                  ["final_reward_alignment", "final_success_precision", "precision_lift", "final_effective_rank", "steps_per_s"],
                  labels)
    if not args.no_plot:
        _plot(results, out / "consolidation_quality.png")
    return summary


def _plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys(r["group"] for r in results))
    keys = [("reward_alignment", "reward alignment"), ("success_precision", "success precision (dashed: base rate)"),
            ("effective_rank", "effective rank")]
    fig, axes = plt.subplots(len(groups), len(keys), figsize=(4.2 * len(keys), 3.2 * len(groups)), squeeze=False)
    for gi, g in enumerate(groups):
        for ki, (key, title) in enumerate(keys):
            ax = axes[gi][ki]
            for arm in dict.fromkeys(r["arm"] for r in results):
                sub = [r for r in results if r["group"] == g and r["arm"] == arm]
                grid, ys = common.align_curves(sub, key)
                mean, lo, hi = common.band(ys)
                line, = ax.plot(grid, mean, label=f"{arm} (n={len(sub)})")
                ax.fill_between(grid, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
                if key == "success_precision":
                    _, base = common.align_curves(sub, "success_base_rate")
                    ax.plot(grid, base.mean(0), color=line.get_color(), linestyle="--", linewidth=0.8)
            ax.set_title(f"{title} — {g} returns", fontsize=9)
            ax.set_xlabel("consolidation steps", fontsize=8)
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
