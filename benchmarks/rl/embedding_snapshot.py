"""Experiment 8: a snapshot of the memory's key space, for TensorBoard's projector and as a PCA plot.

Two sources of memories (``--source``):

* ``planted`` (default): the consolidation micro-benchmark's synthetic episodes, rare successes
  (10%) whose trajectories run through a shifted region of state space, so outcome is visible in
  the features and consolidation can organise keys by it;
* ``corridor``: episodes of ``hippogym/SparseCorridor-v0`` (length ``--length``) recorded with
  ``RecordEpisodes`` under a family of behaviour policies (each episode moves right with its own
  probability in ``[0.3, 0.8]``): a mix of successes (return 1) and failures (return 0). Its
  observation is the one-hot cell only, so every visit of a cell has the same key whatever the
  episode's outcome: the plot shows one point per cell, before and after consolidation.

The keys are logged to TensorBoard's projector (``SummaryWriter.add_embedding``) before and after
``--cons-steps`` consolidation steps, with metadata columns: unit return, reward, success, step in
episode, ``obs0`` (planted: the shifted coordinate; corridor: the cell). A PCA plot of the same keys, colored by unit return, is saved as a PNG.

Then: ``tensorboard --logdir runs/hippo_tb`` (PROJECTOR tab).

Examples::

    python benchmarks/rl/embedding_snapshot.py                                  # runs/hippo_tb + PNG
    python benchmarks/rl/embedding_snapshot.py --episodes 40 --cons-steps 50 --logdir /tmp/tb --png /tmp/pca.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.rl import common


def fill_memory(length: int, episodes: int, seed: int, embed_dim: int) -> Any:
    import gymnasium as gym
    import numpy as np

    from hippogym import HippocampalReplayBuffer, MemoryStore, RecordEpisodes
    from hippogym.envs import register_envs

    register_envs()
    store = MemoryStore(embed_dim=embed_dim, capacity=episodes * 4 * length + 1, key_dtype=common.KEY_DTYPE, seed=seed)
    buffer = HippocampalReplayBuffer(store, seed=seed)
    env = RecordEpisodes(gym.make("hippogym/SparseCorridor-v0", length=length), buffer)
    rng = np.random.default_rng(seed)
    for i in range(episodes):
        p_right = rng.uniform(0.3, 0.8)
        env.reset(seed=seed + i)
        done = False
        while not done:
            _, _, terminated, truncated, _ = env.step(int(rng.random() < p_right))
            done = terminated or truncated
    env.close()
    return buffer


def fill_planted(episodes: int, seed: int, embed_dim: int) -> Any:
    """A memory of the micro-benchmark's synthetic episodes (rare successes in a shifted region)."""
    from benchmarks.rl.consolidation_micro import planted_episodes
    from hippogym import HippocampalReplayBuffer, MemoryStore

    data = planted_episodes(episodes, 16, 0.1, seed)
    buffer = HippocampalReplayBuffer(MemoryStore(embed_dim=embed_dim, capacity=episodes * 16 + 1, key_dtype=common.KEY_DTYPE,
                                                 seed=seed), seed=seed)
    buffer.add_episodes(data)
    return buffer


def snapshot(buffer: Any, max_points: int, seed: int) -> dict[str, Any]:
    """Keys of (a sample of) the stored transitions and their metadata."""
    import torch

    mem = buffer.memory
    rows, _ = mem.rows_of(mem.live_slots())
    g = torch.Generator().manual_seed(seed)
    if rows.numel() > max_points:
        rows = rows[torch.randperm(rows.numel(), generator=g)[:max_points]].sort().values
    slots = mem.row_slot[rows]
    obs = mem.layout.flatten({name: bank.index_select(0, rows) for name, bank in mem.obs.items()})
    return {
        "keys": mem.keys[rows].float(),
        "unit_return": mem.unit_return[slots].float(),
        "reward": mem.rewards[rows].float(),
        "step": (rows - mem.unit_start[slots]).float(),
        "obs0": obs[:, 0].float() if obs.shape[1] < 8 else obs.argmax(1).float(),  # planted: shifted axis; corridor: cell
        "success": (mem.unit_return[slots] > 0).float(),
    }


def pca2(x: Any) -> Any:
    import torch

    centered = x - x.mean(0, keepdim=True)
    _, _, v = torch.linalg.svd(centered, full_matrices=False)
    return centered @ v[:2].T


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=("planted", "corridor"), default="planted",
                        help="planted: synthetic episodes whose rare successes are visible in the state; "
                             "corridor: SparseCorridor episodes (one-hot position only)")
    parser.add_argument("--length", type=int, default=15, help="corridor length (--source corridor)")
    parser.add_argument("--episodes", type=int, default=300)
    parser.add_argument("--embed-dim", type=int, default=32)
    parser.add_argument("--cons-steps", type=int, default=300)
    parser.add_argument("--max-points", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--logdir", default="runs/hippo_tb")
    parser.add_argument("--png", default="runs/rl/embedding/embedding_pca.png")
    parser.add_argument("--dry-run", action="store_true", help="print the settings and exit (smoke tests)")
    args = parser.parse_args(argv)
    if args.dry_run:
        print("settings:", vars(args))
        return {"dry_run": True, "settings": vars(args)}
    common.setup_process()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from torch.utils.tensorboard import SummaryWriter

    if args.source == "corridor":
        buffer = fill_memory(args.length, args.episodes, args.seed, args.embed_dim)
    else:
        buffer = fill_planted(args.episodes, args.seed, args.embed_dim)
    before = snapshot(buffer, args.max_points, args.seed)
    metrics = buffer.consolidate(steps=args.cons_steps, batch_size=128, report_quality=True)
    after = snapshot(buffer, args.max_points, args.seed)

    header = ["unit_return", "reward", "success", "step", "obs0"]
    writer = SummaryWriter(args.logdir)
    for step, (tag, snap) in enumerate((("keys_before_consolidation", before), ("keys_after_consolidation", after))):
        meta = [[f"{float(snap[h][i]):g}" for h in header] for i in range(snap["keys"].shape[0])]
        writer.add_embedding(snap["keys"], metadata=meta, metadata_header=header, tag=tag, global_step=step)
    for k in ("reward_alignment", "success_precision", "success_base_rate", "effective_rank"):
        if k in metrics:
            writer.add_scalar(f"quality/{k}", metrics[f"before_{k}"], 0)
            writer.add_scalar(f"quality/{k}", metrics[k], args.cons_steps)
    writer.close()

    fig, axes = plt.subplots(1, 2, figsize=(9.5, 4.0))
    for ax, (title, snap, prefix) in zip(axes, (("before consolidation", before, "before_"), (f"after {args.cons_steps} consolidation steps", after, ""))):
        xy = pca2(snap["keys"]).numpy()
        ret = snap["unit_return"].numpy()
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=ret, cmap="coolwarm", s=6, alpha=0.7, vmin=0, vmax=max(1.0, float(ret.max())))
        ra = metrics.get(prefix + "reward_alignment", float("nan"))
        sp, br = metrics.get(prefix + "success_precision", float("nan")), metrics.get(prefix + "success_base_rate", float("nan"))
        ax.set_title(f"{args.source}: {title}\nreward alignment {ra:.2f}\nsuccess precision {sp:.2f} (base rate {br:.2f})",
                     fontsize=9)
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
    fig.colorbar(sc, ax=axes, label="unit return (> 0 = success)")
    png = Path(args.png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110, bbox_inches="tight")
    plt.close(fig)
    summary = {
        "experiment": "embedding_snapshot", "command": " ".join(sys.argv), "logdir": args.logdir, "png": str(png),
        "transitions": len(buffer), "units": buffer.num_episodes,
        "source": args.source,
        "success_units": int(sum(1 for ep in buffer.memory.episodes() if float(ep.rewards.sum()) > 0)),
        "points": int(after["keys"].shape[0]),
        "quality": {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))},
    }
    common.dump_json(png.with_suffix(".json"), summary)
    print(f"{summary['units']} units ({summary['success_units']} successes), {summary['points']} keys logged to "
          f"{args.logdir}; reward alignment {metrics.get('before_reward_alignment', float('nan')):.2f} -> "
          f"{metrics.get('reward_alignment', float('nan')):.2f}; PCA plot {png}")
    print(f"view: tensorboard --logdir {args.logdir}")
    return summary


if __name__ == "__main__":
    main()
