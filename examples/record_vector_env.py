"""Record an 8-env CartPole vector environment into a hippocampal buffer, then consolidate.

Every real transition of every sub-env is recorded (the reset steps of Gymnasium's default
NEXT_STEP autoreset are skipped); episodes are cut into windows of at most 64 steps. After
collection the memory "sleeps" (``consolidate``) and a hybrid batch is drawn around a query.

Run:  python examples/record_vector_env.py --steps 500
"""

from __future__ import annotations

import argparse
import logging

import gymnasium as gym
import numpy as np
import torch

from hippogym import (
    FixedWindowSegmenter,
    HippocampalReplayBuffer,
    MemoryStore,
    RecordEpisodesVector,
    SampleMode,
)

logger = logging.getLogger("record_vector_env")


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Collect, consolidate and print a summary.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The summary numbers (for tests).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500, help="vector steps to collect (x num-envs transitions)")
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--consolidate-steps", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.manual_seed(args.seed)

    buffer = HippocampalReplayBuffer(MemoryStore(embed_dim=32, capacity=50_000, seed=args.seed), seed=args.seed)
    envs = gym.make_vec("CartPole-v1", num_envs=args.num_envs, vectorization_mode="sync")
    envs = RecordEpisodesVector(envs, buffer, segmenter=FixedWindowSegmenter(64))
    envs.action_space.seed(args.seed)
    rng = np.random.default_rng(args.seed)
    obs, _ = envs.reset(seed=args.seed)
    for _ in range(args.steps):
        # A noisy balancing heuristic: push towards the side the pole leans to.
        actions = (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(np.int64)
        explore = rng.random(args.num_envs) < 0.3
        actions[explore] = envs.action_space.sample()[explore]
        obs, _, _, _, _ = envs.step(actions)
    envs.close()  # flushes the windows still in progress

    units = list(buffer.memory.episodes())
    truncated = sum(bool(u.truncated[-1]) for u in units)
    terminated = sum(bool(u.terminated[-1]) for u in units)
    summary = {
        "units": float(buffer.num_episodes),
        "transitions": float(len(buffer)),
        "env_episodes": float(len({u.episode_id for u in units})),
        "mean_unit_length": float(np.mean([len(u) for u in units])),
        "episode_ends": float(terminated + truncated),
    }
    print(
        f"recorded {envs.episodes_recorded} units / {envs.transitions_recorded} transitions "
        f"from {args.num_envs} envs x {args.steps} steps (reset steps are not transitions)"
    )
    print(
        f"units: {terminated} end in termination, {truncated} in truncation, "
        f"{len(units) - terminated - truncated} mid-episode windows; mean length {summary['mean_unit_length']:.1f}"
    )
    if args.consolidate_steps > 0:
        metrics = buffer.consolidate(steps=args.consolidate_steps, batch_size=64)
        shown = {k: round(float(v), 4) for k, v in metrics.items() if isinstance(v, (int, float))}
        print(f"consolidated: {shown}")
    batch = buffer.sample(256, query_state=torch.as_tensor(obs[0]))
    print(
        f"hybrid batch: {int((batch.modes == SampleMode.SEMANTIC).sum())} semantic / {len(batch.modes)} draws, "
        f"{int(batch.truncated.sum())} truncated, {int(batch.terminated.sum())} terminal transitions"
    )
    return summary


if __name__ == "__main__":
    main()
