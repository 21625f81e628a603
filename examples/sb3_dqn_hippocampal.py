"""Train Stable-Baselines3 DQN with the hippocampal memory as its replay buffer.

The memory stores whole episodes (``TerminalSegmenter``), recalls around the agent's current
observation for a share of each batch that ramps from 0.2 to 0.5 (``RampSchedule``), and
consolidates (trains its encoder, refreshes keys) periodically.

Usage::

    python examples/sb3_dqn_hippocampal.py                 # CartPole-v1, 20k steps
    python examples/sb3_dqn_hippocampal.py --steps 500     # smoke run
    python examples/sb3_dqn_hippocampal.py --env hippogym/SparseCorridor-v0
"""

from __future__ import annotations

import argparse
import logging
import time

import torch

logger = logging.getLogger("sb3_dqn_hippocampal")


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train, evaluate, and return a summary (also logged).

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        ``{"steps", "mean_return", "std_return", "train_s", "memory_transitions", "consolidations"}``.
    """
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPole-v1", help="Gymnasium id (hippogym/... ids are registered)")
    parser.add_argument("--steps", type=int, default=20_000, help="environment steps to train for")
    parser.add_argument("--n-envs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--consolidate-every", type=int, default=None, help="env steps between consolidations (default: steps / 4)"
    )
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)

    from stable_baselines3 import DQN
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    from hippogym import RampSchedule
    from hippogym.envs import register_envs
    from hippogym.integrations.sb3 import HippoCallback, HippoReplayBuffer

    register_envs()
    consolidate_every = args.consolidate_every if args.consolidate_every is not None else max(100, args.steps // 4)
    env = make_vec_env(args.env, n_envs=args.n_envs, seed=args.seed)
    learning_starts = min(1_000, max(100, args.steps // 5))
    ramp_start = learning_starts
    model = DQN(
        "MlpPolicy",
        env,
        learning_rate=2.3e-3,
        batch_size=64,
        buffer_size=100_000,
        learning_starts=learning_starts,
        gamma=0.99,
        target_update_interval=10,
        train_freq=256,
        gradient_steps=128,
        exploration_fraction=0.16,
        exploration_final_eps=0.04,
        policy_kwargs=dict(net_arch=[256, 256]),
        replay_buffer_class=HippoReplayBuffer,
        replay_buffer_kwargs=dict(
            mixture_ratio=RampSchedule(0.2, 0.5, warmup=ramp_start, ramp=max(1, args.steps // 2)),
            embed_dim=64,
            top_k=5,
            consolidate_every=consolidate_every,
            consolidate_steps=50,
        ),
        seed=args.seed,
        verbose=0,
    )
    start = time.perf_counter()
    model.learn(args.steps, callback=HippoCallback())
    train_s = time.perf_counter() - start

    eval_env = make_vec_env(args.env, n_envs=1, seed=args.seed + 1000)
    mean_return, std_return = evaluate_policy(model, eval_env, n_eval_episodes=args.eval_episodes, deterministic=True)
    buffer = model.replay_buffer
    summary = {
        "steps": float(args.steps),
        "mean_return": float(mean_return),
        "std_return": float(std_return),
        "train_s": train_s,
        "memory_transitions": float(len(buffer)),
        "consolidations": float(buffer.adapter.num_consolidations),
    }
    logger.info(
        "%s: %d steps in %.1fs, mean return %.1f +/- %.1f over %d episodes; memory %d transitions in %d units, %d consolidations",
        args.env, args.steps, train_s, mean_return, std_return, args.eval_episodes,
        len(buffer), buffer.hippo.num_episodes, buffer.adapter.num_consolidations,
    )
    return summary


if __name__ == "__main__":
    main()
