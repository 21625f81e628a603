"""Subprocess worker for the kill-mid-save test: saves one memory whose content encodes a generation.

Usage: python save_worker.py TARGET GENERATION ROWS {renameat2,fallback} [loop]

Prints "ready" once the arrays are built (the parent starts its kill timer
then), and "done <seconds>" after the save returns. With ``loop`` it saves
generations GENERATION, GENERATION + 1, ... to TARGET until it is killed (or
a file ``TARGET.stop`` appears), printing "saved <generation>" after each.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np


def build(generation: int, rows: int) -> dict:
    """Return write_memory arguments whose every value encodes ``generation``."""
    steps = 100
    episodes = max(1, rows // steps)
    rows = episodes * steps
    g = float(generation)
    transitions = {
        "episode_id": np.repeat(np.arange(episodes, dtype=np.int64), steps),
        "step": np.tile(np.arange(steps, dtype=np.int32), episodes),
        "reward": np.full(rows, g, dtype=np.float32),
        "terminated": np.zeros(rows, dtype=bool),
        "truncated": np.zeros(rows, dtype=bool),
        "obs": np.full((rows, 8), g, dtype=np.float32),
        "next_obs": np.full((rows, 8), g, dtype=np.float32),
        "action": np.full((rows, 2), g, dtype=np.float32),
    }
    episode_table = {
        "episode_id": np.arange(episodes, dtype=np.int64),
        "start": np.arange(episodes, dtype=np.int64) * steps,
        "length": np.full(episodes, steps, dtype=np.int64),
        "return": np.full(episodes, g * steps, dtype=np.float64),
        "success": np.full(episodes, -1, dtype=np.int8),
    }
    tensors = {"keys": {"embeddings": np.full((rows, 128), g, dtype=np.float32)}}
    return {
        "manifest": {"store": {"generation": generation}},
        "transitions": transitions,
        "episodes": episode_table,
        "tensors": tensors,
        "row_aligned": {"keys": {"embeddings": "transitions"}},
        "extra_files": {"index.faiss": str(generation).encode() * 1000},
    }


def main() -> None:
    """Entry point (see module docstring)."""
    import hippo_format
    import hippo_format._atomic

    target, generation, rows, mode = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    hippo_format._atomic.USE_RENAMEAT2 = mode == "renameat2"
    if sys.argv[5:] == ["loop"]:
        stop = target.with_name(target.name + ".stop")
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        while not stop.exists():
            hippo_format.write_memory(target, **build(generation, rows))
            sys.stdout.write(f"saved {generation}\n")
            sys.stdout.flush()
            generation += 1
        return
    data = build(generation, rows)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    start = time.perf_counter()
    hippo_format.write_memory(target, **data)
    sys.stdout.write(f"done {time.perf_counter() - start:.3f}\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
