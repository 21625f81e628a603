"""Experiment 1: sparse corridor, hybrid (hippogym) vs uniform replay, SB3 DQN.

``hippogym/SparseCorridor-v0``: the only reward is +1 at the far end of a corridor of ``length``
cells (one-hot position; ``4 * length`` steps per episode). For every length, arm and seed a DQN
with the SAME hyperparameters (``common.DQN_SPARSE``) is trained; only the replay differs. Every
``--eval-every`` env steps the policy is evaluated: 10 episodes epsilon-greedy with epsilon 0.05
(``eval_success``, the usual DQN protocol) and 1 purely greedy episode (``greedy_success``).

Per seed: the learning curve (env steps vs eval success / return, training success rate), the
final success rate (mean of the last 3 evaluations), the mean success over the curve (AUC),
the steps to reach 90% eval success (``None`` if never), training wall time.

Examples::

    python benchmarks/rl/sparse_corridor.py --out runs/rl/corridor            # full (~14 min, 2 idle cores)
    python benchmarks/rl/sparse_corridor.py --lengths 30 --seeds 3 --steps 20000 --out /tmp/c30
    python benchmarks/rl/sparse_corridor.py --lengths 30 --episodes 300 --cons-every 1000 --cons-steps 20
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.rl import common

SPEC = "benchmarks.rl.sparse_corridor:run_one"
METRICS = ["final_success", "auc_success", "steps_to_90", "steps_to_90_censored", "reached_90", "train_successes",
           "train_success_share", "train_s"]
LABELS = {"final_success": "final success", "auc_success": "mean success (AUC)", "steps_to_90": "steps to 90% held (reached only)",
          "steps_to_90_censored": "steps to 90% held (never = budget)", "reached_90": "reached & held 90%",
          "train_successes": "training successes", "train_success_share": "training episodes solved", "train_s": "train wall s"}


def run_one(arm: str, group: int, seed: int, steps: int, episodes: int | None = None, slip: float = 0.0,
            eval_every: int | None = None, eval_episodes: int | None = None, hippo: dict[str, Any] | None = None,
            hp: dict[str, Any] | None = None, threshold: float = 0.9, eval_epsilon: float = 0.05) -> dict[str, Any]:
    """Train one DQN on a corridor of length ``group`` and return its curve and figures."""
    import gymnasium as gym

    from hippogym.envs import register_envs

    register_envs()
    length = int(group)
    env = gym.make("hippogym/SparseCorridor-v0", length=length, slip=slip)
    eval_env = gym.make("hippogym/SparseCorridor-v0", length=length, slip=slip)
    n_eval = 10 if eval_episodes is None else eval_episodes

    def eval_fn(m: Any) -> dict[str, float]:
        row = common.evaluate(m, eval_env, n_eval, 10_000 + seed, epsilon=eval_epsilon)
        row["greedy_success"] = common.evaluate(m, eval_env, 1, 20_000 + seed)["eval_success"]
        return row

    params = {**common.DQN_SPARSE, **(hp or {})}
    if episodes is not None:
        params["exploration_fraction"] = params.get("exploration_fraction", 0.5)
    model = common.make_agent(env, arm, seed, params, hippo)
    if eval_every is None:
        eval_every = max(1_000, (steps if episodes is None else episodes * 2 * length) // 20)
    cb = common.make_eval_callback(eval_fn, eval_every, max_episodes=episodes)
    budget = steps if episodes is None else episodes * 4 * length
    common.learn(model, budget, cb, hippo)
    curve = cb.rows
    reached = common.first_sustained_step(curve, "eval_success", threshold)
    return {
        "experiment": "sparse_corridor", "arm": arm, "group": length, "seed": seed, "steps": int(model.num_timesteps),
        "slip": slip, "hippo": hippo, "hp": hp,
        "final_success": common.tail_mean(curve, "eval_success"),
        "final_greedy_success": common.tail_mean(curve, "greedy_success"),
        "auc_success": common.curve_mean(curve, "eval_success"),
        "steps_to_90": reached,
        "steps_to_90_censored": reached if reached is not None else int(model.num_timesteps),
        "reached_90": float(reached is not None),
        "train_episodes": len(cb.episode_returns),
        "train_successes": int(sum(cb.episode_successes)),
        "train_success_share": sum(cb.episode_successes) / max(1, len(cb.episode_successes)),
        "first_success_step": next((s for s, ok in zip(cb.episode_end_steps, cb.episode_successes) if ok), None),
        "train_s": cb.train_s,
        "steps_per_s": model.num_timesteps / cb.train_s if cb.train_s > 0 else None,
        "sb3_replay_successes": common.sb3_replay_successes(model),
        **common.hippo_stats(model),
        "curve": curve,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_seed_args(parser)
    common.add_common_args(parser, steps=None)
    parser.add_argument("--lengths", default="30,50,100")
    parser.add_argument("--steps", default="30000,50000,80000",
                        help="env steps per run: one value, or one per length")
    parser.add_argument("--episodes", type=int, default=None, help="train for this many episodes instead of --steps")
    parser.add_argument("--arms", default="uniform,hybrid")
    parser.add_argument("--slip", type=float, default=0.0)
    parser.add_argument("--eval-every", type=int, default=None, help="default: a 20th of the budget (>= 1000)")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--eval-epsilon", type=float, default=0.05, help="epsilon of the evaluation policy")
    parser.add_argument("--mixture", type=float, default=common.HIPPO_DEFAULT["mixture_ratio"])
    parser.add_argument("--cons-every", type=int, default=common.HIPPO_DEFAULT["consolidate_every"])
    parser.add_argument("--cons-steps", type=int, default=common.HIPPO_DEFAULT["consolidate_steps"])
    parser.add_argument("--buffer-size", type=int, default=common.DQN_SPARSE["buffer_size"])
    parser.add_argument("--exploration-fraction", type=float, default=common.DQN_SPARSE["exploration_fraction"])
    parser.add_argument("--target-update", type=int, default=common.DQN_SPARSE["target_update_interval"])
    args = parser.parse_args(argv)

    lengths = common.parse_list(args.lengths)
    steps = common.parse_list(args.steps)
    if len(steps) == 1 or (args.episodes is not None and len(steps) != len(lengths)):
        steps = steps[:1] * len(lengths)  # with --episodes, --steps is unused
    if len(steps) != len(lengths):
        parser.error("--steps needs one value or one per length")
    seeds = common.parse_seeds(args.seeds)
    arms = common.parse_list(args.arms, str)
    hippo = dict(mixture_ratio=args.mixture, consolidate_every=args.cons_every, consolidate_steps=args.cons_steps,
                 **common.sleep_overrides(args))
    hp = dict(buffer_size=args.buffer_size, exploration_fraction=args.exploration_fraction,
              target_update_interval=args.target_update, **common.hp_overrides(args))
    jobs = [dict(arm=arm, group=L, seed=s, steps=n, episodes=args.episodes, slip=args.slip, eval_every=args.eval_every,
                 eval_episodes=args.eval_episodes, eval_epsilon=args.eval_epsilon, hippo=hippo, hp=hp)
            for L, n in zip(lengths, steps) for s in seeds for arm in arms]
    if args.dry_run:
        return common.dry_run(jobs)
    out = Path(args.out)
    results = common.run_jobs(SPEC, jobs, args.workers, on_result=lambda r: common.write_seed(out, r))
    config = dict(lengths=lengths, steps=steps, episodes=args.episodes, seeds=seeds, arms=arms, slip=args.slip,
                  eval_every=args.eval_every, hippo=hippo, dqn={**common.DQN_SPARSE, **hp})
    summary = common.summarize(results, METRICS, extra={"experiment": "sparse_corridor", "config": config,
                                                          "command": " ".join(sys.argv)})
    if args.csv:
        common.write_runs_csv(args.csv, results, METRICS)
    common.finish(out, "Sparse corridor", summary, ["final_success", "auc_success", "steps_to_90_censored", "reached_90", "train_s"],
                  LABELS)
    if not args.no_plot:
        common.plot_curves(results, "eval_success", out / "corridor_success.png", "Sparse corridor", "success (ε=0.05 policy)",
                           panels="group", group_label="length ")
    return summary


if __name__ == "__main__":
    main()
