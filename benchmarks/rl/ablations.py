"""Experiment 5: ablations of the hybrid replay on the sparse corridor (SB3 DQN, same hyperparameters).

Every arm but ``uniform`` builds its :class:`~hippogym.HippocampalReplayBuffer` explicitly, with an
explicit :class:`~hippogym.Consolidator` (``common.build_hippo_buffer``), and hands it to
``HippoReplayBuffer(buffer=...)``. ``base`` is the default configuration; each other arm changes
one thing:

============  =================================================================
arm           change from ``base`` (reward_weight 0.5, rank, constant mixture 0.5, utility, T=0.07)
============  =================================================================
``rw0``       ``reward_weight=0`` (temporal InfoNCE only)
``rw1``       ``reward_weight=1`` (reward positives only)
``raw``       ``reward_mode="raw"`` (standardised raw returns instead of ranks)
``ramp``      ``mixture_ratio=RampSchedule(0.2, 0.5, warmup=learning_starts, ramp=steps/2)``
``fifo``      ``eviction="fifo"``
``t0.05``     ``temperature=0.05``
``t0.1``      ``temperature=0.1``
``uniform``   SB3's own ReplayBuffer (reference)
============  =================================================================

The summary reports every arm against ``base`` (``diff_vs_base``) and against ``uniform``.

Examples::

    python benchmarks/rl/ablations.py --out runs/rl/ablations        # 9 arms x 5 seeds x 15k, corridor 20
    python benchmarks/rl/ablations.py --arms base,raw --seeds 3 --out runs/rl/rank   # rank vs raw
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.rl import (
    common,
    sparse_corridor,
)

BASE = dict(mixture_ratio=0.5, reward_weight=0.5, reward_mode="rank", temperature=0.07, eviction="utility")
VARIANTS: dict[str, dict[str, Any]] = {
    "base": {},
    "rw0": dict(reward_weight=0.0),
    "rw1": dict(reward_weight=1.0),
    "raw": dict(reward_mode="raw"),
    "ramp": dict(mixture_ratio="ramp"),
    "fifo": dict(eviction="fifo"),
    "t0.05": dict(temperature=0.05),
    "t0.1": dict(temperature=0.1),
}
METRICS = ["final_success", "auc_success", "steps_to_90_censored", "reached_90", "train_s"]


def config_for(arm: str, steps: int, learning_starts: int, cons_every: int, cons_steps: int) -> dict[str, Any]:
    cfg = {**BASE, **VARIANTS[arm], "consolidate_every": cons_every, "consolidate_steps": cons_steps}
    if cfg["mixture_ratio"] == "ramp":  # a config dict (picklable across processes; make_schedule reads it)
        cfg["mixture_ratio"] = {"type": "ramp", "start": 0.2, "end": 0.5, "warmup": learning_starts, "ramp": max(1, steps // 2)}
    return cfg


def run_one(arm: str, seed: int, steps: int, group: int = 20, eval_every: int = 1_000, cons_every: int = 2_000,
            cons_steps: int = 50, hp: dict[str, Any] | None = None) -> dict[str, Any]:
    """One corridor run of one ablation arm."""
    params = {**common.DQN_SPARSE, **(hp or {})}
    if arm == "uniform":
        result = sparse_corridor.run_one("uniform", group, seed, steps, eval_every=eval_every, hp=hp)
    else:
        cfg = config_for(arm, steps, int(params["learning_starts"]), cons_every, cons_steps)
        # A consolidator setting in the config makes common.replay_kwargs build the buffer explicitly.
        result = sparse_corridor.run_one("explicit", group, seed, steps, eval_every=eval_every, hippo=cfg, hp=hp)
        result["hippo"] = cfg
    result.update(experiment="ablations", arm=arm)
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(parser, steps=15_000)
    parser.add_argument("--arms", default=",".join(["uniform", *VARIANTS]))
    parser.add_argument("--length", type=int, default=20)
    parser.add_argument("--eval-every", type=int, default=1_000)
    parser.add_argument("--cons-every", type=int, default=common.HIPPO_DEFAULT["consolidate_every"])
    parser.add_argument("--cons-steps", type=int, default=common.HIPPO_DEFAULT["consolidate_steps"])
    args = parser.parse_args(argv)
    seeds = common.parse_seeds(args.seeds)
    arms = common.parse_list(args.arms, str)
    unknown = [a for a in arms if a != "uniform" and a not in VARIANTS]
    if unknown:
        parser.error(f"unknown arms {unknown}; choose from uniform, {', '.join(VARIANTS)}")
    jobs = [dict(arm=arm, seed=s, steps=args.steps, group=args.length, eval_every=args.eval_every,
                 cons_every=args.cons_every, cons_steps=args.cons_steps, hp=common.hp_overrides(args))
            for s in seeds for arm in arms]
    if args.dry_run:
        return common.dry_run(jobs)
    out = Path(args.out)
    results = common.run_jobs("benchmarks.rl.ablations:run_one", jobs, args.workers, on_result=lambda r: common.write_seed(out, r))
    config = dict(steps=args.steps, seeds=seeds, arms=arms, length=args.length, base=BASE, variants=VARIANTS,
                  cons_every=args.cons_every, cons_steps=args.cons_steps, dqn=common.DQN_SPARSE)
    baseline = "base" if "base" in arms else "uniform"
    summary = common.summarize(results, METRICS, baseline=baseline, extra={
        "experiment": "ablations", "config": config, "command": " ".join(sys.argv)})
    if baseline != "uniform" and "uniform" in arms:
        summary["vs_uniform"] = common.summarize(results, METRICS, baseline="uniform")["results"]
    common.finish(out, f"Ablations (corridor length {args.length})", summary, METRICS[:4], sparse_corridor.LABELS)
    if not args.no_plot:
        common.plot_curves(results, "eval_success", out / "ablations_success.png", f"Ablations, corridor {args.length}",
                           "greedy success", panels=None)
    return summary


if __name__ == "__main__":
    main()
