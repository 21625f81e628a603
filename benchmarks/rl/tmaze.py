"""Experiment 2: cue-recall T-maze (partial observability).

``hippogym/CueRecall-v0``: the cue (left/right) is visible in the first observation only; at the
junction the agent must turn to the cued side (+1, else -1). A memoryless policy is at chance
(50% success, mean return 0). Arms, all SB3 DQN with the same hyperparameters:

* ``uniform``: uniform replay, raw observations (the memoryless reference);
* ``hybrid``: ``HippoReplayBuffer`` as the replay, raw observations (replay alone cannot add memory
  to a memoryless policy: expected at chance);
* ``recall``: ``RecallObservation(RecordEpisodes(env, memory), memory, top_k)``: the observation
  carries the ``top_k`` units the memory recalls for the current observation (a separate
  ``HippocampalReplayBuffer`` recording raw episodes, consolidated every ``--cons-every`` steps),
  uniform replay, ``MultiInputPolicy``;
* ``framestack``: the last ``length + 2`` observations stacked (Gymnasium's
  ``FrameStackObservation``), uniform replay: the memory baseline used because sb3-contrib's
  ``RecurrentPPO`` is not installed here (``recurrent`` runs it when ``sb3_contrib`` imports).

Examples::

    python benchmarks/rl/tmaze.py --out runs/rl/tmaze                        # 5 seeds x 15k steps
    python benchmarks/rl/tmaze.py --seeds 2 --steps 5000 --arms uniform,recall --out /tmp/tm
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.rl import common

SPEC = "benchmarks.rl.tmaze:run_one"
METRICS = ["final_success", "final_return", "auc_success", "train_s"]
LABELS = {"final_success": "final success", "final_return": "final return", "auc_success": "mean success (AUC)",
          "train_s": "train wall s"}


def recurrent_available() -> bool:
    try:
        import sb3_contrib  # noqa: F401
    except ImportError:
        return False
    return True


def _make_envs(arm: str, length: int, noise: float, seed: int, top_k: int, memory: Any) -> tuple[Any, Any]:
    import gymnasium as gym
    from gymnasium.wrappers import FlattenObservation, FrameStackObservation

    from hippogym import RecallObservation, RecordEpisodes

    def base() -> Any:
        return gym.make("hippogym/CueRecall-v0", length=length, noise=noise)

    if arm == "recall":
        return (RecallObservation(RecordEpisodes(base(), memory), memory, top_k=top_k),
                RecallObservation(base(), memory, top_k=top_k))
    if arm == "framestack":
        k = length + 2
        return (FlattenObservation(FrameStackObservation(base(), k)), FlattenObservation(FrameStackObservation(base(), k)))
    return base(), base()


def run_one(arm: str, seed: int, steps: int, length: int = 5, noise: float = 0.0, group: str = "", eval_every: int = 1_000,
            eval_episodes: int = 20, top_k: int = 3, cons_every: int = 2_000, cons_steps: int = 50,
            hippo: dict[str, Any] | None = None, hp: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train one agent in the T-maze; return its curve and figures."""
    from hippogym import HippocampalReplayBuffer, MemoryStore
    from hippogym.envs import register_envs

    register_envs()
    memory = None
    if arm == "recall":
        memory = HippocampalReplayBuffer(MemoryStore(embed_dim=32, capacity=20_000, key_dtype=common.KEY_DTYPE, seed=seed), seed=seed)
    env, eval_env = _make_envs(arm, length, noise, seed, top_k, memory)
    params = {**common.DQN_SPARSE, **(hp or {})}
    if arm == "recurrent":
        from sb3_contrib import RecurrentPPO  # only when available

        model = RecurrentPPO("MlpLstmPolicy", env, seed=seed, verbose=0, device="cpu")
    else:
        replay_arm = "hybrid" if arm == "hybrid" else "uniform"
        model = common.make_agent(env, replay_arm, seed, params, hippo)

    state = {"next": cons_every}

    def on_eval(cb: Any, row: dict[str, Any]) -> None:
        if memory is not None:
            row["memory_units"] = int(memory.num_episodes)

    cb = common.make_eval_callback(lambda m: common.evaluate(m, eval_env, eval_episodes, 10_000 + seed), eval_every,
                                   on_eval=on_eval)
    if memory is not None and cons_every > 0:
        from stable_baselines3.common.callbacks import BaseCallback, CallbackList

        class Consolidate(BaseCallback):
            def _on_step(self) -> bool:
                if self.num_timesteps >= state["next"] and len(memory) >= 16:
                    memory.consolidate(steps=cons_steps, batch_size=64)
                    state["next"] += cons_every
                return True

        model.learn(steps, callback=CallbackList([Consolidate(), cb]))
    else:
        model.learn(steps, callback=cb)
    curve = cb.rows
    return {
        "experiment": "tmaze", "arm": arm, "group": group, "seed": seed, "steps": int(model.num_timesteps),
        "length": length, "noise": noise, "top_k": top_k,
        "final_success": common.tail_mean(curve, "eval_success"),
        "final_return": common.tail_mean(curve, "eval_return"),
        "auc_success": common.curve_mean(curve, "eval_success"),
        "train_s": cb.train_s,
        **common.hippo_stats(model),
        "curve": curve,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(parser, steps=15_000)
    parser.add_argument("--arms", default="uniform,hybrid,recall,framestack,recurrent")
    parser.add_argument("--length", type=int, default=5)
    parser.add_argument("--noise", type=float, default=0.0)
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--eval-every", type=int, default=1_000)
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--cons-every", type=int, default=2_000)
    parser.add_argument("--cons-steps", type=int, default=50)
    args = parser.parse_args(argv)
    seeds = common.parse_seeds(args.seeds)
    arms = common.parse_list(args.arms, str)
    notes = []
    if "recurrent" in arms and not recurrent_available():
        arms.remove("recurrent")
        notes.append("sb3-contrib (RecurrentPPO) is not installed and not in the local package index: "
                     "the recurrent arm was skipped; 'framestack' is the memory baseline.")
        print("note:", notes[-1])
    hippo = dict(consolidate_every=args.cons_every, consolidate_steps=args.cons_steps)
    group = f"length {args.length}"
    jobs = [dict(arm=arm, seed=s, steps=args.steps, length=args.length, noise=args.noise, group=group,
                 eval_every=args.eval_every, eval_episodes=args.eval_episodes, top_k=args.top_k,
                 cons_every=args.cons_every, cons_steps=args.cons_steps, hippo=hippo, hp=common.hp_overrides(args))
            for s in seeds for arm in arms]
    if args.dry_run:
        return common.dry_run(jobs)
    out = Path(args.out)
    results = common.run_jobs(SPEC, jobs, args.workers, on_result=lambda r: common.write_seed(out, r))
    summary = common.summarize(results, METRICS, baseline="uniform", extra={
        "experiment": "tmaze", "notes": notes, "command": " ".join(sys.argv),
        "config": dict(steps=args.steps, seeds=seeds, arms=arms, length=args.length, noise=args.noise, top_k=args.top_k,
                       cons_every=args.cons_every, cons_steps=args.cons_steps, dqn=common.DQN_SPARSE),
    })
    common.finish(out, "Cue-recall T-maze", summary, ["final_success", "final_return", "auc_success", "train_s"], LABELS)
    if not args.no_plot:
        common.plot_curves(results, "eval_success", out / "tmaze_success.png", "Cue-recall T-maze", "greedy success",
                           panels=None)
    return summary


if __name__ == "__main__":
    main()
