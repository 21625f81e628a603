"""Gymnasium wrappers: record environments into a buffer, and recall from it.

* :class:`RecordEpisodes`: records a single environment.
* :class:`RecordEpisodesVector`: records a vector environment (every autoreset mode).
* :class:`RecallObservation`: adds recalled memory context to observations.
* :class:`SpaceConverter`: the space-to-array rule the recorders share.
"""

from __future__ import annotations

from hippogym.wrappers.recall import RecallObservation
from hippogym.wrappers.record import RecordEpisodes
from hippogym.wrappers.record_vector import RecordEpisodesVector
from hippogym.wrappers.spaces import SpaceConverter

__all__ = ["RecallObservation", "RecordEpisodes", "RecordEpisodesVector", "SpaceConverter"]
