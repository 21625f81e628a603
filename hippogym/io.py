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
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import torch

import hippo_format
from hippo_format.errors import ManifestError, SchemaError
from hippogym import io_checks

if TYPE_CHECKING:  # pragma: no cover
    from hippogym.encoders.dual import DualEncoder
    from hippogym.memory.store import MemoryStore
    from hippogym.replay.buffer import HippocampalReplayBuffer

__all__ = ["save_buffer", "load_buffer", "save_store", "load_store", "save_encoder", "load_encoder", "MappedMemory", "open_mapped"]

logger = logging.getLogger(__name__)

PRODUCER = "hippogym"
_UNIT_COLUMNS = {
    "unit_source": ("source_episode_id", np.int64),
    "unit_start_step": ("start_step", np.int64),
    "unit_hits": ("hits", np.float32),
    "unit_rescues": ("rescues", np.int32),
    "unit_added": ("added", np.int64),
    "unit_slot": ("slot", np.int64),
}


def _np(t: Any) -> np.ndarray:
    # (np.ascontiguousarray would turn 0-d scalars such as step counters into 1-d arrays.)
    return torch.as_tensor(t).detach().cpu().contiguous().numpy()


def _version() -> str:
    from hippogym import __version__

    return __version__


def _store_payload(mem_state: Mapping[str, Any]) -> tuple[dict, dict, dict, dict]:
    """Split a :meth:`MemoryStore.state_dict` into transitions, episodes, tensors, manifest part."""
    config = mem_state["config"]
    if config.get("layout") is None:
        raise SchemaError("Cannot save an empty memory: it has no stored transitions (add episodes first).")
    layout = config["layout"]
    lengths = _np(mem_state["unit_length"]).astype(np.int64)
    unit_ids = _np(mem_state["unit_id"]).astype(np.int64)
    transitions: dict[str, np.ndarray] = {
        "episode_id": np.repeat(unit_ids, lengths),
        "step": _np(mem_state["row.step"]).astype(np.int32),
        "action": _np(mem_state["row.action"]),
        "reward": _np(mem_state["row.reward"]).astype(np.float32),
        "terminated": _np(mem_state["row.terminated"]).astype(bool),
        "truncated": _np(mem_state["row.truncated"]).astype(bool),
    }
    for f in layout["fields"]:
        suffix = f".{f['name']}" if layout["is_dict"] else ""
        transitions[f"obs{suffix}"] = _np(mem_state[f"row.obs.{f['name']}"])
        transitions[f"next_obs{suffix}"] = _np(mem_state[f"row.next_obs.{f['name']}"])
    for name in config.get("info_fields", {}):
        transitions[f"info.{name}"] = _np(mem_state[f"row.info.{name}"])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if len(lengths) else np.zeros(0, np.int64)
    episodes: dict[str, np.ndarray] = {
        "episode_id": unit_ids,
        "start": starts,
        "length": lengths,
        "return": _np(mem_state["unit_return"]).astype(np.float64),
        "success": _np(mem_state["unit_success"]).astype(np.int8),
    }
    for key, (column, dtype) in _UNIT_COLUMNS.items():
        episodes[column] = _np(mem_state[key]).astype(dtype)
    keys = {
        "keys": _np(mem_state["row.key"]),
        "key_version": _np(mem_state["row.key_version"]).astype(np.int64),
        "row": _np(mem_state["rows"]).astype(np.int64),
    }
    store_section = {"config": config, "scalars": mem_state["scalars"]}
    return transitions, episodes, keys, store_section


def _memory_state(reader: hippo_format.MemoryReader, store_section: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`_store_payload`: rebuild a store state dict from a memory on disk."""
    config = store_section["config"]
    layout = config.get("layout")
    if not layout or "fields" not in layout:
        raise ManifestError("Expected `store.config.layout` in the manifest (the observation layout), found none.")
    ep = reader.episodes()
    state: dict[str, Any] = {"config": config, "scalars": store_section["scalars"]}
    state["rows"] = torch.from_numpy(np.array(reader.tensor("keys", "row"), dtype=np.int64))
    state["row.key"] = torch.from_numpy(np.array(reader.tensor("keys", "keys")))
    state["row.key_version"] = torch.from_numpy(np.array(reader.tensor("keys", "key_version"), dtype=np.int64))
    state["row.step"] = torch.from_numpy(np.array(reader.column("step"), dtype=np.int64))
    for name in ("action", "reward", "terminated", "truncated"):
        state[f"row.{name}"] = torch.from_numpy(np.array(reader.column(name)))
    for f in layout["fields"]:
        suffix = f".{f['name']}" if layout["is_dict"] else ""
        state[f"row.obs.{f['name']}"] = torch.from_numpy(np.array(reader.column(f"obs{suffix}")))
        state[f"row.next_obs.{f['name']}"] = torch.from_numpy(np.array(reader.column(f"next_obs{suffix}")))
    for name in config.get("info_fields", {}):
        state[f"row.info.{name}"] = torch.from_numpy(np.array(reader.column(f"info.{name}")))
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
    state["generator"] = torch.from_numpy(np.array(reader.tensor("state", "generator.store")))
    return state


def _check_rows(state: Mapping[str, Any], capacity: int) -> None:
    rows = state["rows"]
    if rows.numel() and (int(rows.min()) < 0 or int(rows.max()) >= capacity or torch.unique(rows).numel() != rows.numel()):
        raise SchemaError(
            f"Expected `keys.row` to hold distinct physical rows in [0, {capacity}), found values in "
            f"[{int(rows.min())}, {int(rows.max())}] with {rows.numel() - torch.unique(rows).numel()} duplicates."
        )
    lengths, starts = state["unit_length"], state["unit_start"]
    if lengths.numel():
        ends = starts + lengths
        if int(ends.max()) > capacity:
            raise SchemaError(f"Expected every unit to fit in capacity={capacity}, a unit ends at row {int(ends.max())}.")


def save_buffer(
    buffer: "HippocampalReplayBuffer",
    path: str | os.PathLike[str],
    *,
    compression: str | None = None,
    spaces: Mapping[str, Any] | None = None,
) -> Path:
    """Save a buffer (memory, encoder, consolidator, sampler, settings) atomically.

    Args:
        buffer: The buffer.
        path: Target directory; an existing memory there is replaced atomically (a crash at any
            point leaves the previous one loadable).
        compression: ``None`` (default: memory-mappable) or ``"zstd"`` / ``"lz4"``.
        spaces: Optional ``{"observation_space": space, "action_space": space}`` (Gymnasium
            spaces, serialised as JSON); defaults to ``buffer.spaces`` when set.

    Returns:
        The path written.
    """
    state = buffer.state_dict()
    transitions, episodes, keys, store_section = _store_payload(state["memory"])
    state_tensors: dict[str, np.ndarray] = {
        "generator.store": _np(state["memory"]["generator"]),
        "generator.buffer": _np(state["generator"]),
    }
    consolidator = state.get("consolidator")
    if consolidator is not None:
        for name, value in consolidator.items():
            if isinstance(value, torch.Tensor):
                key = "generator.consolidator" if name == "generator" else f"consolidator.{name}"
                state_tensors[key] = _np(value)
    sampler = state.get("sampler")
    if sampler is not None:
        keys["priorities"] = _np(sampler["priorities"]).astype(np.float64)
        state_tensors["generator.sampler"] = _np(sampler["generator"])
    encoder = {name: _np(t) for name, t in state["encoder"].items()}
    space_section = {}
    spaces = spaces if spaces is not None else getattr(buffer, "spaces", None)
    if spaces:
        space_section = {name: hippo_format.space_to_json(space) for name, space in spaces.items() if space is not None}
    manifest = {
        "embed_dim": buffer.memory.embed_dim,
        "encoder": state["encoder_config"],
        "spaces": space_section,
        "segmenter": getattr(buffer, "segmenter_config", None) or {},
        "sampling": state["config"],
        "provenance": dict(getattr(buffer, "provenance", {}) or {}),
        "store": {
            **store_section,
            "consolidator": state.get("consolidator_config"),
            "consolidator_scalars": None if consolidator is None else {
                k: v for k, v in consolidator.items() if not isinstance(v, torch.Tensor)
            },
            "sampler_max_priority": None if sampler is None else float(sampler["max_priority"]),
        },
    }
    row_aligned = {"keys": {name: "transitions" for name in keys}}
    out = hippo_format.write_memory(
        path, manifest=manifest, transitions=transitions, episodes=episodes,
        tensors={"keys": keys, "encoder": encoder, "state": state_tensors},
        row_aligned=row_aligned, compression=compression, producer=(PRODUCER, _version()),
    )
    logger.info("saved %d transitions in %d units to %s", len(buffer), buffer.num_episodes, out)
    return out


def load_buffer(path: str | os.PathLike[str], *, verify: str = "full", device: str | torch.device = "cpu") -> "HippocampalReplayBuffer":
    """Load a buffer saved by :func:`save_buffer`.

    Args:
        path: Memory directory.
        verify: ``"full"`` (default: every file's sha256 is checked before anything is used),
            ``"size"`` or ``"none"``.
        device: Device of the batches the loaded buffer returns.

    Raises:
        hippo_format.FormatError: The directory is not a valid memory (the subclass says what is
            wrong: version, missing file, checksum, truncation, schema, counts, manifest, path).
    """
    from hippogym.consolidation.consolidator import Consolidator
    from hippogym.encoders.dual import DualEncoder
    from hippogym.memory.store import MemoryStore
    from hippogym.replay.buffer import HippocampalReplayBuffer

    with hippo_format.open_memory(path, verify=verify) as reader:
        manifest = reader.manifest
        store_section = _section(manifest, "store")
        sampling = _section(manifest, "sampling")
        encoder_config = _section(manifest, "encoder")
        store_config = io_checks.store_config(store_section.get("config"))
        io_checks.check_store_allocation(reader, store_config)
        sampling_kwargs = io_checks.sampling_kwargs(sampling)
        try:
            encoder = DualEncoder.from_config(encoder_config)
            memory = MemoryStore.from_config(store_config)
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"Expected valid `encoder` and `store.config` sections in the manifest: {exc}") from exc
        encoder_state = {name: torch.from_numpy(np.array(a)) for name, a in reader.read_tensors("encoder").items()}
        _check_state_keys(encoder.state_dict(), encoder_state, "encoder.safetensors")
        consolidator = None
        if store_section.get("consolidator"):
            consolidator = Consolidator.from_config(encoder, store_section["consolidator"])
        buffer = HippocampalReplayBuffer.from_config(
            sampling_kwargs, memory=memory, encoder=encoder, consolidator=consolidator,
            device=device,
        )
        state_tensors = {name: torch.from_numpy(np.array(a)) for name, a in reader.read_tensors("state").items()}
        mem_state = _memory_state(reader, store_section)
        _check_rows(mem_state, memory.capacity)
        full: dict[str, Any] = {
            "config": sampling, "memory": mem_state, "encoder": encoder_state, "encoder_config": encoder_config,
            "generator": state_tensors["generator.buffer"], "consolidator": None, "sampler": None,
        }
        if consolidator is not None:
            cons = dict(store_section.get("consolidator_scalars") or {})
            cons["generator"] = state_tensors["generator.consolidator"]
            cons.update({k[len("consolidator."):]: v for k, v in state_tensors.items() if k.startswith("consolidator.")})
            full["consolidator"] = cons
        if buffer.sampler is not None:
            full["sampler"] = {
                "priorities": torch.from_numpy(np.array(reader.tensor("keys", "priorities"))),
                "max_priority": float(store_section.get("sampler_max_priority") or 1.0),
                "generator": state_tensors["generator.sampler"],
            }
        try:
            buffer.load_state_dict(full)
        except (KeyError, RuntimeError, IndexError) as exc:
            raise SchemaError(f"The memory at {path} is inconsistent with its manifest: {exc}") from exc
        buffer.provenance = dict(manifest.get("provenance") or {})
        buffer.segmenter_config = dict(manifest.get("segmenter") or {})
        spaces = manifest.get("spaces") or {}
        if spaces:
            buffer.spaces = {
                name: hippo_format.space_from_json(value, limits=reader.limits, where=f"spaces.{name}")
                for name, value in spaces.items()
            }
    logger.info("loaded %d transitions in %d units from %s", len(buffer), buffer.num_episodes, path)
    return buffer


def _section(manifest: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = manifest.get(name)
    if not isinstance(value, dict):
        raise ManifestError(
            f"Expected a `{name}` object in the manifest (written by hippogym), found {type(value).__name__}. "
            "Was this memory written by another producer?"
        )
    return value


def _check_state_keys(expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor], where: str) -> None:
    missing = sorted(set(expected) - set(found))
    if missing:
        raise SchemaError(f"Expected tensors {missing[:5]} in {where} (the encoder's weights), found none.")
    for name, tensor in expected.items():
        if tuple(found[name].shape) != tuple(tensor.shape):
            raise SchemaError(f"Expected `{name}` in {where} to have shape {tuple(tensor.shape)}, found {tuple(found[name].shape)}.")


def save_store(store: "MemoryStore", path: str | os.PathLike[str], *, compression: str | None = None) -> Path:
    """Save a :class:`MemoryStore` on its own (no encoder): episodes, keys and bookkeeping."""
    state = store.state_dict()
    transitions, episodes, keys, store_section = _store_payload(state)
    return hippo_format.write_memory(
        path, manifest={"embed_dim": store.embed_dim, "store": store_section}, transitions=transitions,
        episodes=episodes, tensors={"keys": keys, "state": {"generator.store": _np(state["generator"])}},
        row_aligned={"keys": {name: "transitions" for name in keys}}, compression=compression,
        producer=(PRODUCER, _version()),
    )


def load_store(path: str | os.PathLike[str], *, verify: str = "full") -> "MemoryStore":
    """Load a store written by :func:`save_store` or :func:`save_buffer`."""
    from hippogym.memory.store import MemoryStore

    with hippo_format.open_memory(path, verify=verify) as reader:
        section = _section(reader.manifest, "store")
        store = MemoryStore.from_config(section["config"])
        state = _memory_state(reader, section)
        _check_rows(state, store.capacity)
        try:
            store.load_state_dict(state)
        except (KeyError, RuntimeError, IndexError) as exc:
            raise SchemaError(f"The memory at {path} is inconsistent with its manifest: {exc}") from exc
    return store


def save_encoder(encoder: "DualEncoder", path: str | os.PathLike[str]) -> Path:
    """Save a :class:`DualEncoder` as ``encoder.safetensors`` plus ``config.json`` in ``path``."""
    import json

    from hippo_format.torch import save_state_dict

    target = Path(path)
    target.mkdir(parents=True, exist_ok=True)
    save_state_dict(target / "encoder.safetensors", encoder.state_dict())
    tmp = target / ".config.json.tmp"
    tmp.write_text(json.dumps({"producer": PRODUCER, "version": _version(), "encoder": encoder.config()}, indent=2))
    os.replace(tmp, target / "config.json")
    return target


def load_encoder(path: str | os.PathLike[str]) -> "DualEncoder":
    """Load an encoder saved by :func:`save_encoder`."""
    import json

    from hippo_format.torch import load_state_dict

    from hippogym.encoders.dual import DualEncoder

    target = Path(path)
    try:
        config = json.loads((target / "config.json").read_text(encoding="utf-8"))["encoder"]
    except FileNotFoundError as exc:
        raise hippo_format.MissingFileError(f"Expected {target / 'config.json'} (the encoder config), found none.") from exc
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ManifestError(f"Expected {target / 'config.json'} to be JSON with an `encoder` object: {exc}") from exc
    encoder = DualEncoder.from_config(config)
    state = load_state_dict(target / "encoder.safetensors")
    _check_state_keys(encoder.state_dict(), state, "encoder.safetensors")
    encoder.load_state_dict(state)
    return encoder


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
