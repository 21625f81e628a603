"""Experiment 3: curriculum corridor. Does the memory keep earlier stages (retention), at what regret?

``hippogym/CurriculumCorridor-v0``: the corridor length grows (``--lengths``) once the success rate
over the last ``--window`` training episodes reaches ``--promote-at``. SB3 DQN, same
hyperparameters for both arms, only the replay differs. Every ``--eval-every`` env steps the
policy is evaluated at EVERY level on a separate env (``auto_promote=False``, ``set_level``;
``--eval-episodes`` epsilon-greedy episodes, epsilon 0.05, per level), so the curve shows what is kept of earlier lengths after promotion.

Per seed:

* ``final_level``: level reached by training; ``steps_to_level_<i>``: env steps when level i began;
* ``retention``: mean success, at the end, on the levels below the last training level
  (``nan`` if the agent never left level 0);
* ``retention_after``: the same, averaged over every evaluation since the last promotion;
* ``forgetting``: mean over those levels of (best success seen during training - final success);
* ``regret``: training episodes that failed (the optimal policy never fails), and
  ``regret_per_episode``.

Examples::

    python benchmarks/rl/curriculum.py --out runs/rl/curriculum        # 5 seeds x 60k steps
    python benchmarks/rl/curriculum.py --seeds 2 --steps 10000 --lengths 6,10,16 --out /tmp/cur
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.rl import common

SPEC = "benchmarks.rl.curriculum:run_one"
METRICS = ["final_level", "retention", "retention_after", "forgetting", "final_success_all", "regret", "regret_per_episode", "train_s"]
LABELS = {"final_level": "final level", "retention": "retention (earlier levels)",
          "retention_after": "retention since last promotion", "forgetting": "forgetting",
          "final_success_all": "final success (all levels)", "regret": "regret (failed episodes)",
          "regret_per_episode": "regret / episode", "train_s": "train wall s"}


def retention_after(curve: list[dict[str, Any]], lengths: tuple[int, ...] | list[int], final_level: int,
                    start: int) -> float:
    """Mean success on the levels below ``final_level`` over every evaluation from ``start`` on.

    Less noisy than the last evaluation alone: it averages the whole period spent at the last level.
    """
    keys = [f"success_L{lengths[i]}" for i in range(final_level)]
    rows = [r for r in curve if r["step"] >= start]
    if not keys or not rows:
        return math.nan
    return sum(r[k] for r in rows for k in keys) / (len(rows) * len(keys))


def run_one(arm: str, seed: int, steps: int, lengths: tuple[int, ...] = (10, 20, 30, 50), promote_at: float = 0.8,
            window: int = 20, group: str = "", eval_every: int = 2_000, eval_episodes: int = 5,
            hippo: dict[str, Any] | None = None,
            hp: dict[str, Any] | None = None, episodes: int | None = None) -> dict[str, Any]:
    """Train one DQN through the curriculum; evaluate every level along the way.

    With ``episodes``, training stops after that many training episodes (``steps`` is then a cap).
    """
    import gymnasium as gym

    from hippogym.envs import register_envs

    register_envs()
    lengths = tuple(int(x) for x in lengths)
    env = gym.make("hippogym/CurriculumCorridor-v0", lengths=lengths, promote_at=promote_at, window=window)
    eval_env = gym.make("hippogym/CurriculumCorridor-v0", lengths=lengths, auto_promote=False)
    params = {**common.DQN_SPARSE, **(hp or {})}
    model = common.make_agent(env, arm, seed, params, hippo)
    train_env = model.get_env().envs[0].unwrapped
    level_start: dict[int, int] = {0: 0}

    def eval_levels(m: Any) -> dict[str, float]:
        row: dict[str, float] = {}
        for level in range(len(lengths)):
            eval_env.unwrapped.set_level(level)
            r = common.evaluate(m, eval_env, eval_episodes, 10_000 + seed, epsilon=0.05)  # see sparse_corridor
            row[f"success_L{lengths[level]}"] = r["eval_success"]
        row["eval_success"] = sum(row.values()) / len(lengths)
        return row

    def on_eval(cb: Any, row: dict[str, Any]) -> None:
        level = int(train_env.level)
        row["train_level"] = level
        level_start.setdefault(level, int(cb.num_timesteps))

    cb = common.make_eval_callback(eval_levels, eval_every, on_eval=on_eval, max_episodes=episodes)
    # Levels are also tracked at every episode end (finer than the evaluation grid).
    from stable_baselines3.common.callbacks import BaseCallback, CallbackList

    class Levels(BaseCallback):
        def _on_step(self) -> bool:
            level_start.setdefault(int(train_env.level), int(self.num_timesteps))
            return True

    common.learn(model, steps, CallbackList([Levels(), cb]), hippo)
    curve = cb.rows
    final_level = max(level_start)
    final = curve[-1]
    earlier = list(range(final_level))
    keys = [f"success_L{lengths[i]}" for i in earlier]
    retention = sum(final[k] for k in keys) / len(keys) if keys else math.nan
    forgetting = (sum(max(r[k] for r in curve) - final[k] for k in keys) / len(keys)) if keys else math.nan
    failures = sum(1.0 - s for s in cb.episode_successes)
    after = retention_after(curve, lengths, final_level, level_start[final_level])
    out = {
        "experiment": "curriculum", "arm": arm, "group": group, "seed": seed, "steps": int(model.num_timesteps),
        "lengths": list(lengths), "final_level": final_level, "retention": retention, "retention_after": after, "forgetting": forgetting,
        "final_success_all": final["eval_success"], "regret": failures,
        "regret_per_episode": failures / max(1, len(cb.episode_successes)), "train_episodes": len(cb.episode_successes),
        "train_s": cb.train_s, **common.hippo_stats(model), "curve": curve,
    }
    for level in range(1, len(lengths)):
        out[f"steps_to_level_{level}"] = level_start.get(level)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_seed_args(parser)
    common.add_common_args(parser, steps=60_000)
    parser.add_argument("--lengths", default="10,20,30,50")
    parser.add_argument("--promote-at", type=float, default=0.8)
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument("--episodes", type=int, default=None,
                        help="stop each run after this many training episodes (--steps stays the cap)")
    parser.add_argument("--arms", default="uniform,hybrid")
    parser.add_argument("--eval-every", type=int, default=2_000)
    parser.add_argument("--eval-episodes", type=int, default=5, help="per level")
    parser.add_argument("--cons-every", type=int, default=common.HIPPO_DEFAULT["consolidate_every"])
    parser.add_argument("--cons-steps", type=int, default=common.HIPPO_DEFAULT["consolidate_steps"])
    parser.add_argument("--buffer-size", type=int, default=common.DQN_SPARSE["buffer_size"])
    parser.add_argument("--exploration-fraction", type=float, default=0.2,
                        help="epsilon decays over this share of the budget (short: the task keeps changing)")
    args = parser.parse_args(argv)
    seeds = common.parse_seeds(args.seeds)
    arms = common.parse_list(args.arms, str)
    lengths = tuple(common.parse_list(args.lengths))
    hippo = dict(consolidate_every=args.cons_every, consolidate_steps=args.cons_steps, **common.sleep_overrides(args))
    hp = dict(buffer_size=args.buffer_size, exploration_fraction=args.exploration_fraction, **common.hp_overrides(args))
    group = "lengths " + "-".join(map(str, lengths))
    jobs = [dict(arm=arm, seed=s, steps=args.steps, lengths=lengths, promote_at=args.promote_at, window=args.window,
                 group=group, eval_every=args.eval_every, eval_episodes=args.eval_episodes, hippo=hippo, hp=hp,
                 episodes=args.episodes) for s in seeds for arm in arms]
    if args.dry_run:
        return common.dry_run(jobs)
    out = Path(args.out)
    results = common.run_jobs(SPEC, jobs, args.workers, on_result=lambda r: common.write_seed(out, r))
    metrics = METRICS + [f"steps_to_level_{i}" for i in range(1, len(lengths))]
    summary = common.summarize(results, metrics, extra={
        "experiment": "curriculum", "command": " ".join(sys.argv),
        "config": dict(steps=args.steps, seeds=seeds, arms=arms, lengths=lengths, promote_at=args.promote_at,
                       window=args.window, hippo=hippo, dqn={**common.DQN_SPARSE, **hp}),
    })
    if args.csv:
        common.write_runs_csv(args.csv, results, metrics)
    common.finish(out, "Curriculum corridor", summary, ["final_level", "retention", "retention_after", "forgetting", "regret",
                                                      "train_s"], LABELS)
    if not args.no_plot:
        plot_levels(results, lengths, out / "curriculum_levels.png")
    return summary


def plot_levels(results: list[dict[str, Any]], lengths: tuple[int, ...], path: Path) -> None:
    """One panel per level: greedy success at that level over training, per arm (mean, 95% band)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, axes = plt.subplots(1, len(lengths) + 1, figsize=(3.6 * (len(lengths) + 1), 3.3), squeeze=False)
    for ax, key, title in zip(
        axes[0], [f"success_L{n}" for n in lengths] + ["train_level"],
        [f"success (ε=0.05), length {n}" for n in lengths] + ["training level"],
    ):
        for arm in common.arm_order(r["arm"] for r in results):
            sub = [r for r in results if r["arm"] == arm]
            grid, ys = common.align_curves(sub, key)
            mean, lo, hi = common.band(ys)
            line, = ax.plot(grid, mean, label=f"{arm} (n={len(sub)})", color=common.ARM_COLORS.get(arm))
            ax.fill_between(grid, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("environment steps (thousands)", fontsize=8)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}"))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
