"""Checks and conversions behind :class:`~hippogym.episode.Episode`: tensors, observations, flags.

Every function takes the field's name and raises :class:`~hippogym.errors.ValidationError` naming
it, what was expected and what arrived. Observations are a tensor or a dict of tensors
(:data:`~hippogym.types.Observation`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hippogym.errors import ValidationError, describe
from hippogym.types import Observation

#: numpy dtype kinds an episode field may have (bool, signed, unsigned, float).
NUMERIC_KINDS = ("b", "i", "u", "f")


def as_tensor(value: Any, name: str) -> Tensor:
    """A CPU tensor of a numeric array-like (detached); ``name`` is the field in errors."""
    if isinstance(value, Tensor):
        return value.detach().cpu()
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in NUMERIC_KINDS:
            raise ValidationError(name, "a numeric array", describe(value))
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, (list, tuple, int, float, bool, np.number, np.bool_)):
        try:
            return torch.as_tensor(np.asarray(value))
        except (TypeError, ValueError) as exc:
            raise ValidationError(name, "a numeric array", describe(value)) from exc
    raise ValidationError(name, "a torch.Tensor or numpy array", describe(value))


def check_finite(tensor: Tensor, name: str) -> None:
    """Refuse NaN/inf in a float tensor, naming the field and the first bad index."""
    if tensor.is_floating_point() and tensor.numel() and not bool(torch.isfinite(tensor).all()):
        bad = (~torch.isfinite(tensor)).nonzero()[0].tolist()
        raise ValidationError(
            name,
            "finite (no NaN or inf)",
            f"a non-finite value at index {tuple(bad)}",
            "Check the environment or the preprocessing that produced it.",
        )


def finite_np(arr: np.ndarray, name: str) -> np.ndarray:
    """``check_finite`` for a numpy array (the same error); returns ``arr``."""
    if arr.dtype.kind == "f" and arr.size and not np.isfinite(arr).all():
        check_finite(torch.from_numpy(arr), name)
    return arr


def as_observation(value: Any, name: str) -> Observation:
    """A tensor, or a dict of tensors for a Dict observation (sorted keys, none empty)."""
    if isinstance(value, Mapping):
        if not value:
            raise ValidationError(name, "a non-empty dict of arrays", "an empty dict")
        out = {}
        for key in sorted(value):
            if not isinstance(key, str) or not key or "/" in key:
                raise ValidationError(f"{name} keys", "non-empty strings without '/'", repr(key))
            out[key] = as_tensor(value[key], f"{name}[{key!r}]")
        return out
    return as_tensor(value, name)


def map_observation(obs: Observation, fn) -> Observation:
    """``fn`` applied to the tensor, or to each tensor of a dict observation."""
    if isinstance(obs, dict):
        return {k: fn(v) for k, v in obs.items()}
    return fn(obs)


def observation_items(obs: Observation, name: str):
    """``(field name, tensor)`` pairs of an observation, e.g. ``states['pos']`` for a dict."""
    if isinstance(obs, dict):
        return [(f"{name}[{k!r}]", v) for k, v in obs.items()]
    return [(name, obs)]


def one_of(name: str, value: Any, alias: str, alias_value: Any) -> tuple[Any, str]:
    """Resolve a keyword and its alias: the value given and the name it was given under."""
    if value is not None and alias_value is not None:
        raise ValidationError(
            alias, f"absent when `{name}` is given", describe(alias_value),
            f"`{alias}` is an alias of `{name}`; pass one or the other.",
        )
    return (alias_value, alias) if value is None else (value, name)


def flag_tensor(value: Any, name: str, length: int) -> Tensor:
    """A ``[length]`` bool tensor of per-step flags (``[length, 1]`` is accepted)."""
    tensor = as_tensor(value, name)
    if tensor.dim() == 2 and tensor.shape[1] == 1:
        tensor = tensor[:, 0]
    if tuple(tensor.shape) != (length,):
        raise ValidationError(name, f"shape ({length},) (one flag per step)", describe(tensor))
    if tensor.dtype != torch.bool:
        if tensor.is_floating_point() and not bool(((tensor == 0) | (tensor == 1)).all()):
            raise ValidationError(name, "boolean flags (0/1)", describe(tensor))
        tensor = tensor != 0
    return tensor


def stack_info_rows(rows: Any, length: int) -> dict[str, Any]:
    """The seed's ``infos=[{...}, ...]`` (one dict per step) as a dict of ``[T, ...]`` arrays."""
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence):
        raise ValidationError("infos", "a dict of [T, ...] arrays or a list of T per-step dicts", describe(rows))
    if len(rows) != length:
        raise ValidationError("infos", f"{length} per-step dicts (one per step)", f"{len(rows)}")
    columns: dict[str, list[tuple[int, np.ndarray]]] = {}
    for t, row in enumerate(rows):
        if row is None:
            continue
        if not isinstance(row, Mapping):
            raise ValidationError(f"infos[{t}]", "a dict (or None)", describe(row))
        for key, value in row.items():
            array = as_tensor(value, f"infos[{t}][{key!r}]").numpy()
            columns.setdefault(str(key), []).append((t, array))
    out = {}
    for key, values in columns.items():
        ref = values[0][1]
        table = np.zeros((length, *ref.shape), dtype=np.result_type(*(v.dtype for _, v in values)))
        for t, value in values:
            if value.shape != ref.shape:
                expected = f"shape {ref.shape} like step {values[0][0]}"
                raise ValidationError(f"infos[{t}][{key!r}]", expected, describe(value))
            table[t] = value
        out[key] = table
    return out


def target_tensor(value: Any, name: str, length: int) -> Tensor | None:
    """A per-step target (``returns``/``advantages``): ``None`` or finite float32 ``[T]``."""
    if value is None:
        return None
    tensor = as_tensor(value, name)
    if tensor.dim() == 2 and tensor.shape[1] == 1:
        tensor = tensor[:, 0]
    if tuple(tensor.shape) != (length,):
        raise ValidationError(name, f"shape ({length},) (one value per step)", describe(tensor))
    tensor = tensor.to(torch.float32)
    check_finite(tensor, name)
    return tensor


def observation_to_numpy(obs: Observation) -> np.ndarray | dict[str, np.ndarray]:
    """A numpy copy of an observation (a dict of copies for a dict observation)."""
    if isinstance(obs, dict):
        return {k: v.numpy().copy() for k, v in obs.items()}
    return obs.numpy().copy()


def map_observation_pair(a: Observation, b: Observation, fn) -> Observation:
    """``fn(a, b)``, key by key for dict observations."""
    if isinstance(a, dict):
        return {k: fn(a[k], b[k]) for k in a}
    return fn(a, b)


def as_bootstrap_value(value: Any) -> np.ndarray:
    """A finite bootstrap value as a ``[1]`` float64 array."""
    numeric = not isinstance(value, bool) and isinstance(value, (int, float, np.number, Tensor))
    if not numeric or not math.isfinite(float(value)):
        raise ValidationError("bootstrap_value", "a finite number", describe(value))
    return np.asarray([float(value)], dtype=np.float64)
