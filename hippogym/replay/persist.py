"""Persistence of a whole :class:`~hippogym.replay.buffer.HippocampalReplayBuffer`.

A saved buffer is the store's memory (see :mod:`hippogym.memory.persist`) plus the parts only a
buffer has: ``encoder.safetensors`` (online and key encoder weights), the sampler's priorities in
``keys.safetensors``, the generator states and the consolidator's optimizer moments in
``state.safetensors``, and the manifest's ``encoder``, ``sampling``, ``spaces``, ``segmenter``
and ``provenance`` sections (the full layout is described in :mod:`hippogym.io`). Every manifest
value the loader retypes is checked first (:func:`read_sampling_kwargs`,
:func:`~hippogym.memory.persist.store_config`), and the store's preallocation is charged to the
reader's allocation budget before any tensor exists.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

import hippo_format
from hippo_format.errors import ManifestError, SchemaError
from hippogym.checks import (
    check_state_keys,
    manifest_bool,
    manifest_float,
    manifest_int,
    manifest_name,
    manifest_section,
    producer,
    to_numpy,
)
from hippogym.errors import ValidationError
from hippogym.memory.persist import (
    check_rows,
    check_store_allocation,
    key_row_alignment,
    memory_state,
    store_config,
    store_payload,
)
from hippogym.progress import progress_bar
from hippogym.returns import RETURNS_GAMMA, return_columns

__all__ = ["load_buffer", "read_sampling_kwargs", "save_buffer"]

#: The records keep the logger name they had when this code lived in :mod:`hippogym.io`.
#: Memories of at least this many transitions show a progress bar on save/load by default.
LARGE_MEMORY = 1_000_000

logger = logging.getLogger("hippogym.io")


def _mixture_ratio(sampling: Mapping[str, Any]) -> Any:
    value = sampling.get("mixture_ratio", 0.5)
    if isinstance(value, Mapping):
        if value.get("type") == "callable":
            return 0.5
        return value
    return manifest_float(sampling, "mixture_ratio", "sampling.mixture_ratio", minimum=0.0, maximum=1.0)


def read_sampling_kwargs(sampling: Mapping[str, Any]) -> dict[str, Any]:
    """Check the manifest's ``sampling`` section and return the buffer's keyword arguments.

    Raises:
        ValidationError: Naming ``sampling.<key>`` for a wrong type, a negative or zero size,
            NaN/inf, or an out-of-range ratio.
    """
    if not isinstance(sampling, Mapping):
        raise ValidationError("sampling", "a JSON object", type(sampling).__name__)
    return {
        "mixture_ratio": _mixture_ratio(sampling),
        "top_k": manifest_int(sampling, "top_k", "sampling.top_k", default=5, minimum=1),
        "retrieval_temperature": manifest_float(
            sampling, "retrieval_temperature", "sampling.retrieval_temperature", default=0.1, positive=True),
        "prioritized": manifest_bool(sampling, "prioritized", "sampling.prioritized", default=False),
        "alpha": manifest_float(sampling, "alpha", "sampling.alpha", default=0.6, minimum=0.0),
        "beta": manifest_float(sampling, "beta", "sampling.beta", default=0.0, minimum=0.0),
        "num_actions": manifest_int(sampling, "num_actions", "sampling.num_actions", default=None, minimum=1,
                                    allow_none=True),
        "key_action": manifest_bool(sampling, "key_action", "sampling.key_action", default=False),
        "context": manifest_int(sampling, "context", "sampling.context", default=1, minimum=1),
        # Saved before keys became observation-only: those keys carry the reward.
        "key_reward": manifest_bool(sampling, "key_reward", "sampling.key_reward", default=True),
        "exact_sampling": manifest_bool(sampling, "exact_sampling", "sampling.exact_sampling", default=False),
        "semantic_rows": manifest_name(
            sampling, "semantic_rows", "sampling.semantic_rows", frozenset({"uniform", "priority"}), default="uniform"
        ),
        "value_targets": _value_targets(sampling.get("value_targets")),
    }


def _value_targets(section: Any) -> dict[str, Any] | None:
    """The saved value-target settings, checked (``None``: the buffer had none)."""
    if section is None:
        return None
    if not isinstance(section, Mapping):
        raise ValidationError("sampling.value_targets", "a JSON object or null", type(section).__name__)
    return {
        "gamma": manifest_float(section, "gamma", "sampling.value_targets.gamma", minimum=0.0, maximum=1.0),
        "n_steps": manifest_int(section, "n_steps", "sampling.value_targets.n_steps", minimum=1),
        "returns": manifest_bool(section, "returns", "sampling.value_targets.returns", default=True),
    }


def save_buffer(
    buffer: Any,
    path: str | os.PathLike[str],
    *,
    compression: str | None = None,
    spaces: Mapping[str, Any] | None = None,
    progress: bool | None = None,
) -> Path:
    """Save a buffer (memory, encoder, consolidator, sampler, settings) atomically.

    Args:
        buffer: The buffer.
        path: Target directory; an existing memory there is replaced atomically (a crash at any
            point leaves the previous one loadable).
        compression: ``None`` (default: memory-mappable) or ``"zstd"`` / ``"lz4"``.
        spaces: Optional ``{"observation_space": space, "action_space": space}`` (Gymnasium
            spaces, serialised as JSON); defaults to ``buffer.spaces`` when set.
        progress: Show a bar over the three stages (collect state, build tables, write and sync);
            ``None`` (default) shows it for memories of at least :data:`LARGE_MEMORY` transitions.

    Returns:
        The path written.
    """
    bar = progress_bar(total=3, desc=f"save {Path(path).name}", unit="stage",
                       enabled=len(buffer) >= LARGE_MEMORY if progress is None else bool(progress))
    bar.set_postfix_str("collect state")
    state = buffer.state_dict()
    bar.update(1)
    bar.set_postfix_str("build tables")
    transitions, episodes, keys, store_section = store_payload(state["memory"])
    targets = getattr(buffer, "targets", None)
    gamma = RETURNS_GAMMA if targets is None else float(targets.gamma)
    transitions.update(
        return_columns(transitions["reward"], transitions["terminated"], episodes["start"], episodes["length"], gamma)
    )
    state_tensors: dict[str, np.ndarray] = {
        "generator.store": to_numpy(state["memory"]["generator"]),
        "generator.buffer": to_numpy(state["generator"]),
    }
    consolidator = state.get("consolidator")
    if consolidator is not None:
        for name, value in consolidator.items():
            if isinstance(value, torch.Tensor):
                key = "generator.consolidator" if name == "generator" else f"consolidator.{name}"
                state_tensors[key] = to_numpy(value)
    sampler = state.get("sampler")
    if sampler is not None:
        keys["priorities"] = to_numpy(sampler["priorities"]).astype(np.float64)
        state_tensors["generator.sampler"] = to_numpy(sampler["generator"])
    encoder = {name: to_numpy(t) for name, t in state["encoder"].items()}
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
        "returns": {
            "gamma": gamma,
            "source": "default" if targets is None else "value_targets",
            "columns": {"return_to_go": "transitions", "return_complete": "transitions"},
        },
        "store": {
            **store_section,
            "consolidator": state.get("consolidator_config"),
            "consolidator_scalars": None if consolidator is None else {
                k: v for k, v in consolidator.items() if not isinstance(v, torch.Tensor)
            },
            "sampler_max_priority": None if sampler is None else float(sampler["max_priority"]),
        },
    }
    row_aligned = {"keys": key_row_alignment(keys)}
    bar.update(1)
    bar.set_postfix_str("write and sync")
    with bar:
        out = hippo_format.write_memory(
            path, manifest=manifest, transitions=transitions, episodes=episodes,
            tensors={"keys": keys, "encoder": encoder, "state": state_tensors},
            row_aligned=row_aligned, compression=compression, producer=producer(),
        )
        bar.update(1)
    logger.info("saved %d transitions in %d units to %s", len(buffer), buffer.num_episodes, out)
    return out


def load_buffer(
    cls: type[Any], path: str | os.PathLike[str], *, verify: str = "full", device: str | torch.device = "cpu",
    progress: bool | None = None,
) -> Any:
    """Load a buffer saved by :func:`save_buffer`.

    Args:
        cls: The buffer class to build (``HippocampalReplayBuffer``; passed in so that this module
            never imports the buffer, which imports it).
        path: Memory directory.
        verify: ``"full"`` (default: every file's digest is checked before anything is used,
            XXH3-128 where recorded), ``"sha256"`` (SHA-256 of every file), ``"size"`` or ``"none"``.
        device: Device of the batches the loaded buffer returns.
        progress: Show a bar over the stages (open and verify, read tables, restore); ``None``
            (default) shows it for memories of at least :data:`LARGE_MEMORY` transitions.

    Raises:
        hippo_format.FormatError: The directory is not a valid memory (the subclass says what is
            wrong: version, missing file, checksum, truncation, schema, counts, manifest, path).
        hippogym.errors.ValidationError: A manifest value has the wrong type or range (the
            message names the field).

    Returns:
        The buffer; sampling and consolidation resume exactly where they were saved.
    """
    from hippogym.consolidation.consolidator import Consolidator
    from hippogym.encoders.dual import DualEncoder
    from hippogym.memory.store import MemoryStore

    bar = progress_bar(total=3, desc=f"load {Path(path).name}", unit="stage", enabled=bool(progress))
    bar.set_postfix_str("open and verify")
    with hippo_format.open_memory(path, verify=verify) as reader:
        if progress is None and reader.num_transitions >= LARGE_MEMORY:
            bar = progress_bar(total=3, desc=f"load {Path(path).name}", unit="stage", enabled=True)
        bar.update(1)
        bar.set_postfix_str("read tables")
        manifest = reader.manifest
        store_section = manifest_section(manifest, "store")
        sampling = manifest_section(manifest, "sampling")
        encoder_config = manifest_section(manifest, "encoder")
        config = store_config(store_section.get("config"))
        check_store_allocation(reader, config)
        sampling_kwargs = read_sampling_kwargs(sampling)
        try:
            encoder = DualEncoder.from_config(encoder_config)
            memory = MemoryStore.from_config(config)
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"Expected valid `encoder` and `store.config` sections in the manifest: {exc}") from exc
        encoder_state = {name: torch.from_numpy(np.array(a)) for name, a in reader.read_tensors("encoder").items()}
        check_state_keys(encoder.state_dict(), encoder_state, "encoder.safetensors")
        consolidator = None
        if store_section.get("consolidator"):
            consolidator = Consolidator.from_config(encoder, store_section["consolidator"])
        buffer = cls.from_config(
            sampling_kwargs, memory=memory, encoder=encoder, consolidator=consolidator, device=device,
        )
        state_tensors = {name: torch.from_numpy(np.array(a)) for name, a in reader.read_tensors("state").items()}
        mem_state = memory_state(reader, store_section)
        check_rows(mem_state, memory.capacity)
        bar.update(1)
        bar.set_postfix_str("restore")
        full: dict[str, Any] = {
            "config": sampling, "memory": mem_state, "encoder": encoder_state, "encoder_config": encoder_config,
            "generator": state_tensors["generator.buffer"], "consolidator": None, "sampler": None,
        }
        if consolidator is not None:
            cons = dict(store_section.get("consolidator_scalars") or {})
            cons["generator"] = state_tensors["generator.consolidator"]
            prefix = "consolidator."
            cons.update({k[len(prefix):]: v for k, v in state_tensors.items() if k.startswith(prefix)})
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
        bar.update(1)
        bar.close()
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


def load_saved_memory(
    cls: type[Any], path: str | os.PathLike[str], *, verify: str = "full", device: str | torch.device = "cpu"
) -> Any:
    """Load a buffer from a memory directory, or wrap a store-only memory in a fresh buffer.

    A directory written by :func:`save_buffer` loads exactly as :func:`load_buffer` does. One
    written by :meth:`~hippogym.MemoryStore.save` (no ``encoder`` section) becomes a buffer around
    the loaded store with a fresh encoder built from its layout; its ``provenance`` is kept.

    Args:
        cls: The buffer class to build.
        path: Memory directory.
        verify: ``"full"``, ``"sha256"``, ``"size"`` or ``"none"`` (see :func:`load_buffer`).
        device: Device of the batches the buffer returns.

    Returns:
        The buffer.
    """
    from hippogym.hubio.common import read_manifest
    from hippogym.memory.persist import load_store
    from hippogym.memory.store import MemoryStore

    manifest = read_manifest(Path(path)) or {}
    if manifest.get("encoder") is None and isinstance(manifest.get("store"), dict):
        store = load_store(MemoryStore, path, verify=verify)
        logger.info("%s holds a memory without encoder; a fresh encoder is built from its layout", path)
        buffer = cls(memory=store, device=device)
        buffer.provenance = dict(manifest.get("provenance") or {})
        return buffer
    return load_buffer(cls, path, verify=verify, device=device)
