"""Segmentation: cut streams of transitions into the units (episodes or segments) memory stores.

* :class:`Segmenter`: the base class and contract (``add``, ``add_batch``, ``flush``, ``reset``,
  the ``should_cut`` hook, ``info_keys``).
* :class:`TerminalSegmenter`: one unit per environment episode.
* :class:`FixedWindowSegmenter`: windows of ``n`` steps (optionally overlapping).
* :class:`RewardEventSegmenter`: units that end right after a reward event.
* :class:`GoalAchievementSegmenter`: units that end right after the goal is reached.
* :class:`ChangePointSegmenter`: units that end where the observation jumps.

Every segmenter also cuts a recorded episode offline: ``segmenter.segment(episode)``.

Modules: ``base`` (the :class:`Segmenter` cutting logic), ``storage`` (the per-stream rows it
inherits), ``cut_hooks`` (the ``should_cut`` hooks it inherits), ``arrays`` (input conversion and
checks), ``segmenters``, ``goal``, ``changepoint`` (the shipped segmenters), ``offline``
(:meth:`Segmenter.segment`).
"""

from __future__ import annotations

from hippogym.segmentation.base import SUCCESS_KEY, Segmenter
from hippogym.segmentation.changepoint import ChangePointSegmenter
from hippogym.segmentation.goal import GoalAchievementSegmenter
from hippogym.segmentation.segmenters import (
    FixedWindowSegmenter,
    RewardEventSegmenter,
    TerminalSegmenter,
)

__all__ = [
    "SUCCESS_KEY",
    "ChangePointSegmenter",
    "FixedWindowSegmenter",
    "GoalAchievementSegmenter",
    "RewardEventSegmenter",
    "Segmenter",
    "TerminalSegmenter",
]
