"""The one path by which finished units enter a buffer.

Recorders (:mod:`hippogym.wrappers.record`), the Stable-Baselines3 adapter and the Minari loaders
all hand completed units to an :class:`EpisodeIngestor`. With ``every=1`` each call hands its units
over at once, in order; with ``every=N`` units wait until at least ``N`` of their transitions are
queued and then go to ``buffer.add_episodes`` together (one encoder pass instead of one per unit).
Units are checked against the memory when queued, so a bad unit is refused at once, never later at
the hand-over. Waiting units are handed over by :meth:`EpisodeIngestor.flush`, by
:func:`ingest_pending` (recall calls it before each retrieval) and when the ingestor is garbage
collected; they are never dropped.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

from hippogym.episode import Episode
from hippogym.errors import ValidationError, describe

__all__ = ["EpisodeIngestor", "ingest_pending"]

#: Ingestors holding queued units not yet handed to their buffer (see ingest_pending).
_WAITING: weakref.WeakSet[EpisodeIngestor] = weakref.WeakSet()


def ingest_pending(buffer: Any | None = None) -> list[int]:
    """Hand every ingestor's queued units (``every > 1``) to its buffer now.

    Args:
        buffer: Only ingestors writing into this buffer; ``None`` for all.

    Returns:
        Ids of the units added.
    """
    ids: list[int] = []
    for ingestor in list(_WAITING):
        if buffer is None or ingestor.buffer is buffer:
            ids += ingestor.flush()
    return ids


def _final_drain(buffer: Any, pending: list[Episode]) -> None:
    """An ingestor was garbage-collected with queued units: hand them over rather than lose them."""
    if pending:
        batch = list(pending)
        pending.clear()
        add_many = getattr(buffer, "add_episodes", None)
        if callable(add_many):
            add_many(batch)
        else:
            for episode in batch:
                buffer.add_episode(episode)


def _check_every(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValidationError(name, "an int >= 1 (transitions per hand-over to the buffer)", describe(value))
    return int(value)


class EpisodeIngestor:
    """Hands completed units to a buffer, at once or in batches of about ``every`` transitions.

    Args:
        buffer: Anything with ``add_episode(Episode)`` (and ideally ``add_episodes``), e.g. a
            :class:`~hippogym.replay.buffer.HippocampalReplayBuffer`.
        every: Queue units until at least this many of their transitions wait (1: no queue).
        name: The setting's name in error messages (the caller's keyword, e.g. ``"ingest_every"``).

    Attributes:
        units_ingested: Units handed to the buffer.
        transitions_ingested: Transitions in those units (overlapping windows count twice).

    Example:
        >>> import torch
        >>> from hippogym import Episode, HippocampalReplayBuffer
        >>> buffer = HippocampalReplayBuffer(seed=0)
        >>> ingest = EpisodeIngestor(buffer, every=50)
        >>> ep = Episode(observations=torch.zeros(11, 2), actions=torch.zeros(10), rewards=torch.zeros(10))
        >>> ingest.put([ep]), ingest.put([ep]), ingest.pending  # the first fixes the layout
        ([0], [], 1)
        >>> ingest.flush(), buffer.num_episodes
        ([1], 2)
    """

    def __init__(self, buffer: Any, every: int = 1, *, name: str = "every") -> None:
        if not callable(getattr(buffer, "add_episode", None)):
            raise ValidationError(
                "buffer",
                "an object with an add_episode(episode) method (e.g. HippocampalReplayBuffer)",
                describe(buffer),
            )
        self.name = name
        self.buffer = buffer
        self.every = every
        self.units_ingested = 0
        self.transitions_ingested = 0
        self._queue: list[Episode] = []
        self._queued_steps = 0
        self._finalizer: weakref.finalize | None = None

    @property
    def every(self) -> int:
        """Transitions queued before a hand-over (1: every unit goes over at once)."""
        return self._every

    @every.setter
    def every(self, value: int) -> None:
        self._every = _check_every(value, self.name)

    @property
    def pending(self) -> int:
        """Units queued, waiting for the next hand-over (always 0 with ``every=1``)."""
        return len(self._queue)

    def _memory(self) -> Any:
        """The buffer's memory when it can check units up front (a MemoryStore), else None."""
        memory = getattr(self.buffer, "memory", None)
        return memory if callable(getattr(memory, "check_episode", None)) else None

    def put(self, episodes: Sequence[Episode]) -> list[int]:
        """Hand completed units over, or queue them while fewer than ``every`` transitions wait.

        Returns:
            Ids of the units added to the buffer by this call (earlier queued ones included).

        Raises:
            ValidationError: A unit does not match the memory (the units before it are kept).
        """
        episodes = list(episodes)
        if not episodes:
            return []
        memory = self._memory()
        if self._every > 1 and (memory is None or memory.allocated):
            if self._finalizer is None:
                self._finalizer = weakref.finalize(self, _final_drain, self.buffer, self._queue)
            _WAITING.add(self)
            for episode in episodes:
                if memory is not None:
                    memory.check_episode(episode)  # reject a unit now, not at the later hand-over
                self._queue.append(episode)
                self._queued_steps += len(episode)
            if self._queued_steps < self._every:
                return []
            return self.flush()
        if self._queue:  # every was lowered: the queued units go first
            return self.flush() + self._ingest(episodes)
        return self._ingest(episodes)

    def flush(self) -> list[int]:
        """Hand all queued units over, oldest first; returns their ids."""
        _WAITING.discard(self)
        if not self._queue:
            return []
        batch = list(self._queue)
        self._queue.clear()
        self._queued_steps = 0
        return self._ingest(batch, checked=True)

    def _ingest(self, episodes: list[Episode], checked: bool = False) -> list[int]:
        """``add_episodes`` for several units (one encoder pass), ``add_episode`` otherwise; in order.

        Units are checked first (unless ``checked``: they were when queued), so that the counters
        stay exact when one is rejected: the units before it are stored, then the error is raised.
        """
        ids: list[int] = []
        add_many = getattr(self.buffer, "add_episodes", None)
        memory = self._memory()
        if len(episodes) > 1 and callable(add_many) and memory is not None and memory.allocated:
            valid = episodes
            error: Exception | None = None
            for i, episode in enumerate(() if checked else episodes):
                try:
                    memory.check_episode(episode)
                except Exception as exc:  # noqa: BLE001 - re-raised below
                    valid, error = episodes[:i], exc
                    break
            if valid:
                ids = [int(i) for i in add_many(valid)]
                self.units_ingested += len(valid)
                self.transitions_ingested += sum(len(episode) for episode in valid)
            if error is not None:
                raise error
            return ids
        for episode in episodes:
            ids.append(int(self.buffer.add_episode(episode)))
            self.units_ingested += 1
            self.transitions_ingested += len(episode)
        return ids
