"""Built-in Gymnasium environments that exercise episodic memory.

* :class:`SparseCorridorEnv` (``hippogym/SparseCorridor-v0``): sparse reward
  over a long horizon; successes under random exploration are rare.
* :class:`CueRecallCorridorEnv` (``hippogym/CueRecall-v0``): a T-maze whose cue
  is only visible at the start, so the task is partially observable.
* :class:`CurriculumCorridorEnv` (``hippogym/CurriculumCorridor-v0``): a sparse
  corridor whose length grows with the agent's success rate.

Call :func:`register_envs` to make the ids available to ``gymnasium.make``. All
environments truncate internally, so no ``TimeLimit`` is registered.
"""

from __future__ import annotations

import gymnasium

from hippogym.envs.corridor import CurriculumCorridorEnv, SparseCorridorEnv
from hippogym.envs.cue_recall import CueRecallCorridorEnv

__all__ = [
    "ENV_IDS",
    "CueRecallCorridorEnv",
    "CurriculumCorridorEnv",
    "SparseCorridorEnv",
    "register_envs",
]

#: Registered environment ids mapped to their ``"module:Class"`` entry points.
ENV_IDS: dict[str, str] = {
    "hippogym/SparseCorridor-v0": "hippogym.envs.corridor:SparseCorridorEnv",
    "hippogym/CueRecall-v0": "hippogym.envs.cue_recall:CueRecallCorridorEnv",
    "hippogym/CurriculumCorridor-v0": "hippogym.envs.corridor:CurriculumCorridorEnv",
}


def register_envs() -> list[str]:
    """Register the built-in environments with Gymnasium.

    Safe to call any number of times: ids already present in
    ``gymnasium.registry`` are left untouched. No ``max_episode_steps`` is set
    because every environment truncates itself at its ``max_steps``.

    Returns:
        The ids that were newly registered by this call (empty if all of them
        were registered already).
    """
    added: list[str] = []
    for env_id, entry_point in ENV_IDS.items():
        if env_id in gymnasium.registry:
            continue
        gymnasium.register(id=env_id, entry_point=entry_point)
        added.append(env_id)
    return added
