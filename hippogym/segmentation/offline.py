"""Offline segmentation: cut an already-recorded :class:`~hippogym.Episode` with a segmenter's rule.

:meth:`Segmenter.segment` (the seed's ``EpisodeSegmenter.segment(trajectory)``) lands here. The
episode's steps are replayed, one at a time, through a fresh copy of the segmenter (its own
streams are untouched), so the cuts are exactly those the segmenter would make while recording:
the same hooks, overlaps and end-of-episode rule. The copy only supplies the boundaries; the
pieces are :meth:`Episode.slice` views of the input, so dtypes, infos, returns, advantages and
metadata carry over, ``episode_id`` is kept and ``start_step`` is shifted.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from hippogym.episode import Episode
from hippogym.errors import ValidationError, describe
from hippogym.segmentation.storage import SegmentStorage

__all__ = ["segment_episode"]


def _rows(obs: Any, t: int) -> Any:
    if isinstance(obs, dict):
        return {k: v[t : t + 1].numpy() for k, v in obs.items()}
    return obs[t : t + 1].numpy()


def segment_episode(segmenter: Any, episode: Episode) -> list[Episode]:
    """The pieces ``segmenter`` cuts ``episode`` into, in order (see the module docstring).

    Args:
        segmenter: Any :class:`~hippogym.segmentation.Segmenter`; its state is not changed.
        episode: The recorded episode (or segment).

    Returns:
        One or more episodes covering ``episode`` (overlapping when the segmenter overlaps).

    Raises:
        ValidationError: ``episode`` is not an :class:`Episode`.
    """
    if not isinstance(episode, Episode):
        raise ValidationError("episode", "a hippogym.Episode", describe(episode))
    clone = copy.copy(segmenter)
    SegmentStorage.__init__(clone, ())  # fresh rows; infos are read by the hooks, not recorded
    begin = getattr(clone, "_begin_offline", None)
    if begin is not None:
        begin(episode)
    length = len(episode)
    infos = episode.infos or {}
    last_term, last_trunc = bool(episode.terminated[-1]), bool(episode.truncated[-1])
    rewards = episode.rewards.numpy().astype(np.float64)
    bounds: list[tuple[int, int]] = []
    for t in range(length):
        last = t == length - 1
        row = {k: v[t].numpy() for k, v in infos.items()}
        emitted = clone.add_batch(
            _rows(episode.states, t), episode.actions[t : t + 1].numpy(), rewards[t : t + 1],
            np.array([last and last_term]), np.array([last and last_trunc]), _rows(episode.next_states, t),
            infos=[row], streams=np.zeros(1, dtype=np.int64),
        )
        bounds += [(e.start_step, e.start_step + len(e)) for e in emitted]
    if not (last_term or last_trunc):
        bounds += [(e.start_step, e.start_step + len(e)) for e in clone.flush(0)]
    return [episode.slice(start, stop) for start, stop in bounds]
