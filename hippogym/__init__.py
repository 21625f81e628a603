"""hippogym: a learnable episodic memory that replaces the RL replay buffer.

Public names are imported lazily, so ``import hippogym`` is cheap and optional integrations
(Gymnasium wrappers, Stable-Baselines3, Minari, the Hub, FAISS) load only when used. The one
thing importing does is register the built-in environments with Gymnasium (ids and entry-point
strings only; no torch and no environment code is imported), so that ``gym.make("hippogym/...")``
and ``gym.register_envs(hippogym)`` work as for any Gymnasium environment package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Episode": "hippogym.episode",
    "DualEncoder": "hippogym.encoders.dual",
    "TransitionFeaturizer": "hippogym.encoders.features",
    "MLPBackbone": "hippogym.encoders.backbones",
    "CNNBackbone": "hippogym.encoders.backbones",
    "SequenceBackbone": "hippogym.encoders.backbones",
    "IdentityBackbone": "hippogym.encoders.backbones",
    "MemoryStore": "hippogym.memory.store",
    "FIFOEviction": "hippogym.memory.eviction",
    "UtilityEviction": "hippogym.memory.eviction",
    "TorchIndex": "hippogym.memory.index",
    "FaissIndex": "hippogym.memory.index",
    "TransitionIndex": "hippogym.memory.transition_index",
    "ObservationWindow": "hippogym.types",
    "set_blas_threads": "hippogym.blas",
    "get_blas_threads": "hippogym.blas",
    "Consolidator": "hippogym.consolidation.consolidator",
    "memory_quality": "hippogym.consolidation.quality",
    "pca_keys": "hippogym.memory.projection",
    "KeyProjection": "hippogym.memory.projection",
    "HippocampalReplayBuffer": "hippogym.replay.buffer",
    "ReplayBatch": "hippogym.replay.batch",
    "SampleMode": "hippogym.replay.batch",
    "RampSchedule": "hippogym.replay.schedules",
    "ConstantSchedule": "hippogym.replay.schedules",
    "CosineSchedule": "hippogym.replay.schedules",
    "WindowBatch": "hippogym.replay.windows",
    "SemanticConfig": "hippogym.replay.settings",
    "FeatureConfig": "hippogym.replay.settings",
    "PrioritizedSpec": "hippogym.replay.settings",
    "UniformSpec": "hippogym.replay.settings",
    "TerminalSegmenter": "hippogym.segmentation",
    "FixedWindowSegmenter": "hippogym.segmentation",
    "RewardEventSegmenter": "hippogym.segmentation",
    "Segmenter": "hippogym.segmentation",
    "GoalAchievementSegmenter": "hippogym.segmentation",
    "ChangePointSegmenter": "hippogym.segmentation",
    "RecordEpisodes": "hippogym.wrappers",
    "RecordEpisodesVector": "hippogym.wrappers",
    "RecallObservation": "hippogym.wrappers",
    "register_envs": "hippogym.envs",
    # Adapters at the edges (optional dependencies load on first use; the seed imported them from
    # the top level, so they are reachable here too).
    "SB3ReplayBufferWrapper": "hippogym.integrations.sb3",
    "HippoReplayBuffer": "hippogym.integrations.sb3",
    "HippoCallback": "hippogym.integrations.sb3",
    "push_memory_to_hub": "hippogym.integrations.hub",
    "load_memory_from_hub": "hippogym.integrations.hub",
    "memory_from_minari": "hippogym.integrations.minari",
    "WakeSleepTrainer": "hippogym.training",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hippogym' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


from hippogym.envs._registration import register_envs as _register_envs  # noqa: E402 - after the lazy table

_register_envs()

if TYPE_CHECKING:  # pragma: no cover
    from hippogym.consolidation.consolidator import Consolidator
    from hippogym.encoders.dual import DualEncoder
    from hippogym.episode import Episode
    from hippogym.memory.store import MemoryStore
    from hippogym.replay.buffer import HippocampalReplayBuffer
    from hippogym.replay.settings import FeatureConfig, PrioritizedSpec, SemanticConfig, UniformSpec
