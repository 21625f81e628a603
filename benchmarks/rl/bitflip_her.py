"""Hindsight relabelling inside the memory vs SB3's ``HerReplayBuffer`` on ``BitFlippingEnv``.

SB3's ``BitFlippingEnv`` (``n_bits`` bits, reward -1 until the state equals the goal, ``n_bits``
steps per episode) is the task HER was made for: uniform replay almost never sees a success once
``n_bits`` exceeds ~8. Every arm trains the SAME DQN (``HP``); only the replay differs:

* ``uniform``: SB3's ``DictReplayBuffer``;
* ``her``: SB3's ``HerReplayBuffer`` (``n_sampled_goal=4``, ``future``);
* ``hippo-her``: :class:`~hippogym.integrations.sb3.HippoReplayBuffer` with the same HER kwargs
  (uniform draws from the episodic memory, goals relabelled within the stored units);
* ``hippo-her-nstep``: the same with 3-step targets (relabelled rewards summed per window).

Per seed: the learning curve (greedy success over ``--eval-episodes`` every ``--eval-every``
steps), the final success (mean of the last 3 evaluations), the AUC and the steps to 90% held.

Example::

    python benchmarks/rl/bitflip_her.py --bits 10 --steps 20000 --seeds 3 --out /tmp/bitflip
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.rl import common

SPEC = "benchmarks.rl.bitflip_her:run_one"
ARMS = ("uniform", "her", "hippo-her", "hippo-her-nstep")
METRICS = ["final_success", "auc_success", "steps_to_90_censored", "reached_90", "train_s"]
LABELS = {"final_success": "final success", "auc_success": "mean success (AUC)",
          "steps_to_90_censored": "steps to 90% held (never = budget)", "reached_90": "reached & held 90%",
          "train_s": "train wall s"}
#: DQN settings shared by every arm (SB3's HER tests and rl-zoo use similar ones for bit flipping).
HP = dict(learning_rate=1e-3, buffer_size=50_000, batch_size=128, gamma=0.95, train_freq=1, gradient_steps=1,
          target_update_interval=500, exploration_fraction=0.3, exploration_final_eps=0.05,
          policy_kwargs=dict(net_arch=[128, 128]))
HER = dict(n_sampled_goal=4, goal_selection_strategy="future")


def run_one(arm: str, group: int, seed: int, steps: int, eval_every: int, eval_episodes: int = 20,
            learning_starts: int | None = None) -> dict[str, Any]:
    """Train one DQN on ``BitFlippingEnv(n_bits=group)`` and return its curve and figures."""
    from stable_baselines3 import DQN, HerReplayBuffer
    from stable_baselines3.common.envs import BitFlippingEnv

    from hippogym.integrations.sb3 import HippoReplayBuffer

    bits = int(group)
    env, eval_env = BitFlippingEnv(n_bits=bits, max_steps=bits), BitFlippingEnv(n_bits=bits, max_steps=bits)
    hp = dict(HP, learning_starts=learning_starts if learning_starts is not None else max(bits * 10, 200))
    if arm == "her":
        hp.update(replay_buffer_class=HerReplayBuffer, replay_buffer_kwargs=dict(HER))
    elif arm.startswith("hippo-her"):
        kw = dict(HER, env=env, mixture_ratio=0.0, query=None, embed_dim=32, key_dtype=common.KEY_DTYPE, seed=seed,
                  gamma=HP["gamma"],
                  n_steps=3 if arm.endswith("nstep") else 1)
        hp.update(replay_buffer_class=HippoReplayBuffer, replay_buffer_kwargs=kw)
    elif arm != "uniform":
        raise ValueError(f"unknown arm {arm!r}; expected one of {ARMS}")
    model = DQN("MultiInputPolicy", env, seed=seed, verbose=0, device="cpu", **hp)

    def eval_fn(m: Any) -> dict[str, float]:
        wins = 0
        for i in range(eval_episodes):
            obs, _ = eval_env.reset(seed=10_000 + seed * 1_000 + i)
            done, info = False, {}
            while not done:
                action, _ = m.predict(obs, deterministic=True)
                obs, _, terminated, truncated, info = eval_env.step(action)
                done = terminated or truncated
            wins += bool(info.get("is_success", False))
        return {"eval_success": wins / eval_episodes}

    cb = common.make_eval_callback(eval_fn, eval_every)
    model.learn(steps, callback=cb)
    curve = cb.rows
    reached = common.first_sustained_step(curve, "eval_success", 0.9)
    return {
        "experiment": "bitflip_her", "arm": arm, "group": bits, "seed": seed, "steps": int(model.num_timesteps),
        "final_success": common.tail_mean(curve, "eval_success"),
        "auc_success": common.curve_mean(curve, "eval_success"),
        "steps_to_90": reached,
        "steps_to_90_censored": reached if reached is not None else int(model.num_timesteps),
        "reached_90": float(reached is not None),
        "train_s": cb.train_s,
        "curve": curve,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(parser, steps=20_000, seeds="3")
    parser.add_argument("--bits", default="10", help="comma-separated n_bits values")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--eval-every", type=int, default=None, help="default: a 20th of the budget")
    parser.add_argument("--eval-episodes", type=int, default=20)
    args = parser.parse_args(argv)
    bits = common.parse_list(args.bits)
    arms = common.parse_list(args.arms, str)
    eval_every = args.eval_every or max(100, args.steps // 20)
    jobs = [dict(arm=arm, group=b, seed=s, steps=args.steps, eval_every=eval_every, eval_episodes=args.eval_episodes,
                 learning_starts=args.learning_starts)
            for b in bits for s in common.parse_seeds(args.seeds) for arm in arms]
    if args.dry_run:
        return common.dry_run(jobs)
    out = Path(args.out)
    results = common.run_jobs(SPEC, jobs, args.workers, on_result=lambda r: common.write_seed(out, r))
    summary = common.summarize(results, METRICS, baseline="her", extra={
        "experiment": "bitflip_her", "config": dict(bits=bits, steps=args.steps, arms=arms, dqn=HP, her=HER),
        "command": " ".join(sys.argv)})
    common.finish(out, "BitFlippingEnv: HER inside the memory vs HerReplayBuffer", summary, METRICS, LABELS)
    return summary


if __name__ == "__main__":
    main()
