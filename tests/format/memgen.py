"""Builders of small valid memories for the hippo_format tests (also used by subprocess workers)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import xxhash

from hippo_format._manifest import dump_manifest


def make_memory_arrays(
    episodes: int = 4,
    steps: int = 5,
    *,
    obs_dim: int = 3,
    embed_dim: int = 4,
    dict_obs: bool = False,
    image: bool = False,
    seed: int = 0,
    keys_dtype: Any = np.float32,
    ragged: bool = True,
) -> dict[str, Any]:
    """Return keyword arguments for ``write_memory`` describing a small random memory.

    Args:
        episodes: Number of episodes.
        steps: Base episode length (episode i has ``steps + i % 3`` rows when ``ragged``).
        obs_dim: Size of the flat observation.
        embed_dim: Width of ``keys/embeddings``.
        dict_obs: Store observations as ``obs.state`` (+ ``obs.image``) dict columns.
        image: Add a uint8 ``[3, 8, 8]`` image observation (implies dict columns).
        seed: RNG seed.
        keys_dtype: dtype of the embeddings.
        ragged: Vary episode lengths.

    Returns:
        Dict with ``manifest``, ``transitions``, ``episodes``, ``tensors``, ``row_aligned``.
    """
    rng = np.random.default_rng(seed)
    lengths = np.array([steps + (i % 3 if ragged else 0) for i in range(episodes)], dtype=np.int64)
    n = int(lengths.sum())
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if episodes else np.zeros(0, np.int64)
    ids = (np.arange(episodes, dtype=np.int64) * 7 + 3) if episodes else np.zeros(0, np.int64)
    episode_id = np.repeat(ids, lengths)
    step = np.concatenate([np.arange(l, dtype=np.int32) for l in lengths]) if episodes else np.zeros(0, np.int32)
    reward = rng.standard_normal(n).astype(np.float32)
    terminated = np.zeros(n, dtype=bool)
    truncated = np.zeros(n, dtype=bool)
    ends = starts + lengths - 1
    terminated[ends[::2]] = True
    truncated[ends[1::2]] = True
    transitions: dict[str, np.ndarray] = {
        "episode_id": episode_id,
        "step": step,
        "reward": reward,
        "terminated": terminated,
        "truncated": truncated,
        "action": rng.standard_normal((n, 2)).astype(np.float32),
    }
    if dict_obs or image:
        transitions["obs.state"] = rng.standard_normal((n, obs_dim)).astype(np.float32)
        transitions["next_obs.state"] = rng.standard_normal((n, obs_dim)).astype(np.float32)
        if image:
            transitions["obs.image"] = rng.integers(0, 256, (n, 3, 8, 8), dtype=np.uint8)
            transitions["next_obs.image"] = rng.integers(0, 256, (n, 3, 8, 8), dtype=np.uint8)
    else:
        transitions["obs"] = rng.standard_normal((n, obs_dim)).astype(np.float32)
        transitions["next_obs"] = rng.standard_normal((n, obs_dim)).astype(np.float32)
    returns = np.add.reduceat(reward.astype(np.float64), starts) if episodes else np.zeros(0)
    episode_table = {
        "episode_id": ids,
        "start": starts,
        "length": lengths,
        "return": returns,
        "success": np.array([(-1, 0, 1)[i % 3] for i in range(episodes)], dtype=np.int8),
    }
    tensors = {
        "keys": {
            "embeddings": rng.standard_normal((n, embed_dim)).astype(keys_dtype),
            "priorities": rng.random(n).astype(np.float32),
            "visits": np.arange(episodes, dtype=np.int64),
        },
        "encoder": {
            "online.weight": rng.standard_normal((embed_dim, obs_dim)).astype(np.float32),
            "online.bias": np.zeros(embed_dim, dtype=np.float32),
            "key.weight": rng.standard_normal((embed_dim, obs_dim)).astype(np.float32),
        },
    }
    manifest = {
        "embed_dim": embed_dim,
        "encoder": {"architecture": "mlp", "hidden": [32, 32], "momentum": 0.99},
        "spaces": {
            "observation_space": {"type": "Box", "dtype": "float32", "shape": [obs_dim], "low": "-inf", "high": "inf"},
            "action_space": {"type": "Box", "dtype": "float32", "shape": [2], "low": -1.0, "high": 1.0},
        },
        "provenance": {"env_id": "Test-v0", "dataset_id": None},
        "store": {"seed": seed},
    }
    return {
        "manifest": manifest,
        "transitions": transitions,
        "episodes": episode_table,
        "tensors": tensors,
        "row_aligned": {"keys": {"embeddings": "transitions", "priorities": "transitions", "visits": "episodes"}},
    }


def write_small_memory(path: Path, **kwargs: Any) -> Path:
    """Write a small valid memory (see :func:`make_memory_arrays`) and return its path."""
    import hippo_format

    extra = kwargs.pop("extra_files", {"index.faiss": b"\x00FAISS-test-index\x01" * 4})
    compression = kwargs.pop("compression", None)
    batch_rows = kwargs.pop("batch_rows", None)
    data = make_memory_arrays(**kwargs)
    return hippo_format.write_memory(
        path,
        extra_files=extra,
        compression=compression,
        batch_rows=batch_rows,
        tensor_metadata={"encoder": {"framework": "torch"}},
        **data,
    )


def bit_equal(a: np.ndarray, b: np.ndarray) -> bool:
    """Return True when two arrays have the same dtype, shape and bytes."""
    a = np.ascontiguousarray(a)
    b = np.ascontiguousarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def rewrite_manifest(path: Path, mutate: Callable[[dict], None] | None = None, *, rehash: bool = True) -> None:
    """Edit a memory's manifest, recomputing file entries and the self digest so only the edit matters."""
    doc = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    if rehash:
        for name in list(doc["files"]):
            file = path / name
            if file.is_file():
                data = file.read_bytes()
                doc["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                                      "xxh3_128": xxhash.xxh3_128(data).hexdigest()}
    if mutate is not None:
        mutate(doc)
    doc.pop("manifest_sha256", None)
    (path / "manifest.json").write_bytes(dump_manifest(doc))


def read_table(path: Path) -> pa.Table:
    """Read an Arrow file fully into memory (never a map: the tests overwrite the file afterwards)."""
    return pa.ipc.open_file(pa.BufferReader(path.read_bytes())).read_all()
