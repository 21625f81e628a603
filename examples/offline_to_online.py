"""Offline data into a memory: a Minari dataset of expert episodes becomes a hippogym memory.

What this script does, end to end and offline (a few seconds):

1. records a noisy expert on ``hippogym/SparseCorridor-v0`` as a local Minari dataset
   (``minari.create_dataset_from_buffers``; datasets go to ``--data-dir``, not ``~/.minari``);
2. converts it with :func:`hippogym.integrations.minari.memory_from_minari` (episode boundaries,
   ``terminated`` vs ``truncated``, infos and the dataset's provenance are kept) and consolidates;
3. saves the memory, reloads it, and shows what retrieval recalls next to the goal;
4. exports the memory back to a Minari dataset (:func:`memory_to_minari`) and checks it matches.

The online half (pushing the memory to the Hub, then starting a Stable-Baselines3 agent whose
replay buffer is that memory) is walked through in ``docs/offline_to_online.md``.

Usage::

    python examples/offline_to_online.py
    python examples/offline_to_online.py --episodes 50 --length 16 --out /tmp/corridor-memory
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

logger = logging.getLogger("offline_to_online")


def record_expert(dataset_id: str, episodes: int, length: int, epsilon: float, seed: int) -> Any:
    """Record an always-right policy with ``epsilon`` random actions as a Minari dataset."""
    import gymnasium as gym
    import minari
    from minari.data_collector.episode_buffer import EpisodeBuffer

    import hippogym

    hippogym.register_envs()
    env = gym.make("hippogym/SparseCorridor-v0", length=length)
    rng = np.random.default_rng(seed)
    buffers = []
    for i in range(episodes):
        obs, info = env.reset(seed=seed + i)
        steps: dict[str, list[Any]] = {"observations": [obs], "actions": [], "rewards": [], "terminations": [], "truncations": []}
        infos: dict[str, list[Any]] = {"is_success": [info["is_success"]], "position": [info["position"]]}
        done = False
        while not done:
            action = 1 if rng.random() > epsilon else int(rng.integers(2))
            obs, reward, terminated, truncated, info = env.step(action)
            for key, value in zip(steps, (obs, action, reward, terminated, truncated)):
                steps[key].append(value)
            infos["is_success"].append(info["is_success"])
            infos["position"].append(info["position"])
            done = terminated or truncated
        buffers.append(EpisodeBuffer(id=i, infos=infos, **steps))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Minari asks for author e-mail, code link, ...
        return minari.create_dataset_from_buffers(
            dataset_id, buffers, env=env, algorithm_name=f"scripted-right-eps{epsilon}", author="hippogym",
            description="Noisy expert on SparseCorridor",
        )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=30, help="expert episodes to record")
    parser.add_argument("--length", type=int, default=12, help="corridor length")
    parser.add_argument("--epsilon", type=float, default=0.1, help="share of random expert actions")
    parser.add_argument("--consolidate", type=int, default=100, help="consolidation steps after conversion")
    parser.add_argument("--data-dir", default=None, help="Minari datasets directory (default: a temporary one)")
    parser.add_argument("--out", default=None, help="where to save the memory (default: a temporary directory)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)

    import minari

    from hippogym import HippocampalReplayBuffer
    from hippogym.integrations.minari import memory_from_minari, memory_to_minari

    work = Path(tempfile.mkdtemp(prefix="hippogym-o2o-"))
    os.environ["MINARI_DATASETS_PATH"] = str(Path(args.data_dir or work / "minari").resolve())
    dataset_id = f"corridor{args.length}/expert-s{args.seed}-v0"
    try:
        dataset = minari.load_dataset(dataset_id)
    except FileNotFoundError:
        dataset = record_expert(dataset_id, args.episodes, args.length, args.epsilon, args.seed)
    logger.info("dataset %s: %d episodes, %d steps", dataset_id, dataset.total_episodes, dataset.total_steps)

    memory = memory_from_minari(dataset, embed_dim=64, consolidate_steps=args.consolidate, seed=args.seed)
    path = memory.save(Path(args.out) if args.out else work / "memory")
    memory = HippocampalReplayBuffer.load(path)
    logger.info("memory %s: %d transitions in %d units; provenance %s", path, len(memory), memory.num_episodes,
                {k: memory.provenance[k] for k in ("dataset_id", "env_id", "total_steps")})

    query = np.zeros(args.length, dtype=np.float32)
    query[args.length - 3] = 1.0  # two cells before the goal
    recalled = memory.retrieve(torch.from_numpy(query), top_k=3, record_hits=False)
    top = [memory.episode(int(uid)) for uid in recalled.episode_ids[0].tolist() if uid >= 0]
    logger.info("recalled near the goal: %s", [(ep.episode_id, ep.success, len(ep)) for ep in top])

    export_id = f"corridor{args.length}/expert-s{args.seed}-memory-v0"
    if export_id in minari.list_local_datasets():
        minari.delete_dataset(export_id)  # from an earlier run with the same --data-dir
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        exported = memory_to_minari(memory, export_id, data_format="arrow", algorithm_name="hippogym-memory")
    same = all(
        np.array_equal(a.observations, b.observations) and np.array_equal(a.actions, b.actions)
        for a, b in zip(dataset.iterate_episodes(), exported.iterate_episodes())
    )
    logger.info("exported back to Minari %s: %d episodes, identical: %s", exported.id, exported.total_episodes, same)
    return {
        "dataset": dataset_id, "episodes": dataset.total_episodes, "transitions": len(memory), "path": str(path),
        "recalled_success": [ep.success for ep in top], "export_identical": same,
    }


if __name__ == "__main__":
    main()
