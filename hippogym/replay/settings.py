"""Settings groups of :class:`~hippogym.replay.buffer.HippocampalReplayBuffer`.

The buffer takes one argument per part: ``sampler`` (the base draws), ``semantic`` (the semantic
draws) and ``features`` (the featurizer). Each accepts a small frozen dataclass defined here or a
plain dict of the same fields. :data:`LEGACY_KWARGS` maps the buffer's old flat keyword
arguments to the group that replaces each of them.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from hippogym.errors import ValidationError, describe

__all__ = [
    "LEGACY_KWARGS", "FeatureConfig", "PrioritizedSpec", "SamplerSpec", "SemanticConfig", "UniformSpec",
    "coerce_features", "coerce_sampler_spec", "coerce_semantic", "legacy_sampler_spec", "new_spelling", "pop_legacy",
]


@dataclass(frozen=True)
class SemanticConfig:
    """How semantic draws recall units.

    Attributes:
        top_k: Units retrieved per query.
        temperature: Softmax temperature over the retrieved scores.
        exact: Use exact MaxSim retrieval for semantic draws too (default: the index's fast path).
        rows: Which row of a retrieved unit a semantic draw replays: ``"uniform"`` (default), or
            ``"priority"``, proportionally to the prioritised sampler's priorities (``|TD error|``,
            or self-imitation priorities ``max(0, G - Q)``); needs prioritised base draws.
    """

    top_k: int = 5
    temperature: float = 0.1
    exact: bool = False
    rows: str = "uniform"

    def __post_init__(self) -> None:
        if not isinstance(self.top_k, int) or self.top_k < 1:
            raise ValidationError("top_k", "an int >= 1", describe(self.top_k))
        if not self.temperature > 0:
            raise ValidationError("retrieval_temperature", "a float > 0", repr(self.temperature))
        if self.rows not in ("uniform", "priority"):
            raise ValidationError("semantic.rows", "'uniform' or 'priority'", repr(self.rows))


@dataclass(frozen=True)
class FeatureConfig:
    """What the featurizer puts in encoder inputs (see :mod:`hippogym.encoders.features`).

    Attributes:
        num_actions: One-hot encode discrete actions of this many values (only with ``key_action``).
        key_action: Put actions in keys.
        context: Steps per encoder input (for sequence backbones).
        key_reward: Put rewards in keys (off by default: keys and queries see the observation
            only; memories saved before that load with it on).
    """

    num_actions: int | None = None
    key_action: bool = False
    context: int = 1
    key_reward: bool = False


@dataclass(frozen=True)
class UniformSpec:
    """Uniform base draws over all stored transitions.

    Attributes:
        beta: Importance-weight exponent (0 = all weights 1).
    """

    beta: float = 0.0


@dataclass(frozen=True)
class PrioritizedSpec:
    """Prioritised (TD-error) base draws.

    The buffer builds the :class:`~hippogym.memory.samplers.PrioritizedSampler` on its memory.

    Attributes:
        alpha: Priority exponent.
        beta: Importance-weight exponent.
    """

    alpha: float = 0.6
    beta: float = 0.4


SamplerSpec = UniformSpec | PrioritizedSpec

#: Old flat keyword argument -> (group argument, field of that group).
LEGACY_KWARGS: dict[str, tuple[str, str]] = {
    "capacity": ("memory", "capacity"),
    "embed_dim": ("memory", "embed_dim"),
    "eviction": ("memory", "eviction"),
    "index": ("memory", "index"),
    "key_dtype": ("memory", "key_dtype"),
    "consolidator_kwargs": ("consolidator", ""),
    "prioritized": ("sampler", "prioritized"),
    "alpha": ("sampler", "alpha"),
    "beta": ("sampler", "beta"),
    "top_k": ("semantic", "top_k"),
    "retrieval_temperature": ("semantic", "temperature"),
    "exact_sampling": ("semantic", "exact"),
    "num_actions": ("features", "num_actions"),
    "key_action": ("features", "key_action"),
    "context": ("features", "context"),
}

_NEW_SPELLING = {
    "memory": "memory=MemoryStore({field}=...)",
    "consolidator": "consolidator={{...}} (a dict of Consolidator settings)",
    "sampler": "sampler=PrioritizedSpec({field}=...) (or sampler='prioritized')",
    "semantic": "semantic=SemanticConfig({field}=...)",
    "features": "features=FeatureConfig({field}=...)",
}


def new_spelling(name: str) -> str:
    """The new spelling of the old keyword argument ``name`` (for deprecation messages)."""
    group, field = LEGACY_KWARGS[name]
    if name == "prioritized":
        return "sampler='prioritized' (or sampler=PrioritizedSpec(...))"
    if name == "beta":
        return "sampler=PrioritizedSpec(beta=...) (or sampler=UniformSpec(beta=...) for uniform draws)"
    return _NEW_SPELLING[group].format(field=field)


def _fields(cls: type, value: Mapping[str, Any], name: str) -> dict[str, Any]:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ValidationError(name, f"a dict with keys among {sorted(known)}", f"also {unknown}")
    return dict(value)


def _coerce(cls: type, value: Any, name: str) -> Any:
    """``cls`` from ``None`` (its defaults), an instance or a dict of its fields."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, Mapping):
        return cls(**_fields(cls, value, name))
    raise ValidationError(name, f"a {cls.__name__}, a dict of its fields or None", describe(value))


def coerce_semantic(value: SemanticConfig | Mapping[str, Any] | None) -> SemanticConfig:
    """A :class:`SemanticConfig` from ``None`` (the defaults), a config or a dict of its fields."""
    return _coerce(SemanticConfig, value, "semantic")


def coerce_features(value: FeatureConfig | Mapping[str, Any] | None) -> FeatureConfig:
    """A :class:`FeatureConfig` from ``None`` (the defaults), a config or a dict of its fields."""
    return _coerce(FeatureConfig, value, "features")


def coerce_sampler_spec(value: Any) -> SamplerSpec:
    """A sampler spec from ``None``/``"uniform"``, ``"prioritized"``, a spec or a dict.

    A dict holds the spec's fields and optionally ``"type"`` (``"prioritized"``, the default, or
    ``"uniform"``).

    Raises:
        ValidationError: Anything else (a sampler instance is handled by the buffer).
    """
    if value is None or (isinstance(value, str) and value == "uniform"):
        return UniformSpec()
    if isinstance(value, str) and value == "prioritized":
        return PrioritizedSpec()
    if isinstance(value, (UniformSpec, PrioritizedSpec)):
        return value
    if isinstance(value, Mapping):
        settings = dict(value)
        kind = settings.pop("type", "prioritized")
        if kind not in ("uniform", "prioritized"):
            raise ValidationError("sampler['type']", "'uniform' or 'prioritized'", repr(kind))
        cls = UniformSpec if kind == "uniform" else PrioritizedSpec
        return cls(**_fields(cls, settings, "sampler"))
    raise ValidationError(
        "sampler", "None, 'uniform', 'prioritized', a PrioritizedSpec/UniformSpec, a dict or a PrioritizedSampler",
        describe(value),
    )


def pop_legacy(kwargs: MutableMapping[str, Any], group: str, *, stacklevel: int = 3) -> dict[str, Any]:
    """Remove the old keyword arguments of one group from ``kwargs``, warning for each.

    Args:
        kwargs: Keyword arguments (changed in place).
        group: ``"memory"``, ``"consolidator"``, ``"sampler"``, ``"semantic"`` or ``"features"``.
        stacklevel: Passed to :func:`warnings.warn` (3: the caller of the function calling this one).

    Returns:
        The removed values under the group's field names (``MemoryStore`` arguments for
        ``"memory"``, ``SemanticConfig`` fields for ``"semantic"``, ...).
    """
    out: dict[str, Any] = {}
    for name in [n for n in kwargs if LEGACY_KWARGS.get(n, ("", ""))[0] == group]:
        warnings.warn(
            f"HippocampalReplayBuffer({name}=...) is deprecated and will be removed in the next release; "
            f"use {new_spelling(name)}.",
            DeprecationWarning, stacklevel=stacklevel,
        )
        out[LEGACY_KWARGS[name][1]] = kwargs.pop(name)
    return out


def legacy_sampler_spec(values: Mapping[str, Any]) -> SamplerSpec:
    """The spec of the old ``prioritized``/``alpha``/``beta`` arguments, as the buffer read them.

    ``beta=None`` is 0.4 with prioritised draws, else 0.
    """
    prioritized = bool(values.get("prioritized", False))
    beta = values.get("beta")
    beta = (0.4 if prioritized else 0.0) if beta is None else float(beta)
    return PrioritizedSpec(float(values.get("alpha", 0.6)), beta) if prioritized else UniformSpec(beta)
