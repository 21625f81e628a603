"""Consolidation: the only part that trains the encoder and rewrites stored keys."""

from hippogym.consolidation.consolidator import Consolidator, reward_targets
from hippogym.consolidation.quality import memory_quality

__all__ = ["Consolidator", "memory_quality", "reward_targets"]
