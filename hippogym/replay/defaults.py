"""The one place that builds the consolidator a buffer uses when none was given.

:class:`~hippogym.replay.buffer.HippocampalReplayBuffer`, the SB3 adapter and the Minari import all
call :func:`build_default_consolidator`, so a buffer's ``consolidator_kwargs`` reach the
consolidator whichever path creates it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hippogym.consolidation.consolidator import Consolidator
from hippogym.encoders.dual import DualEncoder
from hippogym.errors import ValidationError, describe

__all__ = ["build_default_consolidator"]


def build_default_consolidator(
    encoder: DualEncoder,
    seed: int | None = None,
    consolidator_kwargs: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> Consolidator:
    """Build the default :class:`Consolidator` for ``encoder``.

    Args:
        encoder: The encoder the consolidator trains (the buffer's encoder).
        seed: Seed of the consolidator's generator, used unless ``consolidator_kwargs`` holds one.
        consolidator_kwargs: A buffer's ``consolidator_kwargs``; they win over ``seed`` and ``overrides``.
        **overrides: Defaults of the calling path (e.g. the demo's ``temperature``), below
            ``consolidator_kwargs``.

    Returns:
        A new consolidator on ``encoder``.

    Raises:
        ValidationError: ``consolidator_kwargs`` is not a mapping, or a setting is invalid.
    """
    if consolidator_kwargs is not None and not isinstance(consolidator_kwargs, Mapping):
        raise ValidationError("consolidator_kwargs", "a mapping or None", describe(consolidator_kwargs))
    settings: dict[str, Any] = {"seed": seed, **overrides, **dict(consolidator_kwargs or {})}
    return Consolidator(encoder, **settings)
