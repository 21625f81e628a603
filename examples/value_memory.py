"""Put what the memory stores into the learning target: n-step returns, returns-to-go, hindsight goals.

Three uses of the value features of :class:`~hippogym.integrations.sb3.HippoReplayBuffer`:

* ``--task corridor`` (default): SB3 DQN on the sparse corridor, replay from the episodic memory
  with ``n_steps`` targets (the samples of SB3's ``NStepReplayBuffer``) and, with
  ``--episodic-weight > 0``, :class:`~hippogym.integrations.episodic_dqn.HippoDQN`'s episodic
  lower-bound term on the returns-to-go the memory keeps for every transition. With
  ``--priority self_imitation`` the memory replays more the transitions whose stored return still
  exceeds ``Q(s, a)``; ``buffer.episodic_values`` reads what the memory says a state is worth.
* ``--task bitflip``: SB3's ``BitFlippingEnv`` with hindsight relabelling inside the stored
  episodes (``HerReplayBuffer``'s ``env`` / ``n_sampled_goal`` / ``goal_selection_strategy``).

Usage::

    python examples/value_memory.py                                  # corridor 30, 30k steps
    python examples/value_memory.py --steps 2000 --length 10         # smoke run
    python examples/value_memory.py --task bitflip --bits 8 --steps 20000
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

import numpy as np
import torch

logger = logging.getLogger("value_memory")


def _success_rate(model: Any, env: Any, episodes: int, seed: int) -> float:
    """Greedy success rate over ``episodes`` episodes (``is_success`` of the last step)."""
    wins = 0
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        done, info = False, {}
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, _, terminated, truncated, info = env.step(int(action))
            done = terminated or truncated
        wins += bool(info.get("is_success", False))
    return wins / episodes


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train one agent and return ``{"task", "steps", "success", "train_s", "memory_transitions"}``.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).
    """
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=("corridor", "bitflip"), default="corridor")
    parser.add_argument("--steps", type=int, default=30_000)
    parser.add_argument("--length", type=int, default=30, help="corridor length")
    parser.add_argument("--bits", type=int, default=8, help="BitFlippingEnv bits")
    parser.add_argument("--n-steps", type=int, default=10, help="n of the n-step targets (1 = one-step)")
    parser.add_argument("--episodic-weight", type=float, default=0.5, help="HippoDQN's episodic term (0 = off)")
    parser.add_argument("--priority", choices=("none", "td", "self_imitation"), default="none",
                        help="HippoDQN: priorities fed back to a prioritised memory (corridor)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    from stable_baselines3 import DQN

    from hippogym.integrations.episodic_dqn import HippoDQN
    from hippogym.integrations.sb3 import HippoReplayBuffer

    learning_starts = min(1_000, max(100, args.steps // 10))
    if args.task == "corridor":
        from hippogym.envs import SparseCorridorEnv

        env, eval_env = SparseCorridorEnv(length=args.length), SparseCorridorEnv(length=args.length)
        buffer_kwargs = dict(mixture_ratio=0.0, query=None, embed_dim=32, n_steps=args.n_steps, seed=args.seed)
        model = HippoDQN(
            "MlpPolicy", env, episodic_weight=args.episodic_weight, learning_rate=1e-3, buffer_size=10_000,
            priority=None if args.priority == "none" else args.priority,
            learning_starts=learning_starts, batch_size=64, train_freq=4, target_update_interval=100,
            exploration_fraction=0.3, exploration_final_eps=0.05, policy_kwargs=dict(net_arch=[64, 64]),
            replay_buffer_kwargs=buffer_kwargs, seed=args.seed, device="cpu",
        )
    else:
        from stable_baselines3.common.envs import BitFlippingEnv

        env = BitFlippingEnv(n_bits=args.bits, max_steps=args.bits)
        eval_env = BitFlippingEnv(n_bits=args.bits, max_steps=args.bits)
        buffer_kwargs = dict(env=env, n_sampled_goal=4, goal_selection_strategy="future", mixture_ratio=0.0,
                             query=None, embed_dim=32, seed=args.seed)
        model = DQN(
            "MultiInputPolicy", env, learning_rate=1e-3, buffer_size=20_000, learning_starts=learning_starts,
            batch_size=64, gamma=0.95, exploration_fraction=0.3, exploration_final_eps=0.05,
            target_update_interval=500, replay_buffer_class=HippoReplayBuffer, replay_buffer_kwargs=buffer_kwargs,
            seed=args.seed, device="cpu",
        )
    start = time.perf_counter()
    model.learn(args.steps)
    train_s = time.perf_counter() - start
    success = _success_rate(model, eval_env, 20, 10_000 + args.seed)
    out = {
        "task": args.task, "steps": int(model.num_timesteps), "success": float(success),
        "train_s": round(train_s, 1), "memory_transitions": len(model.replay_buffer),
    }
    sample = model.replay_buffer.sample(4)
    out["sample_fields"] = [name for name in sample._fields if getattr(sample, name) is not None]
    out["returns_kept"] = bool(getattr(sample, "returns", None) is not None and np.isfinite(
        sample.returns.numpy()).all())
    if args.task == "corridor":
        # What the memory says the start state is worth: the best return collected near it (MFEC/EMDQN).
        obs, _ = eval_env.reset(seed=0)
        estimate = model.replay_buffer.hippo.episodic_values(obs, k=8, mode="max", gamma=model.gamma)
        out["episodic_value_at_start"] = float(estimate.values[0])
    logger.info("%s", out)
    return out


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
