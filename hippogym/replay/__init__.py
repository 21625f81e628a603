"""Replay: the hybrid buffer, its batch type and mixture schedules."""

from hippogym.replay.batch import ReplayBatch, SampleMode
from hippogym.replay.buffer import HippocampalReplayBuffer, RetrievalResult
from hippogym.replay.schedules import ConstantSchedule, RampSchedule, make_schedule

__all__ = [
    "ConstantSchedule", "HippocampalReplayBuffer", "RampSchedule", "ReplayBatch", "RetrievalResult",
    "SampleMode", "make_schedule",
]
