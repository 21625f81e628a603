"""JSON form of gymnasium spaces (no pickle).

Supported: ``Box``, ``Discrete``, ``MultiDiscrete``, ``MultiBinary``, ``Dict``
and ``Tuple`` (nested freely). Every form is a JSON object with a ``"type"``
member:

* ``{"type": "Box", "dtype": "float32", "shape": [2], "low": -1.0, "high": [1.0, "inf"]}``:
  ``low``/``high`` are a scalar when uniform, else nested lists of the space's
  shape; infinities and NaN are the strings ``"inf"``, ``"-inf"``, ``"nan"``.
* ``{"type": "Discrete", "n": 4, "start": 0}``
* ``{"type": "MultiDiscrete", "nvec": [...], "start": [...], "dtype": "int64"}``
* ``{"type": "MultiBinary", "n": 8}`` (``n`` may be a list for a shaped space)
* ``{"type": "Dict", "spaces": {"key": {...}, ...}}`` (member order is kept)
* ``{"type": "Tuple", "spaces": [{...}, ...]}``

gymnasium is imported when these functions run, not when this module is imported.
Seeds and random state are not part of the JSON form.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import numpy as np

from hippo_format._schema import ALLOWED_COLUMN_DTYPES
from hippo_format.errors import FormatError, LimitExceededError, SpaceError, UnsupportedSpaceError
from hippo_format.limits import DEFAULT_LIMITS, LoadLimits

__all__ = ["space_from_json", "space_to_json"]

# Space dtypes are the numeric dtypes a column may hold.
_DTYPES = {dtype.name: dtype for dtype in ALLOWED_COLUMN_DTYPES}
_SPECIAL = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def _scalar_to_json(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _nested_to_json(array: np.ndarray) -> list[Any]:
    if array.ndim > 1:
        return [_nested_to_json(a) for a in array]
    return [_scalar_to_json(x) for x in array]


def _array_to_json(array: np.ndarray) -> Any:
    flat = array.reshape(-1)
    uniform = flat.size > 0 and np.array_equal(flat, np.full_like(flat, flat[0]), equal_nan=flat.dtype.kind == "f")
    if uniform:
        return _scalar_to_json(flat[0])
    return _nested_to_json(array)


def _dtype(value: Any, where: str) -> np.dtype[Any]:
    if not isinstance(value, str) or value not in _DTYPES:
        raise SpaceError(f"{where}.dtype: expected one of {sorted(_DTYPES)}, got {value!r:.80}", field=f"{where}.dtype")
    return _DTYPES[value]


def _decode_scalar(value: Any, where: str) -> Any:
    if isinstance(value, str):
        if value not in _SPECIAL:
            raise SpaceError(f"{where}: expected a number or one of {sorted(_SPECIAL)}, got {value!r}")
        return _SPECIAL[value]
    if isinstance(value, (bool, int, float)):
        return value
    raise SpaceError(f"{where}: expected a number, got {type(value).__name__}")


def _decode_nested(value: Any, where: str) -> Any:
    if isinstance(value, list):
        return [_decode_nested(v, where) for v in value]
    return _decode_scalar(value, where)


def _array_from_json(value: Any, shape: tuple[int, ...], dtype: np.dtype[Any], where: str) -> np.ndarray:
    if isinstance(value, list):
        try:
            array = np.array(_decode_nested(value, where), dtype=dtype)
        except (ValueError, OverflowError, TypeError) as exc:
            raise SpaceError(f"{where}: cannot build a {dtype.name} array ({exc})") from None
        if array.shape != shape:
            raise SpaceError(f"{where}: nested list has shape {list(array.shape)}, expected {list(shape)}")
        return array
    try:
        return np.full(shape, _decode_scalar(value, where), dtype=dtype)
    except (ValueError, OverflowError, TypeError) as exc:
        raise SpaceError(f"{where}: cannot build a {dtype.name} array ({exc})") from None


def _int_list(value: Any, where: str) -> Any:
    if isinstance(value, list):
        return [_int_list(v, where) for v in value]
    if not isinstance(value, int) or isinstance(value, bool):
        raise SpaceError(f"{where}: expected integers, got {value!r}")
    return value


def _shape(value: Any, where: str, limits: LoadLimits = DEFAULT_LIMITS) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value):
        raise SpaceError(
            f"{where}.shape: expected a list of non-negative integers, got {value!r:.120}", field=f"{where}.shape"
        )
    if len(value) > limits.max_dims or math.prod(value) > limits.max_space_elements:
        raise LimitExceededError(
            f"{where}.shape: {value!r:.120} has {math.prod(value):,} elements in {len(value)} dimensions, over the "
            f"limits ({limits.max_space_elements:,} elements, {limits.max_dims} dimensions); a space that large "
            "cannot be built safely — raise LoadLimits.max_space_elements if you trust this memory",
            field=f"{where}.shape",
        )
    return tuple(value)


def space_to_json(space: Any) -> dict[str, Any]:
    """Describe a gymnasium space as JSON-compatible data.

    Args:
        space: A ``gymnasium.spaces`` instance.

    Returns:
        A dict of plain JSON types (see the module docstring for the forms).

    Raises:
        UnsupportedSpaceError: For any other space type (``Text``, ``Graph``, ``Sequence``, custom ...).
        SpaceError: For a ``Dict`` space with non-string keys.
    """
    from gymnasium import spaces as S

    if isinstance(space, S.Box):
        return {
            "type": "Box",
            "dtype": np.dtype(space.dtype).name,
            "shape": [int(s) for s in space.shape],
            "low": _array_to_json(np.asarray(space.low)),
            "high": _array_to_json(np.asarray(space.high)),
        }
    if isinstance(space, S.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, S.MultiDiscrete):
        return {
            "type": "MultiDiscrete",
            "nvec": np.asarray(space.nvec).tolist(),
            "start": np.asarray(space.start).tolist(),
            "dtype": np.dtype(space.dtype).name,
        }
    if isinstance(space, S.MultiBinary):
        n: Any = space.n
        return {"type": "MultiBinary", "n": int(n) if np.ndim(n) == 0 else [int(x) for x in n]}
    if isinstance(space, S.Dict):
        members = {}
        for key, sub in space.spaces.items():
            if not isinstance(key, str):
                raise SpaceError(f"Dict space key {key!r}: only string keys can be stored as JSON")
            members[key] = space_to_json(sub)
        return {"type": "Dict", "spaces": members}
    if isinstance(space, S.Tuple):
        return {"type": "Tuple", "spaces": [space_to_json(sub) for sub in space.spaces]}
    raise UnsupportedSpaceError(
        f"space type {type(space).__name__} ({type(space).__module__}) has no JSON form; supported: "
        "Box, Discrete, MultiDiscrete, MultiBinary, Dict, Tuple — describe it in another manifest "
        "section (e.g. 'store') instead"
    )


def _from_json(data: Any, where: str, limits: LoadLimits = DEFAULT_LIMITS, depth: int = 1) -> Any:
    from gymnasium import spaces as S

    if not isinstance(data, dict):
        raise SpaceError(
            f"{where}: expected a JSON object with a 'type' member, got {type(data).__name__}", field=where
        )
    if depth > limits.max_json_depth:
        raise LimitExceededError(f"{where}: spaces nested more than {limits.max_json_depth} levels deep", field=where)
    kind = data.get("type")
    try:
        if kind == "Box":
            dtype = _dtype(data.get("dtype"), where)
            shape = _shape(data.get("shape"), where, limits)
            low = _array_from_json(data.get("low"), shape, dtype, f"{where}.low")
            high = _array_from_json(data.get("high"), shape, dtype, f"{where}.high")
            return S.Box(low=low, high=high, shape=shape, dtype=dtype)
        if kind == "Discrete":
            n, start = data.get("n"), data.get("start", 0)
            for key, value in (("n", n), ("start", start)):
                if not isinstance(value, int) or isinstance(value, bool):
                    raise SpaceError(f"{where}.{key}: expected an integer, got {value!r}")
            return S.Discrete(int(n), start=int(start))  # type: ignore[arg-type]
        if kind == "MultiDiscrete":
            dtype = _dtype(data.get("dtype", "int64"), where)
            nvec = np.array(_int_list(data.get("nvec"), f"{where}.nvec"), dtype=dtype)
            start = data.get("start")
            start_arr = None if start is None else np.array(_int_list(start, f"{where}.start"), dtype=dtype)
            return S.MultiDiscrete(nvec, dtype=dtype, start=start_arr)
        if kind == "MultiBinary":
            n = data.get("n")
            if isinstance(n, list):
                n = list(_shape(n, where, limits))
            elif not isinstance(n, int) or isinstance(n, bool):
                raise SpaceError(f"{where}.n: expected an integer or a list of integers, got {n!r}")
            return S.MultiBinary(n)
        if kind == "Dict":
            members = data.get("spaces")
            if not isinstance(members, dict):
                raise SpaceError(f"{where}.spaces: expected an object of name -> space")
            return S.Dict(
                OrderedDict((k, _from_json(v, f"{where}.spaces[{k!r}]", limits, depth + 1)) for k, v in members.items())
            )
        if kind == "Tuple":
            members = data.get("spaces")
            if not isinstance(members, list):
                raise SpaceError(f"{where}.spaces: expected a list of spaces")
            return S.Tuple([_from_json(v, f"{where}.spaces[{i}]", limits, depth + 1) for i, v in enumerate(members)])
    except FormatError:
        raise
    except (ValueError, TypeError, AssertionError, OverflowError, KeyError, IndexError, RecursionError) as exc:
        raise SpaceError(f"{where}: gymnasium rejected the description ({exc})") from None
    raise UnsupportedSpaceError(
        f"{where}.type: {kind!r} is not a supported space type; expected one of "
        "Box, Discrete, MultiDiscrete, MultiBinary, Dict, Tuple"
    )


def space_from_json(data: dict[str, Any], *, limits: LoadLimits | None = None, where: str = "space") -> Any:
    """Rebuild a gymnasium space from :func:`space_to_json` output.

    Shapes are checked against ``limits`` (elements, dimensions, nesting) before
    any array is built, so a crafted description cannot exhaust memory.

    Args:
        data: The JSON description.
        limits: Resource limits (default :data:`hippo_format.limits.DEFAULT_LIMITS`).
        where: Name of the description in messages (e.g. ``"spaces.observation_space"``).

    Returns:
        The gymnasium space.

    Raises:
        UnsupportedSpaceError: For an unknown ``type``.
        SpaceError: For a malformed description.
        LimitExceededError: For a space over the limits.
    """
    return _from_json(data, where, limits or DEFAULT_LIMITS)
