"""Gymnasium wrappers that record what an environment produces into a hippogym buffer.

:class:`RecordEpisodes` wraps a single environment, :class:`RecordEpisodesVector` a vector
environment (sync or async, any autoreset mode). Both pass everything the environment returns
through unchanged, convert observations and actions with
:class:`~hippogym.wrappers.spaces.SpaceConverter`, feed real transitions to a
:class:`~hippogym.segmentation.Segmenter` and hand every completed unit to
``buffer.add_episode`` (several at once to ``buffer.add_episodes``, one encoder pass). Truncation
is never turned into termination: a unit cut by a time limit keeps its real next observation with
``terminated=False, truncated=True``.

Cost: recording itself (conversion, segmentation, building the units) is a few microseconds per
step; what dominates is the buffer computing each unit's keys. By default every unit is handed
over as soon as it is complete. ``ingest_every=N`` (e.g. 1000) batches units across steps, which
amortises the encoder's per-call overhead (keys of ~20-step units cost about 1.7x less per
transition), at the price of up to ``N`` transitions of latency before the buffer sees a unit
(see :class:`RecordEpisodes`).

Modules: this one holds :class:`RecordEpisodes` and re-exports :class:`RecordEpisodesVector`
(:mod:`hippogym.wrappers.record_vector`) and :func:`ingest_pending`; the parts both share live in
:mod:`hippogym.wrappers.recording`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from hippogym.replay.ingest import ingest_pending
from hippogym.segmentation import Segmenter
from hippogym.wrappers.record_vector import RecordEpisodesVector
from hippogym.wrappers.recording import (
    SUCCESS_INFO_KEYS,
    RecorderSink,
    make_segmenter,
    note_source,
    success_alias,
)
from hippogym.wrappers.spaces import SpaceConverter, StoredArray

__all__ = ["SUCCESS_INFO_KEYS", "RecordEpisodes", "RecordEpisodesVector", "ingest_pending"]


class RecordEpisodes(gym.Wrapper, gym.utils.RecordConstructorArgs, RecorderSink):
    """Record a single environment's transitions into a buffer, shaped like ``RecordEpisodeStatistics``.

    Each ``step`` gives the segmenter the transition ``(obs, action, reward, terminated, truncated,
    next_obs, info)``, where ``obs`` is the observation the previous ``step``/``reset`` returned;
    each completed unit goes to ``buffer.add_episode``. What the environment returns is passed
    through untouched (no info keys are added).

    * ``reset()`` in the middle of an episode hands the transitions recorded so far to the buffer
      (a unit ending with neither flag: its next observation is real) and starts a new episode.
    * Steps after an episode ended and before the next ``reset()`` are not recorded.
    * ``flush()`` hands over in-progress data at any time; ``close()`` flushes too.
    * ``record=False`` (or setting :attr:`record` to ``False``) pauses recording at once (flushing
      what was in progress); setting it back to ``True`` resumes at the next ``reset()``.

    **Batched hand-over** (``ingest_every > 1``, opt-in): completed units wait until at least
    ``ingest_every`` of their transitions are waiting, then go to ``buffer.add_episodes`` together
    (one encoder pass for all of them: for short units, markedly cheaper per transition than one
    pass per unit). The price is latency: a completed unit reaches the buffer only when the
    waiting units hold ``ingest_every`` transitions, i.e. at most about ``ingest_every``
    environment steps later (plus the length of the unit then in progress); ``len(buffer)``,
    ``buffer.sample`` and ``buffer.save`` see it only then. Waiting
    units are handed over, in order, by ``flush()``, ``close()``, ``record = False``, before every
    recall of a :class:`~hippogym.wrappers.RecallObservation` on the same buffer, by
    :func:`hippogym.wrappers.record.ingest_pending`, and when the wrapper is garbage-collected;
    ``reset()`` does not force a hand-over. A unit the memory would reject raises in the
    ``step``/``reset`` that completed it, as without batching.

    Args:
        env: The environment. Its observation and action spaces must be Box, Discrete,
            MultiDiscrete, MultiBinary or (nested) Dict of those.
        buffer: Receives the units (``add_episode(Episode)``), e.g. a
            :class:`~hippogym.HippocampalReplayBuffer`.
        segmenter: How to cut units (default: :class:`~hippogym.segmentation.TerminalSegmenter`,
            one unit per episode). Uses stream ``0``; give each wrapper its own segmenter.
        info_keys: ``info`` keys recorded per step into ``Episode.infos`` (added to the
            segmenter's own). ``info["is_success"]`` (or ``info["success"]`` when that is
            absent) at the end of an episode always sets ``Episode.success``.
        record: Whether to record from the start.
        ingest_every: Hand completed units to the buffer once at least this many of their
            transitions wait (see above). ``1`` (default): each unit at once, no latency.

    Attributes:
        episodes_recorded: Units handed to the buffer.
        transitions_recorded: Transitions in those units (overlapping windows count twice).
        pending_episodes: Completed units waiting for the next hand-over (``ingest_every > 1``).

    Raises:
        ValidationError: Unsupported spaces, a buffer without ``add_episode``, or a bad segmenter.

    Example:
        >>> import gymnasium as gym
        >>> from hippogym import HippocampalReplayBuffer, MemoryStore
        >>> buffer = HippocampalReplayBuffer(MemoryStore(embed_dim=8, capacity=1000, seed=0), seed=0)
        >>> env = RecordEpisodes(gym.make("CartPole-v1"), buffer)
        >>> obs, info = env.reset(seed=0)
        >>> done = False
        >>> while not done:
        ...     obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        ...     done = terminated or truncated
        >>> buffer.num_episodes, env.episodes_recorded
        (1, 1)
    """

    def __init__(
        self,
        env: gym.Env,
        buffer: Any,
        segmenter: Segmenter | None = None,
        info_keys: Sequence[str] = (),
        record: bool = True,
        ingest_every: int = 1,
    ) -> None:
        # Recreating the env from its spec (gymnasium.make(env.spec)) shares the buffer and uses a
        # fresh copy of the segmenter as it was given.
        gym.utils.RecordConstructorArgs.__init__(
            self,
            buffer=buffer,
            segmenter=copy.deepcopy(segmenter),
            info_keys=tuple(info_keys),
            record=record,
            ingest_every=ingest_every,
            _disable_deepcopy=True,
        )
        gym.Wrapper.__init__(self, env)
        self._init_sink(buffer, ingest_every)
        self.segmenter = make_segmenter(segmenter, info_keys)
        self._obs_conv = SpaceConverter(env.observation_space, "observation_space")
        self._act_conv = SpaceConverter(env.action_space, "action_space")
        note_source(self.buffer, getattr(env, "spec", None), env.observation_space, env.action_space)
        self._record = bool(record)
        self._obs: StoredArray | None = None  # observation the next step starts from; None = not recording
        # The segmenter whose stored layout was found to match the converters (checked once): its
        # steps skip the per-step checks of Segmenter.add. Python int actions are written as is
        # when the action is a Discrete int64 scalar.
        self._direct_for: Segmenter | None = None
        self._not_direct_for: Segmenter | None = None  # a segmenter whose known layout does not match
        act = self._act_conv.plain
        self._int_action = act is not None and act.shape == () and act.dtype == np.int64

    @property
    def record(self) -> bool:
        """Whether steps are recorded. Turning it off flushes; turning it on waits for ``reset()``."""
        return self._record

    @record.setter
    def record(self, value: bool) -> None:
        value = bool(value)
        if self._record and not value:
            self.flush()
            self.segmenter.reset(0)
            self._obs = None
        self._record = value

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset the environment; an episode in progress is flushed to the buffer first."""
        obs, info = self.env.reset(seed=seed, options=options)
        self._store(self.segmenter.flush(0))
        self.segmenter.reset(0)
        self._obs = self._obs_conv.single(obs) if self._record else None
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the environment and record the transition (returns exactly what the env returned)."""
        obs, reward, terminated, truncated, env_info = self.env.step(action)
        info = env_info
        if self._obs is not None:
            next_obs = self._obs_conv.single(obs)
            term, trunc = bool(terminated), bool(truncated)
            segmenter = self.segmenter
            episodes = None
            direct = self._direct_for is segmenter or (self._not_direct_for is not segmenter and self._check_direct())
            if (term or trunc) and isinstance(info, Mapping):
                info = success_alias(info)  # only the recorded copy: the caller gets the env's info
            if direct and type(info) is dict:
                act = action if type(action) is int and self._int_action else self._act_conv.single(action)
                try:
                    episodes = segmenter.add_trusted(0, self._obs, act, float(reward), term, trunc, next_obs, info)
                except OverflowError:  # an int action outside int64: the general path reports it
                    episodes = None
            if episodes is None:
                episodes = segmenter.add(
                    self._obs, self._act_conv.single(action), float(reward), term, trunc, next_obs, info, stream=0
                )
            if episodes:
                self._store(episodes)
            self._obs = None if (term or trunc) else next_obs
        return obs, reward, terminated, truncated, env_info

    def flush(self) -> list[int]:
        """Hand the in-progress unit (if any) and every waiting unit to the buffer.

        Returns:
            Ids of the units added.
        """
        ids = self._store(self.segmenter.flush(0))
        return ids + self._drain()

    def close(self) -> None:
        """Flush in-progress data, then close the environment."""
        self.flush()
        super().close()
