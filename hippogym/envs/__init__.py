"""Built-in Gymnasium environments that exercise episodic memory.

* :class:`SparseCorridorEnv` (``hippogym/SparseCorridor-v0``): sparse reward
  over a long horizon; successes under random exploration are rare.
* :class:`CueRecallCorridorEnv` (``hippogym/CueRecall-v0``): a T-maze whose cue
  is only visible at the start, so the task is partially observable.
* :class:`CurriculumCorridorEnv` (``hippogym/CurriculumCorridor-v0``): a sparse
  corridor whose length grows with the agent's success rate.

The ids are registered by ``import hippogym`` (the usual Gymnasium convention, so
``gymnasium.register_envs(hippogym)`` and ``gymnasium.make("hippogym/SparseCorridor-v0")``
work); :func:`register_envs` does it explicitly. All environments truncate internally,
so no ``TimeLimit`` is registered. The environment classes are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hippogym.envs._registration import ENV_IDS, register_envs

__all__ = [
    "ENV_IDS",
    "CueRecallCorridorEnv",
    "CurriculumCorridorEnv",
    "SparseCorridorEnv",
    "register_envs",
]

_CLASSES = {
    "SparseCorridorEnv": "hippogym.envs.corridor",
    "CurriculumCorridorEnv": "hippogym.envs.corridor",
    "CueRecallCorridorEnv": "hippogym.envs.cue_recall",
}


def __getattr__(name: str) -> Any:
    module = _CLASSES.get(name)
    if module is None:
        raise AttributeError(f"module 'hippogym.envs' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # pragma: no cover
    from hippogym.envs.corridor import CurriculumCorridorEnv, SparseCorridorEnv
    from hippogym.envs.cue_recall import CueRecallCorridorEnv
