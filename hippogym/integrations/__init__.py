"""Integrations with RL libraries.

Names are resolved lazily: ``import hippogym.integrations`` imports nothing heavy, and
Stable-Baselines3 is imported only when one of its names is first used, e.g.
``from hippogym.integrations import HippoReplayBuffer`` (or directly from
:mod:`hippogym.integrations.sb3`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "HippoReplayBuffer": "hippogym.integrations.sb3",
    "SB3ReplayBufferWrapper": "hippogym.integrations.sb3",
    "HippoCallback": "hippogym.integrations.sb3",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hippogym.integrations' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover
    from hippogym.integrations.sb3 import HippoCallback, HippoReplayBuffer, SB3ReplayBufferWrapper
