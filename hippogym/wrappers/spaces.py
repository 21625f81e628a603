"""Convert values of Gymnasium spaces to the array form the memory stores.

One rule per space kind, used by every recorder so that stored observations and actions look the
same whichever wrapper recorded them:

============================  =========================================================
Space                         Stored form (per step)
============================  =========================================================
``Box``                       array of the space's shape and dtype (images stay uint8)
``Discrete``                  ``int64`` scalar (shape ``()``); the raw value, start included
``MultiDiscrete``             ``int64`` array of the space's shape
``MultiBinary``               array of the space's shape and dtype (``int8``)
``Dict``                      flat dict of the above, nested keys joined as ``"a.b"``
============================  =========================================================

Other spaces (``Tuple``, ``Text``, ``Graph``, ``Sequence``, ``OneOf``) are rejected with a
:class:`~hippogym.errors.ValidationError`; flatten them first, e.g. with
``gymnasium.wrappers.FlattenObservation``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from hippogym.encoders.features import FieldSpec
from hippogym.errors import ValidationError, describe

__all__ = ["SpaceConverter", "StoredArray"]

#: A converted value: one array, or a flat dict of arrays (Dict spaces).
StoredArray = np.ndarray | dict[str, np.ndarray]


@dataclass(frozen=True)
class _Leaf:
    """One stored array: where it sits in the space, its per-step shape and dtype, and bounds."""

    path: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: np.dtype
    low: np.ndarray
    high: np.ndarray

    @property
    def name(self) -> str:
        return ".".join(self.path)

    @property
    def field_spec(self) -> FieldSpec:
        """The memory's :class:`FieldSpec` for this array (decides image scaling)."""
        return FieldSpec(self.name or "obs", self.shape, torch.from_numpy(np.zeros(0, dtype=self.dtype)).dtype)


def _leaf(space: spaces.Space, path: tuple[str, ...], field: str) -> _Leaf:
    if isinstance(space, spaces.Box):
        return _Leaf(
            path,
            tuple(space.shape),
            np.dtype(space.dtype),
            np.asarray(space.low, np.float64),
            np.asarray(space.high, np.float64),
        )
    if isinstance(space, spaces.Discrete):
        start, n = int(space.start), int(space.n)
        return _Leaf(path, (), np.dtype(np.int64), np.asarray(float(start)), np.asarray(float(start + n - 1)))
    if isinstance(space, spaces.MultiDiscrete):
        start = np.asarray(space.start, np.float64)
        return _Leaf(
            path, tuple(space.shape), np.dtype(np.int64), start, start + np.asarray(space.nvec, np.float64) - 1
        )
    if isinstance(space, spaces.MultiBinary):
        shape = tuple(space.shape)
        return _Leaf(path, shape, np.dtype(space.dtype), np.zeros(shape), np.ones(shape))
    where = f"{field}[{'.'.join(path)!r}]" if path else field
    raise ValidationError(
        where,
        "a Box, Discrete, MultiDiscrete, MultiBinary or Dict space",
        f"a {type(space).__name__} space",
        "Flatten it first, e.g. with gymnasium.wrappers.FlattenObservation.",
    )


def _collect(space: spaces.Space, path: tuple[str, ...], field: str, out: list[_Leaf]) -> None:
    if isinstance(space, spaces.Dict):
        if len(space.spaces) == 0:
            raise ValidationError(field, "a Dict space with at least one key", "an empty Dict space")
        for key, sub in space.spaces.items():
            if not isinstance(key, str) or not key or "." in key or "/" in key:
                raise ValidationError(f"{field} keys", "non-empty strings without '.' or '/'", repr(key))
            _collect(sub, (*path, key), field, out)
        return
    out.append(_leaf(space, path, field))


class SpaceConverter:
    """Converts single values or batches of one Gymnasium space to the stored array form.

    Args:
        space: The space (see the module docstring for the supported kinds).
        field: Name used in error messages, e.g. ``"observation_space"``.

    Raises:
        ValidationError: The space (or a sub-space of a Dict) is not supported.

    Example:
        >>> from gymnasium import spaces
        >>> conv = SpaceConverter(spaces.Dict({"pos": spaces.Discrete(5), "img": spaces.Box(0, 255, (2, 2), "uint8")}))
        >>> sorted(conv.single({"pos": 3, "img": [[0, 1], [2, 3]]}).items())[1][1].dtype
        dtype('int64')
    """

    def __init__(self, space: spaces.Space, field: str = "space") -> None:
        if not isinstance(space, spaces.Space):
            raise ValidationError(field, "a gymnasium.spaces.Space", describe(space))
        self.space = space
        self.field = field
        leaves: list[_Leaf] = []
        _collect(space, (), field, leaves)
        self.is_dict = isinstance(space, spaces.Dict)
        # Stored dicts use sorted keys, as Episode does.
        self.leaves: tuple[_Leaf, ...] = tuple(sorted(leaves, key=lambda leaf: leaf.name))
        # The one leaf of a non-Dict space: single() copies an array that already has its exact
        # shape and dtype without the general conversion (the per-step path of the recorders).
        self.plain: _Leaf | None = None if self.is_dict else self.leaves[0]

    @property
    def keys(self) -> tuple[str, ...]:
        """Flat keys of a Dict space (sorted), ``()`` otherwise."""
        return tuple(leaf.name for leaf in self.leaves) if self.is_dict else ()

    @property
    def field_specs(self) -> tuple[FieldSpec, ...]:
        """The memory layout fields (name, shape, torch dtype) this space is stored as."""
        return tuple(leaf.field_spec for leaf in self.leaves)

    def single(self, value: Any) -> StoredArray:
        """Convert one value of the space (a fresh copy, safe to keep).

        Raises:
            ValidationError: The value does not have the space's structure or shape.
        """
        plain = self.plain
        if (
            plain is not None
            and type(value) is np.ndarray
            and value.shape == plain.shape
            and (value.dtype is plain.dtype or value.dtype == plain.dtype)
        ):
            return value.copy()
        return self._convert(value, None)

    def batch(self, value: Any, n: int) -> StoredArray:
        """Convert a batch of ``n`` values (a vector env's batched form, leading axis ``n``).

        Raises:
            ValidationError: The batch does not have the space's structure or shape.
        """
        plain = self.plain
        if (
            plain is not None
            and type(value) is np.ndarray
            and (value.dtype is plain.dtype or value.dtype == plain.dtype)
            and value.shape == (n, *plain.shape)
        ):
            return value.copy()
        return self._convert(value, int(n))

    def _convert(self, value: Any, n: int | None) -> StoredArray:
        if not self.is_dict:
            return self._array(self.leaves[0], value, n)
        if not isinstance(value, Mapping):
            raise ValidationError(self.field.replace("_space", ""), "a dict (Dict space)", describe(value))
        return {leaf.name: self._array(leaf, _lookup(value, leaf.path, self.field), n) for leaf in self.leaves}

    def _array(self, leaf: _Leaf, value: Any, n: int | None) -> np.ndarray:
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        try:
            arr = np.array(value, dtype=leaf.dtype, copy=True)
        except (TypeError, ValueError) as exc:
            raise ValidationError(
                self._name(leaf), f"a numeric value castable to {leaf.dtype}", describe(value)
            ) from exc
        shape = leaf.shape if n is None else (n, *leaf.shape)
        if arr.shape != shape:
            if arr.size != int(np.prod(shape)):
                raise ValidationError(self._name(leaf), f"shape {shape}", describe(arr))
            arr = arr.reshape(shape)
        return arr

    def _name(self, leaf: _Leaf) -> str:
        return self.field.replace("_space", "") + (f"[{leaf.name!r}]" if leaf.path else "")

    def flat_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of the flattened float features the memory's encoder reads.

        Leaves are concatenated in stored (sorted) order and flattened; image leaves (``uint8``
        with two or more axes) are scaled by ``1/255`` like
        :meth:`~hippogym.encoders.features.ObservationLayout.flatten`.

        Returns:
            ``(low, high)``, float64 vectors of the flattened size.
        """
        lows, highs = [], []
        for leaf in self.leaves:
            low = np.broadcast_to(leaf.low, leaf.shape).reshape(-1).astype(np.float64)
            high = np.broadcast_to(leaf.high, leaf.shape).reshape(-1).astype(np.float64)
            if leaf.field_spec.is_image:
                low, high = low / 255.0, high / 255.0
            lows.append(low)
            highs.append(high)
        return np.concatenate(lows), np.concatenate(highs)

    @property
    def flat_dim(self) -> int:
        """Size of the flattened float features."""
        return int(sum(int(np.prod(leaf.shape)) for leaf in self.leaves))


def _lookup(value: Mapping[str, Any], path: tuple[str, ...], field: str) -> Any:
    item: Any = value
    for depth, key in enumerate(path):
        if not isinstance(item, Mapping) or key not in item:
            where = ".".join(path[:depth]) or "the observation"
            raise ValidationError(field.replace("_space", ""), f"a dict with key {key!r} in {where}", describe(item))
        item = item[key]
    return item
