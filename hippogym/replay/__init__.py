"""Replay: the hybrid buffer, its batch type and mixture schedules."""

from hippogym.replay.batch import ReplayBatch, SampleMode
from hippogym.replay.buffer import HippocampalReplayBuffer, RetrievalResult
from hippogym.replay.schedules import ConstantSchedule, RampSchedule, make_schedule
from hippogym.replay.settings import FeatureConfig, PrioritizedSpec, SemanticConfig, UniformSpec

__all__ = [
    "ConstantSchedule", "FeatureConfig", "HippocampalReplayBuffer", "PrioritizedSpec", "RampSchedule", "ReplayBatch",
    "RetrievalResult", "SampleMode", "SemanticConfig", "UniformSpec", "make_schedule",
]
