"""Experiment 4: dense-reward parity. Hybrid replay must not hurt where uniform replay is enough.

CartPole-v1 with SB3 DQN and rl-baselines3-zoo's tuned hyperparameters (``common.DQN_CARTPOLE``),
the same for every arm; only the replay differs. Per seed: the learning curve (env steps vs greedy
eval return), the final return (mean of the last 3 evaluations), the mean return over the curve,
and the training wall time (evaluation excluded), whose ratio to uniform is the overhead.

``--env Pendulum-v1`` runs the same comparison with SAC (``common.SAC_DEFAULT``).

Examples::

    python benchmarks/rl/cartpole_parity.py --out runs/rl/cartpole          # 5 seeds x 50k steps
    python benchmarks/rl/cartpole_parity.py --seeds 2 --steps 10000 --out /tmp/cp
    python benchmarks/rl/cartpole_parity.py --env Pendulum-v1 --steps 8000 --out runs/rl/pendulum
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.rl import common

SPEC = "benchmarks.rl.cartpole_parity:run_one"
METRICS = ["final_return", "auc_return", "train_s", "steps_per_s"]
LABELS = {"final_return": "final return", "auc_return": "mean return (AUC)", "train_s": "train wall s",
          "steps_per_s": "env steps/s"}


def run_one(arm: str, seed: int, steps: int, env_id: str = "CartPole-v1", group: str = "", eval_every: int = 2_500,
            eval_episodes: int = 10, hippo: dict[str, Any] | None = None, hp: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train one agent; return its curve and figures."""
    import gymnasium as gym

    env = gym.make(env_id)
    eval_env = gym.make(env_id)
    sac = not isinstance(env.action_space, gym.spaces.Discrete)
    base = common.SAC_DEFAULT if sac else common.DQN_CARTPOLE
    params = {**base, **(hp or {})}
    params["learning_starts"] = min(int(params["learning_starts"]), max(100, steps // 5))
    model = common.make_agent(env, arm, seed, params, hippo)
    cb = common.make_eval_callback(lambda m: common.evaluate(m, eval_env, eval_episodes, 10_000 + seed), eval_every)
    common.learn(model, steps, cb, hippo)
    curve = cb.rows
    return {
        "experiment": "cartpole_parity", "arm": arm, "group": group or env_id, "seed": seed, "env": env_id,
        "steps": int(model.num_timesteps), "hippo": hippo, "hp": hp,
        "final_return": common.tail_mean(curve, "eval_return"),
        "auc_return": common.curve_mean(curve, "eval_return"),
        "train_s": cb.train_s,
        "steps_per_s": model.num_timesteps / cb.train_s if cb.train_s > 0 else None,
        **common.hippo_stats(model),
        "curve": curve,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_seed_args(parser)
    common.add_common_args(parser, steps=50_000)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--arms", default="uniform,hybrid")
    parser.add_argument("--eval-every", type=int, default=2_500)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--mixture", type=float, default=common.HIPPO_DEFAULT["mixture_ratio"])
    parser.add_argument("--cons-every", type=int, default=5_000)
    parser.add_argument("--cons-steps", type=int, default=common.HIPPO_DEFAULT["consolidate_steps"])
    args = parser.parse_args(argv)
    seeds = common.parse_seeds(args.seeds)
    arms = common.parse_list(args.arms, str)
    hippo = dict(mixture_ratio=args.mixture, consolidate_every=args.cons_every, consolidate_steps=args.cons_steps,
                 **common.sleep_overrides(args))
    jobs = [dict(arm=arm, seed=s, steps=args.steps, env_id=args.env, group=args.env, eval_every=args.eval_every,
                 eval_episodes=args.eval_episodes, hippo=hippo, hp=common.hp_overrides(args)) for s in seeds for arm in arms]
    if args.dry_run:
        return common.dry_run(jobs)
    out = Path(args.out)
    results = common.run_jobs(SPEC, jobs, args.workers, on_result=lambda r: common.write_seed(out, r))
    # Overhead: training wall time of each arm relative to uniform, seed by seed (same seed, same steps).
    ratios: dict[str, list[float]] = {}
    base = {r["seed"]: r["train_s"] for r in results if r["arm"] == "uniform"}
    for r in results:
        if r["arm"] != "uniform" and r["seed"] in base:
            ratios.setdefault(r["arm"], []).append(r["train_s"] / base[r["seed"]])
    overhead = {arm: common.bootstrap_mean(v) for arm, v in ratios.items()}
    summary = common.summarize(results, METRICS, extra={
        "experiment": "cartpole_parity", "wall_time_ratio_vs_uniform": overhead, "command": " ".join(sys.argv),
        "config": dict(env=args.env, steps=args.steps, seeds=seeds, arms=arms, hippo=hippo, eval_every=args.eval_every,
                       eval_episodes=args.eval_episodes),
    })
    if args.csv:
        common.write_runs_csv(args.csv, results, METRICS)
    common.finish(out, f"Parity on {args.env}", summary, ["final_return", "auc_return", "train_s"], LABELS, digits=1)
    for arm, e in overhead.items():
        print(f"wall-time ratio {arm}/uniform: {common.fmt_ci(e)}")
    if not args.no_plot:
        common.plot_curves(results, "eval_return", out / "parity_return.png", f"{args.env} parity", "greedy return",
                           panels=None)
    return summary


if __name__ == "__main__":
    main()
