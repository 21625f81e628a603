"""Register the built-in environments with Gymnasium (run by ``import hippogym``).

Only ``"module:Class"`` strings go into ``gymnasium.registry``: the environment modules are
imported by ``gymnasium.make`` when an environment is first made, so registering costs the
Gymnasium import and nothing else (no torch, no environment code).
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

__all__ = ["ENV_IDS", "register_envs"]

#: Registered environment ids mapped to their ``"module:Class"`` entry points.
ENV_IDS: dict[str, str] = {
    "hippogym/SparseCorridor-v0": "hippogym.envs.corridor:SparseCorridorEnv",
    "hippogym/CueRecall-v0": "hippogym.envs.cue_recall:CueRecallCorridorEnv",
    "hippogym/CurriculumCorridor-v0": "hippogym.envs.corridor:CurriculumCorridorEnv",
}


def register_envs() -> list[str]:
    """Register the built-in environments with Gymnasium.

    ``import hippogym`` already calls this, so ``gymnasium.make("hippogym/SparseCorridor-v0")``,
    ``gymnasium.register_envs(hippogym)`` and ``gymnasium.make("hippogym:hippogym/CueRecall-v0")``
    all work without calling it. Safe to call any number of times: ids already present in
    ``gymnasium.registry`` are left untouched. No ``max_episode_steps`` is set because every
    environment truncates itself at its ``max_steps``.

    Returns:
        The ids that were newly registered by this call (empty if all of them were registered
        already).
    """
    added: list[str] = []
    for env_id, entry_point in ENV_IDS.items():
        if env_id in registry:
            continue
        register(id=env_id, entry_point=entry_point)
        added.append(env_id)
    return added
