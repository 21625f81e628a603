"""History-keyed recall in the CueRecall T-maze: keys and queries over the agent's recent window.

The cue (left or right) is visible only at the start; at the junction the current observation no
longer says which turn pays. Keys over one observation cannot tell the two kinds of episode apart
there, so recall at the junction is at chance. With ``FeatureConfig(context=n)`` every key sees the
last ``n`` observations of its episode, and ``RecallObservation`` (whose ``context`` follows the
buffer's) queries with the agent's own last ``n`` observations: the cue is still in that window.

1. Explore: walk to the junction and turn at random, recording every episode.
2. At the junction of new episodes, turn as the recalled episodes say: the turn of a recalled
   episode that paid, or the other turn of one that did not. Done with single-step keys and with
   window keys, side by side.

Run:  python examples/history_recall.py --episodes 200
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from hippogym import FeatureConfig, HippocampalReplayBuffer, MemoryStore, RecallObservation, RecordEpisodes
from hippogym.envs.cue_recall import CueRecallCorridorEnv

FORWARD, LEFT, RIGHT = 0, 1, 2


def explore(context: int, episodes: int, length: int, seed: int) -> HippocampalReplayBuffer:
    """A memory of random-turn episodes, keyed over windows of ``context`` observations."""
    buffer = HippocampalReplayBuffer(
        MemoryStore(embed_dim=32, capacity=50_000, seed=seed), features=FeatureConfig(context=context), seed=seed
    )
    env = RecordEpisodes(CueRecallCorridorEnv(length=length), buffer)
    rng = np.random.default_rng(seed)
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        done = False
        while not done:
            action = FORWARD if obs[3] < 0.5 else int(rng.integers(LEFT, RIGHT + 1))
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
    env.close()
    return buffer


def evaluate(buffer: HippocampalReplayBuffer, episodes: int, length: int, seed: int) -> float:
    """Success rate of turning at the junction as the recalled episodes say."""
    env = RecallObservation(CueRecallCorridorEnv(length=length), buffer, top_k=5)
    wins = 0
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + 100_000 + episode)
        while obs["observation"][3] < 0.5:
            obs, *_ = env.step(FORWARD)
        votes = {LEFT: 0.0, RIGHT: 0.0}
        for unit_id, score in zip(env.last_recall.episode_ids[0].tolist(), env.last_recall.scores[0].tolist()):
            unit = buffer.episode(unit_id)
            turn, paid = int(unit.actions[-1]), float(unit.rewards[-1]) > 0
            if turn in votes:
                votes[turn if paid else LEFT + RIGHT - turn] += score
        _, reward, *_ = env.step(max(votes, key=votes.get))
        wins += reward > 0
    return wins / episodes


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Explore, then compare single-step and window keys at the junction.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        ``{"single_step": success rate, "window": success rate}`` (for tests).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200, help="exploration episodes recorded into memory")
    parser.add_argument("--eval-episodes", type=int, default=50)
    parser.add_argument("--length", type=int, default=6, help="corridor length (the window covers it)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    out = {}
    for name, context in (("single_step", 1), ("window", args.length + 1)):
        buffer = explore(context, args.episodes, args.length, args.seed)
        out[name] = evaluate(buffer, args.eval_episodes, args.length, args.seed)
        print(f"keys over {context} observation(s): success at the junction {out[name]:.2f}")
    return out


if __name__ == "__main__":
    main()
