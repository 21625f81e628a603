"""Saving and loading memories with :mod:`hippo_format` (safetensors + Arrow + JSON manifest).

A saved buffer is a directory:

* ``transitions.arrow``: one row per stored transition, units in age order (oldest first);
  columns ``episode_id`` (the unit id), ``step``, ``obs`` / ``obs.<key>``, ``next_obs`` /
  ``next_obs.<key>``, ``action``, ``reward``, ``terminated``, ``truncated``, ``info.<key>``.
* ``episodes.arrow``: one row per unit: ``episode_id``, ``start``, ``length``, ``return``,
  ``success``, plus the store's bookkeeping (``source_episode_id``, ``start_step``, ``hits``,
  ``rescues``, ``added``, ``slot``).
* ``keys.safetensors``: per-transition keys, key versions, physical ring rows, priorities.
* ``encoder.safetensors``: online and key encoder weights (and the version counter).
* ``state.safetensors``: generator states and the consolidator's optimizer moments.
* ``manifest.json``: configs (encoder, store, buffer, consolidator), spaces, provenance, and the
  store's scalars. The physical row of every transition is saved, so a reload reproduces the
  ring exactly: same tensors bit for bit, same batches with the same seed, and consolidation
  resumes from the saved encoder, momentum and optimizer state.

Nothing is unpickled: the reader validates every file before use (see ``hippo_format/SPEC.md``).

Each part persists itself in its own layer, and this module re-exports their functions:
:mod:`hippogym.memory.persist` (:func:`save_store`, :func:`load_store`),
:mod:`hippogym.encoders.persist` (:func:`save_encoder`, :func:`load_encoder`) and
:mod:`hippogym.replay.persist` (:func:`save_buffer`, :func:`load_buffer`). What is only here is
the lazy reader of a saved memory, :class:`MappedMemory` / :func:`open_mapped`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

import hippo_format
from hippogym.checks import PRODUCER  # noqa: F401  (historical name of the producer stamp)
from hippogym.encoders.dual import DualEncoder
from hippogym.encoders.persist import save_encoder
from hippogym.memory.persist import save_store
from hippogym.memory.store import MemoryStore
from hippogym.replay.buffer import HippocampalReplayBuffer
from hippogym.replay.persist import save_buffer

__all__ = ["save_buffer", "load_buffer", "save_store", "load_store", "save_encoder", "load_encoder", "MappedMemory", "open_mapped"]



def load_buffer(path: str | os.PathLike[str], *, verify: str = "full", device: str | torch.device = "cpu") -> HippocampalReplayBuffer:
    """Load a buffer saved by :func:`save_buffer` (:meth:`HippocampalReplayBuffer.load`)."""
    return HippocampalReplayBuffer.load(path, verify=verify, device=device)


def load_store(path: str | os.PathLike[str], *, verify: str = "full") -> MemoryStore:
    """Load a store saved by :func:`save_store` or the memory of a saved buffer (:meth:`MemoryStore.load`)."""
    return MemoryStore.load(path, verify=verify)


def load_encoder(path: str | os.PathLike[str]) -> DualEncoder:
    """Load an encoder saved by :func:`save_encoder` (:meth:`DualEncoder.from_pretrained`)."""
    return DualEncoder.from_pretrained(path)

class MappedMemory:
    """A saved memory opened lazily: columns stay memory-mapped; uniform samples read only the rows drawn.

    Opening reads the manifest and maps the files: nothing large is copied until used.

    Args:
        path: Memory directory.
        verify: ``"size"`` (default: cheap) or ``"full"``.
        seed: Seed of the sampling generator.
    """

    def __init__(self, path: str | os.PathLike[str], verify: str = "size", seed: int | None = None) -> None:
        self.reader = hippo_format.open_memory(path, verify=verify)
        self.rng = np.random.default_rng(seed)
        names = self.reader.column_names
        self._obs = [n for n in names if n == "obs" or n.startswith("obs.")]
        self._next = [n for n in names if n == "next_obs" or n.startswith("next_obs.")]
        self._cols: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return self.reader.num_transitions

    def _col(self, name: str) -> np.ndarray:
        if name not in self._cols:
            self._cols[name] = self.reader.column(name)
        return self._cols[name]

    def sample(self, batch_size: int) -> dict[str, Any]:
        """Uniform transitions as torch tensors (observations dict-keyed for Dict spaces)."""
        idx = np.sort(self.rng.integers(0, len(self), batch_size))

        def obs(names: list[str]) -> Any:
            if len(names) == 1 and "." not in names[0]:
                return torch.from_numpy(self._col(names[0])[idx])
            return {n.split(".", 1)[1]: torch.from_numpy(self._col(n)[idx]) for n in names}

        return {
            "observations": obs(self._obs), "next_observations": obs(self._next),
            "actions": torch.from_numpy(self._col("action")[idx]), "rewards": torch.from_numpy(self._col("reward")[idx]),
            "terminated": torch.from_numpy(self._col("terminated")[idx]), "truncated": torch.from_numpy(self._col("truncated")[idx]),
            "indices": torch.from_numpy(idx),
        }

    def close(self) -> None:
        """Release the mapped files."""
        self._cols.clear()
        self.reader.close()


def open_mapped(path: str | os.PathLike[str], verify: str = "size", seed: int | None = None) -> MappedMemory:
    """Open a saved memory lazily (see :class:`MappedMemory`)."""
    return MappedMemory(path, verify=verify, seed=seed)
