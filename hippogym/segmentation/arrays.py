"""Input conversion and checks shared by the segmenter and its storage.

Everything a segmenter accepts (arrays, tensors, scalars, nested lists, nested dict observations,
per-row info dicts or a Gymnasium vector-env info dict) is turned into numpy arrays here, with a
:class:`~hippogym.errors.ValidationError` that names the field when a value does not fit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from hippogym.errors import ValidationError, describe

__all__ = [
    "FAST_REWARD_TYPES",
    "SUCCESS_KEY",
    "ArrayObservation",
    "InfoRows",
    "add_row_axis",
    "as_flags",
    "check_info_keys",
    "check_row",
    "check_stream",
    "flatten_observation",
    "leaves",
    "to_numpy",
    "vector_info_row",
]

#: Info key whose value at the last step of an environment episode sets ``Episode.success``.
SUCCESS_KEY = "is_success"

#: An observation as the segmenter stores it: one array, or a flat dict of arrays.
ArrayObservation = np.ndarray | dict[str, np.ndarray]

_NUMERIC = "biuf"


def to_numpy(value: Any, name: str) -> np.ndarray:
    """Convert a numeric value (array, tensor, scalar, nested list) to a numpy array.

    Args:
        value: The value.
        name: Field name used in the error message.

    Returns:
        A numpy array (a view where possible; callers that keep it must copy).

    Raises:
        ValidationError: The value is not numeric.
    """
    if isinstance(value, torch.Tensor):
        arr = value.detach().cpu().numpy()
    else:
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError) as exc:
            raise ValidationError(name, "a numeric array", describe(value)) from exc
    if arr.dtype.kind not in _NUMERIC:
        raise ValidationError(name, "a numeric array (bool, int or float)", describe(value))
    return arr


def flatten_observation(value: Any, name: str) -> ArrayObservation:
    """Convert an observation to an array, or a nested dict to a flat dict keyed ``"a.b"``.

    Args:
        value: An array-like, or a (possibly nested) mapping of array-likes.
        name: Field name used in error messages.

    Returns:
        A numpy array, or a flat ``dict[str, np.ndarray]`` with sorted keys.

    Raises:
        ValidationError: A leaf is not numeric, a key is not a non-empty string without ``"/"``,
            two keys collide once joined (``{"a": {"b": x}, "a.b": y}``), or a mapping is empty.
    """
    if not isinstance(value, Mapping):
        return to_numpy(value, name)
    out: dict[str, np.ndarray] = {}
    _flatten_into(value, "", out, name)
    return {k: out[k] for k in sorted(out)}


def _flatten_into(value: Mapping[Any, Any], prefix: str, out: dict[str, np.ndarray], name: str) -> None:
    if not value:
        raise ValidationError(name, "a non-empty dict of arrays", "an empty dict")
    for key, item in value.items():
        if not isinstance(key, str) or not key or "/" in key:
            raise ValidationError(f"{name} keys", "non-empty strings without '/'", repr(key))
        path = f"{prefix}{key}"
        if isinstance(item, Mapping):
            _flatten_into(item, path + ".", out, name)
        elif path in out:
            raise ValidationError(f"{name} keys", "unique once nested keys are joined with '.'", f"{path!r} twice")
        else:
            out[path] = to_numpy(item, f"{name}[{path!r}]")


class InfoRows(Sequence[Mapping[str, Any] | None]):
    """Per-row view of a batch of infos: a list of dicts, or a Gymnasium vector-env info dict.

    Args:
        infos: ``None``, ``B`` info dicts (or ``None``), or a vector-env info dict.
        size: ``B``, the number of rows.
    """

    def __init__(self, infos: Sequence[Mapping[str, Any] | None] | Mapping[str, Any] | None, size: int) -> None:
        self._infos = infos
        self._size = size

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, i: int) -> Mapping[str, Any] | None:  # type: ignore[override]
        infos = self._infos
        if infos is None:
            return None
        if isinstance(infos, Mapping):
            return vector_info_row(infos, int(i))
        return infos[int(i)]


def vector_info_row(infos: Mapping[str, Any], i: int) -> dict[str, Any]:
    """Row ``i`` of a Gymnasium vector-env info dict, without the keys its ``_key`` mask hides.

    Args:
        infos: ``{"key": array[B, ...], "_key": mask[B], ...}`` (nested dicts allowed).
        i: The row.

    Returns:
        A plain per-step info dict.
    """
    row: dict[str, Any] = {}
    for key, value in infos.items():
        if not isinstance(key, str) or key.startswith("_"):
            continue
        mask = infos.get(f"_{key}")
        if mask is not None and not bool(np.asarray(mask)[i]):
            continue
        if isinstance(value, Mapping):
            row[key] = vector_info_row(value, i)
        elif isinstance(value, np.ndarray) and value.ndim >= 1:
            row[key] = value[i]
        else:
            row[key] = value
    return row



#: Reward types the single-step fast path converts with ``float()``.
FAST_REWARD_TYPES = (float, int, np.floating, np.integer)


def check_row(target: np.ndarray, value: np.ndarray, label: str, shape: bool = True) -> None:
    """Raise unless one step's ``value`` fits the storage ``target`` ``[streams, capacity, ...]``."""
    if shape and value.shape != target.shape[2:]:
        raise ValidationError(label, f"per-step shape {target.shape[2:]} (as in earlier steps)", describe(value))
    if value.dtype != target.dtype and not np.can_cast(value.dtype, target.dtype, "same_kind"):
        raise ValidationError(
            label, f"dtype {target.dtype} (as in earlier steps) or one that casts to it", f"dtype {value.dtype}"
        )


def check_info_keys(info_keys: Sequence[str]) -> tuple[str, ...]:
    """Validate ``info_keys``: a sequence of non-empty strings; returns them deduplicated, in order."""
    if isinstance(info_keys, str) or not isinstance(info_keys, Sequence):
        raise ValidationError("info_keys", "a sequence of info keys (e.g. a tuple of str)", describe(info_keys))
    for key in info_keys:
        if not isinstance(key, str) or not key:
            raise ValidationError("info_keys", "non-empty strings", repr(key))
    return tuple(dict.fromkeys(info_keys))


def check_stream(stream: Any) -> int:
    """Validate a stream index (an int ``>= 0``) and return it as a Python int."""
    if isinstance(stream, bool) or not isinstance(stream, (int, np.integer)) or stream < 0:
        raise ValidationError("stream", "an int >= 0 (e.g. a vector-env index)", describe(stream))
    return int(stream)


def as_flags(value: Any, name: str, size: int) -> np.ndarray:
    """Convert ``size`` per-row flags to a boolean array ``[size]``."""
    arr = to_numpy(value, name).reshape(-1)
    if arr.shape[0] != size:
        raise ValidationError(name, f"{size} flags (one per row)", describe(arr))
    return arr.astype(bool, copy=False)


def add_row_axis(value: ArrayObservation) -> ArrayObservation:
    """One step's observation as a batch of one row (a leading axis of size 1 on every array)."""
    if isinstance(value, dict):
        return {k: v[None] for k, v in value.items()}
    return value[None]


def leaves(value: ArrayObservation, prefix: str) -> list[tuple[str, np.ndarray]]:
    """Storage names and arrays of an observation: ``obs`` or ``obs.<key>``."""
    if isinstance(value, dict):
        return [(f"{prefix}.{k}", v) for k, v in value.items()]
    return [(prefix, value)]
