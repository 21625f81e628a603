"""Recall-augmented observations in the CueRecall T-maze (pattern completion).

The T-maze shows its cue (left or right) only in the first observation; at the junction the agent
must turn to the cued side. A memoryless policy is at chance there. Here the memory does the
remembering: with ``RecallObservation`` every observation carries the ``top_k`` stored units most
similar to it. While the cue is visible, those are past episodes with the same cue, and their
recorded outcome (the return, and the turn they took) completes the pattern: which turn pays.

1. Explore: walk to the junction and turn at random, recording every episode (``RecordEpisodes``).
2. Recall: for new episodes, print what the first (cue-visible) observation recalls, and let a
   policy pick its turn from the recalled outcomes.

Run:  python examples/recall_observation.py --steps 300
"""

from __future__ import annotations

import argparse
import logging

import gymnasium as gym
import numpy as np
import torch

from hippogym import HippocampalReplayBuffer, MemoryStore, RecallObservation, RecordEpisodes
from hippogym.envs import register_envs

logger = logging.getLogger("recall_observation")

FORWARD, LEFT, RIGHT = 0, 1, 2


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Explore, then act from recalled episodes.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        ``{"units": ..., "success_rate": ...}`` (for tests).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="exploration steps recorded into memory")
    parser.add_argument("--episodes", type=int, default=20, help="recall-guided evaluation episodes")
    parser.add_argument("--length", type=int, default=4, help="corridor length")
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.manual_seed(args.seed)
    register_envs()
    rng = np.random.default_rng(args.seed)

    def make() -> gym.Env:
        return gym.make("hippogym/CueRecall-v0", length=args.length, noise=0.05)

    # 1. Explore and record.
    buffer = HippocampalReplayBuffer(MemoryStore(embed_dim=32, capacity=20_000, seed=args.seed), seed=args.seed)
    explorer = RecordEpisodes(make(), buffer)
    steps, episode = 0, 0
    while steps < args.steps or buffer.num_episodes == 0:
        obs, _ = explorer.reset(seed=args.seed + episode)
        episode += 1
        done = False
        while not done:
            at_junction = obs[3] > 0.5
            action = int(rng.integers(LEFT, RIGHT + 1)) if at_junction else FORWARD
            obs, _, terminated, truncated, _ = explorer.step(action)
            steps += 1
            done = terminated or truncated
    explorer.close()
    returns = buffer.memory.unit_return[buffer.memory.live_slots()]
    print(
        f"explored {buffer.num_episodes} episodes ({len(buffer)} transitions), "
        f"random-turn success rate {float((returns > 0).float().mean()):.2f}"
    )

    # 2. Recall-guided episodes.
    env = RecallObservation(make(), buffer, top_k=args.top_k)
    successes = 0
    for i in range(args.episodes):
        obs, _ = env.reset(seed=10_000 + i)
        cue = "left" if obs["observation"][1] > 0.5 else "right"
        ids = env.last_recall.episode_ids[0].tolist()
        votes = {LEFT: 0.0, RIGHT: 0.0}
        lines = []
        for uid, score in zip(ids, obs["recall_scores"].tolist()):
            if uid < 0:
                continue
            unit = buffer.episode(uid)  # the whole recalled episode
            turn, ret = int(unit.actions[-1]), float(unit.episode_return)
            unit_cue = "left" if unit.states[0, 1] > 0.5 else "right"
            # A paying turn votes for itself; a failed turn votes for the other side.
            votes[turn if ret > 0 else LEFT + RIGHT - turn] += max(score, 0.0)
            lines.append(
                f"unit {uid:3d} score {score:+.4f} cue={unit_cue:5s} turned={'left' if turn == LEFT else 'right':5s} "
                f"return={ret:+.0f}"
            )
        choice = max(votes, key=votes.get) if any(votes.values()) else int(rng.integers(LEFT, RIGHT + 1))
        if i < 3:
            print(f"episode {i}: cue={cue}; the first observation recalls:")
            for line in lines:
                print("   ", line)
            print(f"    -> will turn {'left' if choice == LEFT else 'right'}")
        done, reward = False, 0.0
        while not done:
            at_junction = obs["observation"][3] > 0.5
            obs, reward, terminated, truncated, _ = env.step(choice if at_junction else FORWARD)
            done = terminated or truncated
        successes += reward > 0
    rate = successes / max(args.episodes, 1)
    print(f"recall-guided success rate over {args.episodes} episodes: {rate:.2f} (a memoryless policy: 0.50)")
    return {"units": float(buffer.num_episodes), "success_rate": rate}


if __name__ == "__main__":
    main()
