"""Base-layer helpers shared by the persistence of every part (memory, encoders, replay).

Every manifest value a loader turns into a Python number, flag or name is read through the
``manifest_*`` readers here, so a crafted or damaged manifest fails with a
:class:`~hippogym.errors.ValidationError` naming the manifest field, what was expected and what
arrived, instead of a bare ``TypeError`` deep in a constructor. The module also holds the
producer stamp written into every saved file and the structural checks (manifest sections,
tensor names and shapes) that more than one part needs. It imports nothing above
:mod:`hippogym.errors`, so each part's ``persist`` module can use it without pointing up.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from hippo_format.errors import ManifestError, SchemaError
from hippogym.errors import ValidationError

__all__ = [
    "PRODUCER", "check_state_keys", "manifest_bool", "manifest_float", "manifest_int", "manifest_name",
    "manifest_section", "producer", "producer_version", "to_numpy",
]

#: Producer name stamped into every manifest and config this library writes.
PRODUCER = "hippogym"

MISSING = object()


def producer_version() -> str:
    """The library version (``hippogym.__version__``) stamped next to :data:`PRODUCER`.

    Read from the parent package, which Python always imports before any of its submodules, so
    the version keeps its single definition in ``hippogym/__init__.py`` and no import arrow
    points from a low layer up to the package.

    Returns:
        The version string.
    """
    return str(sys.modules["hippogym"].__version__)


def producer() -> tuple[str, str]:
    """The ``(name, version)`` pair passed to :func:`hippo_format.write_memory`.

    Returns:
        ``(PRODUCER, producer_version())``.
    """
    return PRODUCER, producer_version()


def to_numpy(t: Any) -> np.ndarray:
    """A tensor (or array-like) as a contiguous CPU numpy array, 0-d scalars kept 0-d.

    Args:
        t: Tensor, array or scalar.

    Returns:
        The numpy array.
    """
    # (np.ascontiguousarray would turn 0-d scalars such as step counters into 1-d arrays.)
    return torch.as_tensor(t).detach().cpu().contiguous().numpy()


def manifest_section(manifest: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The object ``manifest[name]``, refusing anything that is not a JSON object.

    Args:
        manifest: The parsed manifest.
        name: Top-level section name.

    Returns:
        The section.

    Raises:
        hippo_format.ManifestError: If the section is missing or not an object.
    """
    value = manifest.get(name)
    if not isinstance(value, dict):
        raise ManifestError(
            f"Expected a `{name}` object in the manifest (written by hippogym), found {type(value).__name__}. "
            "Was this memory written by another producer?"
        )
    return value


def check_state_keys(expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor], where: str) -> None:
    """Check that ``found`` holds every tensor of ``expected`` with the same shape.

    Args:
        expected: A freshly built module's ``state_dict``.
        found: Tensors read from disk.
        where: File name for the error message.

    Raises:
        hippo_format.SchemaError: For a missing tensor or a shape mismatch.
    """
    missing = sorted(set(expected) - set(found))
    if missing:
        raise SchemaError(f"Expected tensors {missing[:5]} in {where} (the encoder's weights), found none.")
    for name, tensor in expected.items():
        if tuple(found[name].shape) != tuple(tensor.shape):
            raise SchemaError(
                f"Expected `{name}` in {where} to have shape {tuple(tensor.shape)}, found {tuple(found[name].shape)}."
            )


def get_field(section: Mapping[str, Any], key: str, field: str, default: Any) -> Any:
    if not isinstance(section, Mapping):
        raise ValidationError(field.rsplit(".", 1)[0], "a JSON object", type(section).__name__)
    value = section.get(key, default)
    if value is MISSING:
        raise ValidationError(field, "present in the manifest", "no such key")
    return value


def manifest_int(section: Mapping[str, Any], key: str, field: str, *, default: Any = MISSING,
                 minimum: int = 0, allow_none: bool = False) -> int | None:
    """Read an integer field (not a bool, not a float) that is at least ``minimum``."""
    value = get_field(section, key, field, default)
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"an integer >= {minimum}", f"{value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValidationError(field, f"an integer >= {minimum}", repr(value))
    return int(value)


def manifest_float(section: Mapping[str, Any], key: str, field: str, *, default: Any = MISSING,
                   minimum: float | None = None, maximum: float | None = None, positive: bool = False) -> float:
    """Read a finite real field within ``[minimum, maximum]`` (strictly > 0 when ``positive``)."""
    value = get_field(section, key, field, default)
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


def manifest_bool(section: Mapping[str, Any], key: str, field: str, *, default: Any = MISSING) -> bool:
    """Read a JSON boolean field (``0``/``1``/strings are refused)."""
    value = get_field(section, key, field, default)
    if not isinstance(value, bool):
        raise ValidationError(field, "true or false", f"{value!r} ({type(value).__name__})")
    return value


def manifest_name(section: Mapping[str, Any], key: str, field: str, choices: set[str] | frozenset[str], *,
                  default: Any = MISSING) -> str:
    """Read a string field that must be one of ``choices``."""
    value = get_field(section, key, field, default)
    if not isinstance(value, str) or value not in choices:
        raise ValidationError(field, f"one of {sorted(choices)}", repr(value))
    return value
