"""Validation of the manifest values :mod:`hippogym.io` retypes when it loads a memory.

Every value the loader turns into a Python number, flag or name is checked here first, so a
crafted or damaged manifest fails with a :class:`~hippogym.errors.ValidationError` naming the
manifest field, what was expected and what arrived, instead of a bare ``TypeError`` deep in a
constructor. The store's preallocation is charged to the format reader's allocation budget
(:meth:`hippo_format.MemoryReader.check_allocation`) before any tensor exists.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

import hippo_format
from hippo_format.torch import torch_dtype_from_name
from hippogym.errors import ValidationError

__all__ = [
    "check_store_allocation", "manifest_bool", "manifest_float", "manifest_int", "manifest_name", "sampling_kwargs",
    "store_config",
]

_MISSING = object()
_EVICTIONS = frozenset({"fifo", "utility"})
_INDEXES = frozenset({"torch", "faiss"})


def _get(section: Mapping[str, Any], key: str, field: str, default: Any) -> Any:
    if not isinstance(section, Mapping):
        raise ValidationError(field.rsplit(".", 1)[0], "a JSON object", type(section).__name__)
    value = section.get(key, default)
    if value is _MISSING:
        raise ValidationError(field, "present in the manifest", "no such key")
    return value


def manifest_int(section: Mapping[str, Any], key: str, field: str, *, default: Any = _MISSING,
                 minimum: int = 0, allow_none: bool = False) -> int | None:
    """Read an integer field (not a bool, not a float) that is at least ``minimum``."""
    value = _get(section, key, field, default)
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"an integer >= {minimum}", f"{value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValidationError(field, f"an integer >= {minimum}", repr(value))
    return int(value)


def manifest_float(section: Mapping[str, Any], key: str, field: str, *, default: Any = _MISSING,
                   minimum: float | None = None, maximum: float | None = None, positive: bool = False) -> float:
    """Read a finite real field within ``[minimum, maximum]`` (strictly > 0 when ``positive``)."""
    value = _get(section, key, field, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(field, "a finite number", f"{value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise ValidationError(field, "a finite number", repr(value))
    if positive and value <= 0:
        raise ValidationError(field, "a number > 0", repr(value))
    if minimum is not None and value < minimum or maximum is not None and value > maximum:
        raise ValidationError(field, f"a number in [{minimum}, {maximum}]", repr(value))
    return value


def manifest_bool(section: Mapping[str, Any], key: str, field: str, *, default: Any = _MISSING) -> bool:
    """Read a JSON boolean field (``0``/``1``/strings are refused)."""
    value = _get(section, key, field, default)
    if not isinstance(value, bool):
        raise ValidationError(field, "true or false", f"{value!r} ({type(value).__name__})")
    return value


def manifest_name(section: Mapping[str, Any], key: str, field: str, choices: set[str] | frozenset[str], *,
                  default: Any = _MISSING) -> str:
    """Read a string field that must be one of ``choices``."""
    value = _get(section, key, field, default)
    if not isinstance(value, str) or value not in choices:
        raise ValidationError(field, f"one of {sorted(choices)}", repr(value))
    return value


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
    key_dtype = _get(config, "key_dtype", "store.config.key_dtype", _MISSING)
    if key_dtype not in ("float32", "float16"):
        raise ValidationError("store.config.key_dtype", "one of ['float16', 'float32']", repr(key_dtype))
    for section, names in (("eviction", _EVICTIONS), ("index", _INDEXES)):
        value = _get(config, section, f"store.config.{section}", _MISSING)
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


def _mixture_ratio(sampling: Mapping[str, Any]) -> Any:
    value = sampling.get("mixture_ratio", 0.5)
    if isinstance(value, Mapping):
        if value.get("type") == "callable":
            return 0.5
        return value
    return manifest_float(sampling, "mixture_ratio", "sampling.mixture_ratio", minimum=0.0, maximum=1.0)


def sampling_kwargs(sampling: Mapping[str, Any]) -> dict[str, Any]:
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
        "exact_sampling": manifest_bool(sampling, "exact_sampling", "sampling.exact_sampling", default=False),
    }
