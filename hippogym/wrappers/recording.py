"""The parts the recording wrappers share: the hand-over to the buffer and the recorded info.

:class:`RecorderSink` is the mixin both :class:`~hippogym.wrappers.record.RecordEpisodes` and
:class:`~hippogym.wrappers.record_vector.RecordEpisodesVector` use to hand units to the buffer
(through an :class:`~hippogym.replay.ingest.EpisodeIngestor`); :func:`make_segmenter`,
:func:`note_source` and :func:`success_alias` are the set-up and per-step helpers they share.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym

from hippogym.episode import Episode
from hippogym.errors import ValidationError, describe
from hippogym.replay.ingest import EpisodeIngestor
from hippogym.segmentation import Segmenter, TerminalSegmenter

__all__ = ["SUCCESS_INFO_KEYS", "RecorderSink", "make_segmenter", "note_source", "success_alias"]

#: Info keys that report an episode's outcome, in order of preference (PointMaze & co. use ``success``).
SUCCESS_INFO_KEYS = ("is_success", "success")


def note_source(buffer: Any, spec: Any, observation_space: gym.Space, action_space: gym.Space) -> None:
    """Fill what the recorder knows into a buffer's manifest sections: env id and (saveable) spaces.

    Only empty fields of ``buffer.provenance`` / ``buffer.spaces`` are set (what a user set wins);
    buffers without those dicts (e.g. a bare store) are left alone.
    """
    import hippo_format

    provenance, known = getattr(buffer, "provenance", None), getattr(buffer, "spaces", None)
    env_id = getattr(spec, "id", None)
    if isinstance(provenance, dict) and isinstance(env_id, str):
        provenance.setdefault("env_id", env_id)
    if isinstance(known, dict) and not known:
        try:  # only spaces the manifest can hold: an exotic space must not make save() fail later
            for space in (observation_space, action_space):
                hippo_format.space_to_json(space)
        except hippo_format.FormatError:
            return
        known.update(observation_space=observation_space, action_space=action_space)


def success_alias(info: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return ``info`` with ``is_success`` taken from ``success`` when only the latter is present.

    A vector info's ``_success`` mask becomes ``_is_success`` too; ``info`` itself is returned
    (not copied) when there is nothing to alias.
    """
    key, alias = SUCCESS_INFO_KEYS
    if key in info or alias not in info:
        return info
    out = {**info, key: info[alias]}
    if f"_{alias}" in info:
        out[f"_{key}"] = info[f"_{alias}"]
    return out


def make_segmenter(segmenter: Segmenter | None, info_keys: Sequence[str]) -> Segmenter:
    """The segmenter a recorder uses: ``segmenter`` with ``info_keys`` added, or a new default one.

    Args:
        segmenter: The user's segmenter, or ``None`` for a
            :class:`~hippogym.segmentation.TerminalSegmenter` recording ``info_keys``.
        info_keys: ``info`` keys to record, added (after its own, without repeats) to the
            segmenter's ``info_keys``.

    Returns:
        The segmenter (the one given, updated in place, or the new default).

    Raises:
        ValidationError: ``info_keys`` is not a sequence of keys, or ``segmenter`` is not a
            :class:`~hippogym.segmentation.Segmenter`.
    """
    if isinstance(info_keys, str) or not isinstance(info_keys, Sequence):
        raise ValidationError("info_keys", "a sequence of info keys (e.g. a tuple of str)", describe(info_keys))
    if segmenter is None:
        return TerminalSegmenter(info_keys=info_keys)
    if not isinstance(segmenter, Segmenter):
        raise ValidationError("segmenter", "a hippogym.segmentation.Segmenter or None", describe(segmenter))
    if info_keys:
        # The wrapper's keys are added to the segmenter's own.
        segmenter.info_keys = tuple(dict.fromkeys((*segmenter.info_keys, *info_keys)))
    return segmenter


class RecorderSink:
    """A recorder's hand-over to the buffer: an :class:`~hippogym.replay.ingest.EpisodeIngestor`.

    A mixin of the recording wrappers: it holds the ingestor (set up by ``_init_sink``) and
    exposes its counters; the wrapper hands units over with ``_store`` and drains the waiting ones
    with ``_drain``.
    """

    _ingestor: EpisodeIngestor

    def _init_sink(self, buffer: Any, ingest_every: int) -> None:
        self._ingestor = EpisodeIngestor(buffer, ingest_every, name="ingest_every")

    def _check_direct(self, streams: int = 1) -> bool:
        """Whether the segmenter takes the converters' layout on ``streams`` streams without checks.

        Asks :meth:`Segmenter.trusted_layout` and remembers a final answer in ``_direct_for`` /
        ``_not_direct_for`` (the wrapper's attributes); "not yet" is asked again at the next step.
        """
        segmenter = self.segmenter  # type: ignore[attr-defined]
        obs, act = self._obs_conv.plain, self._act_conv.plain  # type: ignore[attr-defined]
        verdict = False if obs is None or act is None else segmenter.trusted_layout(
            obs.shape, obs.dtype, act.shape, act.dtype, streams=streams
        )
        if verdict:
            self._direct_for = segmenter
        elif verdict is False:  # for good: ask no more
            self._not_direct_for = segmenter
        return bool(verdict)

    @property
    def buffer(self) -> Any:
        """The buffer receiving the units."""
        return self._ingestor.buffer

    @property
    def ingest_every(self) -> int:
        """Transitions queued before a hand-over (1: each unit goes over when complete)."""
        return self._ingestor.every

    @ingest_every.setter
    def ingest_every(self, value: int) -> None:
        self._ingestor.every = value

    @property
    def episodes_recorded(self) -> int:
        """Units handed to the buffer."""
        return self._ingestor.units_ingested

    @property
    def transitions_recorded(self) -> int:
        """Transitions in those units (overlapping windows count twice)."""
        return self._ingestor.transitions_ingested

    @property
    def pending_episodes(self) -> int:
        """Completed units waiting to be handed to the buffer (always 0 with ``ingest_every=1``)."""
        return self._ingestor.pending

    def _store(self, episodes: list[Episode]) -> list[int]:
        return self._ingestor.put(episodes)

    def _drain(self) -> list[int]:
        return self._ingestor.flush()
