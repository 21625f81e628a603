"""Integrations at the edges: Stable-Baselines3, Minari, the Hugging Face Hub.

Names are resolved lazily: ``import hippogym.integrations`` imports nothing heavy, and each
optional library is imported only when one of its names is first used, e.g.
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
    "memory_from_minari": "hippogym.integrations.minari",
    "memory_to_minari": "hippogym.integrations.minari",
    "push_memory_to_hub": "hippogym.integrations.hub",
    "load_memory_from_hub": "hippogym.integrations.hub",
    "download_memory": "hippogym.integrations.hub",
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
    from hippogym.integrations.hub import download_memory, load_memory_from_hub, push_memory_to_hub
    from hippogym.integrations.minari import memory_from_minari, memory_to_minari
    from hippogym.integrations.sb3 import HippoCallback, HippoReplayBuffer, SB3ReplayBufferWrapper
