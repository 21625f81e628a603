"""Persistence of a :class:`~hippogym.memory.store.MemoryStore` with :mod:`hippo_format`.

The store's part of a saved memory (see :mod:`hippogym.io` for the whole directory layout):

* ``transitions.arrow``: one row per stored transition, units in age order (oldest first).
* ``episodes.arrow``: one row per unit plus the store's bookkeeping columns.
* ``keys.safetensors``: per-transition keys, key versions and physical ring rows.
* ``manifest.json``: the ``store`` section (config and scalars).

:func:`store_payload` and :func:`memory_state` convert between the store's state dict and these
files; :func:`save_buffer <hippogym.replay.persist.save_buffer>` reuses them for the memory of a
whole buffer. The manifest checks of the store's config (:func:`store_config`,
:func:`check_store_allocation`) run before anything is allocated.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

import hippo_format
from hippo_format.errors import ManifestError, SchemaError
from hippo_format.torch import torch_dtype_from_name
from hippogym.checks import MISSING, get_field, manifest_int, manifest_name, manifest_section, producer, to_numpy
from hippogym.errors import ValidationError

__all__ = [
    "check_rows", "check_store_allocation", "key_row_alignment", "load_store", "memory_state", "save_store",
    "store_config", "store_payload",
]

_EVICTIONS = frozenset({"fifo", "utility"})
_INDEXES = frozenset({"transition", "torch", "faiss"})
_UNIT_COLUMNS = {
    "unit_source": ("source_episode_id", np.int64),
    "unit_start_step": ("start_step", np.int64),
    "unit_hits": ("hits", np.float32),
    "unit_rescues": ("rescues", np.int32),
    "unit_added": ("added", np.int64),
    "unit_slot": ("slot", np.int64),
}


def store_payload(mem_state: Mapping[str, Any]) -> tuple[dict, dict, dict, dict]:
    """Split a :meth:`MemoryStore.state_dict` into transitions, episodes, tensors, manifest part.

    Args:
        mem_state: The store's state dict.

    Returns:
        ``(transitions, episodes, keys, store_section)``: the two tables' columns, the
        ``keys.safetensors`` tensors and the manifest's ``store`` section.

    A store that has never held a transition has no observation layout yet: its tables get zero
    rows and placeholder ``obs``/``next_obs``/``action`` columns (float32 scalars), its manifest
    ``layout: null``, and it loads back as the same empty store (``SPEC.md``, T4).
    """
    config = mem_state["config"]
    if config.get("layout") is None:
        return _empty_payload(mem_state)
    layout = config["layout"]
    lengths = to_numpy(mem_state["unit_length"]).astype(np.int64)
    unit_ids = to_numpy(mem_state["unit_id"]).astype(np.int64)
    transitions: dict[str, np.ndarray] = {
        "episode_id": np.repeat(unit_ids, lengths),
        "step": to_numpy(mem_state["row.step"]).astype(np.int32),
        "action": to_numpy(mem_state["row.action"]),
        "reward": to_numpy(mem_state["row.reward"]).astype(np.float32),
        "terminated": to_numpy(mem_state["row.terminated"]).astype(bool),
        "truncated": to_numpy(mem_state["row.truncated"]).astype(bool),
    }
    for f in layout["fields"]:
        suffix = f".{f['name']}" if layout["is_dict"] else ""
        transitions[f"obs{suffix}"] = to_numpy(mem_state[f"row.obs.{f['name']}"])
        transitions[f"next_obs{suffix}"] = to_numpy(mem_state[f"row.next_obs.{f['name']}"])
    for name in config.get("info_fields", {}):
        transitions[f"info.{name}"] = to_numpy(mem_state[f"row.info.{name}"])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if len(lengths) else np.zeros(0, np.int64)
    episodes: dict[str, np.ndarray] = {
        "episode_id": unit_ids,
        "start": starts,
        "length": lengths,
        "return": to_numpy(mem_state["unit_return"]).astype(np.float64),
        "success": to_numpy(mem_state["unit_success"]).astype(np.int8),
    }
    for key, (column, dtype) in _UNIT_COLUMNS.items():
        episodes[column] = to_numpy(mem_state[key]).astype(dtype)
    keys = {
        "keys": to_numpy(mem_state["row.key"]),
        "key_version": to_numpy(mem_state["row.key_version"]).astype(np.int64),
        "row": to_numpy(mem_state["rows"]).astype(np.int64),
    }
    if "centroid" in mem_state and "theta" in mem_state:  # derived from the keys; saved so loads skip the pass
        keys["unit_centroid"] = to_numpy(mem_state["centroid"]).astype(np.float32)
        keys["unit_theta"] = to_numpy(mem_state["theta"]).astype(np.float32)
    store_section = {"config": config, "scalars": mem_state["scalars"]}
    return transitions, episodes, keys, store_section


def key_row_alignment(keys: Mapping[str, Any]) -> dict[str, str]:
    """``row_aligned`` of ``keys.safetensors`` (SPEC M8): ``unit_*`` tensors per episode, the rest per transition."""
    return {name: "episodes" if name.startswith("unit_") else "transitions" for name in keys}


def _empty_payload(mem_state: Mapping[str, Any]) -> tuple[dict, dict, dict, dict]:
    """:func:`store_payload` for a store that has no layout yet (nothing was ever added)."""
    config = mem_state["config"]
    key_dtype = np.float16 if config.get("key_dtype") == "float16" else np.float32
    transitions = {
        "episode_id": np.zeros(0, np.int64), "step": np.zeros(0, np.int32), "action": np.zeros(0, np.float32),
        "reward": np.zeros(0, np.float32), "terminated": np.zeros(0, bool), "truncated": np.zeros(0, bool),
        "obs": np.zeros(0, np.float32), "next_obs": np.zeros(0, np.float32),
    }
    episodes = {
        "episode_id": np.zeros(0, np.int64), "start": np.zeros(0, np.int64), "length": np.zeros(0, np.int64),
        "return": np.zeros(0, np.float64), "success": np.zeros(0, np.int8),
    }
    episodes.update({column: np.zeros(0, dtype) for column, dtype in _UNIT_COLUMNS.values()})
    keys = {
        "keys": np.zeros((0, int(config["embed_dim"])), key_dtype),
        "key_version": np.zeros(0, np.int64),
        "row": np.zeros(0, np.int64),
    }
    return transitions, episodes, keys, {"config": config, "scalars": mem_state["scalars"]}


def memory_state(reader: hippo_format.MemoryReader, store_section: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`store_payload`: rebuild a store state dict from a memory on disk.

    Args:
        reader: The open memory.
        store_section: The manifest's ``store`` section.

    Returns:
        A state dict for :meth:`MemoryStore.load_state_dict`.

    Raises:
        hippo_format.FormatError: If the layout or a bookkeeping column is missing.
    """
    config = store_section["config"]
    layout = config.get("layout")
    if layout is None and "layout" in config and reader.num_transitions == 0:
        return _empty_state(reader, store_section)
    if not layout or "fields" not in layout:
        raise ManifestError("Expected `store.config.layout` in the manifest (the observation layout), found none.")
    ep = reader.episodes()
    state: dict[str, Any] = {"config": config, "scalars": store_section["scalars"]}
    state["rows"] = torch.from_numpy(np.array(reader.tensor("keys", "row"), dtype=np.int64))
    # Row data stay read-only views of the mapped files: load_state_dict copies them once, into the rows.
    state["row.key"] = reader.tensor("keys", "keys")
    state["row.key_version"] = reader.tensor("keys", "key_version")
    state["row.step"] = reader.column("step")
    for name in ("action", "reward", "terminated", "truncated"):
        state[f"row.{name}"] = reader.column(name)
    for f in layout["fields"]:
        suffix = f".{f['name']}" if layout["is_dict"] else ""
        state[f"row.obs.{f['name']}"] = reader.column(f"obs{suffix}")
        state[f"row.next_obs.{f['name']}"] = reader.column(f"next_obs{suffix}")
    for name in config.get("info_fields", {}):
        state[f"row.info.{name}"] = reader.column(f"info.{name}")
    state["unit_start"] = torch.zeros(len(ep["episode_id"]), dtype=torch.int64)  # physical starts are set from rows
    state["unit_length"] = torch.from_numpy(np.array(ep["length"], dtype=np.int64))
    state["unit_return"] = torch.from_numpy(np.array(ep["return"], dtype=np.float32))
    state["unit_id"] = torch.from_numpy(np.array(ep["episode_id"], dtype=np.int64))
    state["unit_success"] = torch.from_numpy(np.array(ep["success"], dtype=np.int8))
    for key, (column, dtype) in _UNIT_COLUMNS.items():
        if column not in ep:
            raise SchemaError(f"Expected column `{column}` in episodes.arrow (hippogym bookkeeping), found none.")
        state[key] = torch.from_numpy(np.array(ep[column], dtype=dtype))
    # Physical start of each unit = physical row of its first transition.
    starts = np.array(ep["start"], dtype=np.int64)
    if len(starts):
        state["unit_start"] = state["rows"][torch.from_numpy(starts)]
    names = set(reader.tensor_names("keys"))
    if {"unit_centroid", "unit_theta"} <= names:  # memories saved before these were added recompute them
        state["centroid"] = reader.tensor("keys", "unit_centroid")
        state["theta"] = reader.tensor("keys", "unit_theta")
    state["generator"] = torch.from_numpy(np.array(reader.tensor("state", "generator.store")))
    return state


def _empty_state(reader: hippo_format.MemoryReader, store_section: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`memory_state` of a memory saved before anything was added (``layout: null``)."""
    state: dict[str, Any] = {"config": store_section["config"], "scalars": store_section["scalars"]}
    state["rows"] = torch.zeros(0, dtype=torch.int64)
    for key in ("unit_start", "unit_length", "unit_id"):
        state[key] = torch.zeros(0, dtype=torch.int64)
    state["unit_return"] = torch.zeros(0, dtype=torch.float32)
    state["unit_success"] = torch.zeros(0, dtype=torch.int8)
    for key, (_, dtype) in _UNIT_COLUMNS.items():
        state[key] = torch.from_numpy(np.zeros(0, dtype))
    state["generator"] = torch.from_numpy(np.array(reader.tensor("state", "generator.store")))
    return state


def check_rows(state: Mapping[str, Any], capacity: int) -> None:
    """Check that the saved physical rows and units fit a ring of ``capacity`` rows.

    Args:
        state: A state dict from :func:`memory_state`.
        capacity: The store's capacity.

    Raises:
        hippo_format.SchemaError: For rows out of range, duplicate rows or a unit past the end.
    """
    rows = state["rows"]
    n = rows.numel()
    if n:
        lo, hi = int(rows.min()), int(rows.max())
        distinct = n
        if 0 <= lo and hi < capacity:  # mark each row once: O(n) (a sort took ~3 ms of a 100k load)
            seen = np.zeros(hi + 1, dtype=bool)
            seen[np.asarray(rows, dtype=np.int64)] = True
            distinct = int(np.count_nonzero(seen))
        if lo < 0 or hi >= capacity or distinct != n:
            raise SchemaError(
                f"Expected `keys.row` to hold distinct physical rows in [0, {capacity}), found values in "
                f"[{lo}, {hi}] with {n - torch.unique(rows).numel()} duplicates."
            )
    lengths, starts = state["unit_length"], state["unit_start"]
    if lengths.numel():
        ends = starts + lengths
        if int(ends.max()) > capacity:
            raise SchemaError(
                f"Expected every unit to fit in capacity={capacity}, a unit ends at row {int(ends.max())}."
            )


def store_config(config: Any) -> dict[str, Any]:
    """Check ``store.config`` and return a copy with its scalars typed.

    Raises:
        ValidationError: For a missing key, a wrong type, a negative or zero size, an unknown
            key dtype, or eviction/index sections that are not objects with a string ``type``.
    """
    if not isinstance(config, Mapping):
        raise ValidationError("store.config", "a JSON object", type(config).__name__)
    out = dict(config)
    out["capacity"] = manifest_int(config, "capacity", "store.config.capacity", minimum=1)
    out["embed_dim"] = manifest_int(config, "embed_dim", "store.config.embed_dim", minimum=1)
    key_dtype = get_field(config, "key_dtype", "store.config.key_dtype", MISSING)
    if key_dtype not in ("float32", "float16"):
        raise ValidationError("store.config.key_dtype", "one of ['float16', 'float32']", repr(key_dtype))
    for section, names in (("eviction", _EVICTIONS), ("index", _INDEXES)):
        value = get_field(config, section, f"store.config.{section}", MISSING)
        if not isinstance(value, Mapping):
            raise ValidationError(f"store.config.{section}", "a JSON object with a string `type`", repr(value))
        manifest_name(value, "type", f"store.config.{section}.type", names)
    return out


def check_store_allocation(reader: hippo_format.MemoryReader, config: Mapping[str, Any]) -> int:
    """Charge the store's preallocation to the reader's budget before it happens.

    Bytes per row are the sum over the transition columns of the manifest (dtype itemsize times
    the per-row shape, dtypes resolved through the format's allow-list) plus the key row
    (``embed_dim`` values of ``key_dtype``) and the fixed per-row bookkeeping.

    Returns:
        The number of bytes charged.

    Raises:
        hippo_format.LimitExceededError: If ``capacity`` rows do not fit the reader's limits.
    """
    per_row = 32  # step, key_version, flags
    for name in reader.column_names:
        dtype, shape = reader.column_spec(name)
        torch_dtype_from_name(str(np.dtype(dtype)), f"transitions.{name}")
        per_row += int(np.dtype(dtype).itemsize) * int(np.prod(shape, dtype=np.int64) if shape else 1)
    key_size = torch_dtype_from_name(config["key_dtype"], "store.config.key_dtype").itemsize
    per_row += int(config["embed_dim"]) * key_size
    nbytes = int(config["capacity"]) * per_row
    reader.check_allocation("store.config.capacity", nbytes)
    return nbytes


def save_store(store: Any, path: str | os.PathLike[str], *, compression: str | None = None) -> Path:
    """Save a :class:`MemoryStore` on its own (no encoder): episodes, keys and bookkeeping.

    Args:
        store: The store.
        path: Target directory; an existing memory there is replaced atomically.
        compression: ``None`` (default: memory-mappable) or ``"zstd"`` / ``"lz4"``.

    Returns:
        The path written.
    """
    state = store.state_dict()
    transitions, episodes, keys, store_section = store_payload(state)
    return hippo_format.write_memory(
        path, manifest={"embed_dim": store.embed_dim, "store": store_section}, transitions=transitions,
        episodes=episodes, tensors={"keys": keys, "state": {"generator.store": to_numpy(state["generator"])}},
        row_aligned={"keys": key_row_alignment(keys)}, compression=compression,
        producer=producer(),
    )


def load_store(cls: type[Any], path: str | os.PathLike[str], *, verify: str = "full") -> Any:
    """Load a store written by :func:`save_store` or by :func:`hippogym.replay.persist.save_buffer`.

    Args:
        cls: The store class to build (``MemoryStore``; passed in so that this module never
            imports the store, which imports it).
        path: Memory directory.
        verify: ``"full"`` (default: every file's digest), ``"sha256"``, ``"size"`` or ``"none"``
            (see :func:`hippo_format.open_memory`).

    Returns:
        The store.

    Raises:
        hippo_format.FormatError: The directory is not a valid memory.
    """
    with hippo_format.open_memory(path, verify=verify) as reader:
        section = manifest_section(reader.manifest, "store")
        store = cls.from_config(section["config"])
        state = memory_state(reader, section)
        check_rows(state, store.capacity)
        try:
            store.load_state_dict(state)
        except (KeyError, RuntimeError, IndexError) as exc:
            raise SchemaError(f"The memory at {path} is inconsistent with its manifest: {exc}") from exc
    return store
