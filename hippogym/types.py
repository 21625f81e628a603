"""Shared types of the core: observations, their layout, and what a featurizer offers the store.

These live below ``episode`` and the layer-3 packages (``segmentation``, ``encoders``, ``memory``)
so that siblings can share them without importing each other. The old homes re-export them
(:data:`hippogym.episode.Observation`, :class:`hippogym.encoders.features.ObservationLayout`, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from hippogym.errors import ValidationError, describe

__all__ = [
    "DEFAULT_EMBED_DIM", "DEFAULT_KEY_DTYPE", "FieldSpec", "Observation", "ObservationLayout", "ObservationWindow",
    "StepFeaturizer",
]

#: Key width every default encoder and store uses (the RL evidence runs with it too).
DEFAULT_EMBED_DIM = 64

#: How a default store keeps keys: 16-bit floats (128 B per 64-d key), read as float32 unit vectors
#: (see :mod:`hippogym.memory.rows`).
DEFAULT_KEY_DTYPE = "float16"

#: An observation batch: one tensor, or one tensor per key of a Dict observation space.
Observation = Tensor | dict[str, Tensor]

#: Name used for the single field of a non-dict observation.
PLAIN = "obs"


@dataclass(frozen=True)
class ObservationWindow:
    """A query made of the agent's own recent observations, oldest first (history-keyed recall).

    With keys over a context window (``FeatureConfig(context=n)``), a key sees the last ``n``
    observations of its unit, so a query must carry the agent's last ``n`` observations too: wrap
    them in this class and pass it wherever a query is accepted (``buffer.retrieve``,
    ``buffer.sample(query_state=...)``); a list of windows is a batch of queries. The featurizer
    builds the query with the keys' own function: the last ``n`` steps are used, and a window
    shorter than ``n`` (the first steps of an episode) repeats its oldest observation, as keys
    repeat the first step of their unit.

    Attributes:
        observations: A sequence of single observations (arrays, tensors, or dicts for Dict
            spaces), or one array/tensor ``[steps, *obs_shape]`` (a dict of them for Dict spaces).

    Example:
        >>> import numpy as np
        >>> window = ObservationWindow([np.zeros(3), np.ones(3)])
        >>> len(window)
        2
    """

    observations: Any

    def __len__(self) -> int:
        obs = self.observations
        if isinstance(obs, Mapping):
            return len(next(iter(obs.values())))
        return len(obs)


@dataclass(frozen=True)
class FieldSpec:
    """Shape and dtype of one observation field (per step, without the time axis)."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype

    @property
    def flat_dim(self) -> int:
        """Number of scalars per step."""
        n = 1
        for s in self.shape:
            n *= int(s)
        return n

    @property
    def is_image(self) -> bool:
        """``uint8`` fields with at least two axes are treated as images (scaled by 1/255)."""
        return self.dtype == torch.uint8 and len(self.shape) >= 2

    def to_json(self) -> dict[str, Any]:
        """JSON form for manifests."""
        return {"name": self.name, "shape": list(self.shape), "dtype": str(self.dtype).replace("torch.", "")}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FieldSpec:
        """Inverse of :meth:`to_json`."""
        return cls(str(data["name"]), tuple(int(s) for s in data["shape"]), getattr(torch, str(data["dtype"])))


@dataclass(frozen=True)
class ObservationLayout:
    """The structure of observations: one field, or several (Dict spaces), in sorted key order."""

    fields: tuple[FieldSpec, ...]
    is_dict: bool

    @classmethod
    def infer(cls, obs: Observation) -> ObservationLayout:
        """Read the layout off a batch of observations ``[T, ...]``."""
        if isinstance(obs, dict):
            return cls(tuple(FieldSpec(k, tuple(v.shape[1:]), v.dtype) for k, v in obs.items()), True)
        return cls((FieldSpec(PLAIN, tuple(obs.shape[1:]), obs.dtype),), False)

    @property
    def flat_dim(self) -> int:
        """Scalars per flattened observation."""
        return sum(f.flat_dim for f in self.fields)

    def as_dict(self, obs: Observation) -> dict[str, Tensor]:
        """Observation as a dict keyed by field name."""
        return obs if isinstance(obs, dict) else {PLAIN: obs}

    def check(self, obs: Observation, name: str, batch_dims: int = 1) -> None:
        """Raise :class:`ValidationError` unless ``obs`` matches this layout."""
        if isinstance(obs, dict) != self.is_dict:
            raise ValidationError(name, "a dict of arrays" if self.is_dict else "a single array", describe(obs))
        data = self.as_dict(obs)
        if self.is_dict and sorted(data) != [f.name for f in self.fields]:
            raise ValidationError(name, f"keys {[f.name for f in self.fields]}", f"keys {sorted(data)}")
        for f in self.fields:
            t = data[f.name]
            label = f"{name}[{f.name!r}]" if self.is_dict else name
            if tuple(t.shape[batch_dims:]) != f.shape or t.dtype != f.dtype:
                raise ValidationError(
                    label, f"per-step shape {f.shape} and dtype {str(f.dtype)[6:]} (as stored in memory)", describe(t)
                )

    def flatten(self, obs: Observation) -> Tensor:
        """Flatten ``[B, ...]`` observations to ``[B, flat_dim]`` float32 (images scaled to [0, 1])."""
        data = self.as_dict(obs)
        parts = []
        for f in self.fields:
            t = data[f.name]
            t = t.reshape(t.shape[0], -1)
            t = t.to(torch.float32)
            if f.is_image:
                t = t * (1.0 / 255.0)
            parts.append(t)
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def to_json(self) -> dict[str, Any]:
        """JSON form for manifests."""
        return {"is_dict": self.is_dict, "fields": [f.to_json() for f in self.fields]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ObservationLayout:
        """Inverse of :meth:`to_json`."""
        return cls(tuple(FieldSpec.from_json(f) for f in data["fields"]), bool(data["is_dict"]))


class StepFeaturizer(Protocol):
    """What the store needs of a featurizer to build encoder inputs for its rows.

    :class:`~hippogym.encoders.features.TransitionFeaturizer` is the implementation.

    Attributes:
        context: Consecutive steps concatenated into one input (``1`` = none).
        dim: Width of one input (``step_dim * context``).
    """

    context: int
    dim: int

    def step_features(self, obs: Observation, actions: Tensor | None, rewards: Tensor | None) -> Tensor:
        """Per-step features ``[B, step_dim]`` (no context)."""
        ...
