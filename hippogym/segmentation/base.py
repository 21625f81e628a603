"""The segmenter contract: turn streams of transitions into :class:`~hippogym.Episode` units.

A segmenter receives real transitions one step at a time (:meth:`Segmenter.add`) or one vector-env
step at a time (:meth:`Segmenter.add_batch`), keeps one in-progress segment per *stream* (a
vector-env index), and returns the segments that a step completed. Each returned
:class:`~hippogym.Episode` carries explicit ``next_states``, so the final transition keeps its real
next observation, and the ``terminated``/``truncated`` flags of its last step: truncation (a time
limit) is never turned into termination.

Speed: a step is validated against the layout stored at the first step. :meth:`Segmenter.add`
with numpy arrays that already have the stored per-step shape and dtype (and an int, or such an
array, as the action) skips the general conversion (a few numpy item writes per step);
anything else goes through :meth:`Segmenter.add_batch`, with the same results. A recorder that
converts every step itself asks :meth:`Segmenter.trusted_layout` once, then calls
:meth:`Segmenter.add_trusted` or :meth:`Segmenter.add_batch_trusted`, which check nothing. Emitted
segments are built from the already-validated rows with only a NaN/inf check per float array.

Writing a custom segmenter: subclass :class:`Segmenter` and override :meth:`Segmenter.should_cut`
(per step, simple) or :meth:`Segmenter.should_cut_batch` (vectorised over streams, fast).
:meth:`Segmenter.overlap_after_cut` decides how many trailing steps a cut segment passes on to the
next one. The segmenter always cuts at the end of an environment episode, whatever the hooks say.

Where things live: :mod:`hippogym.segmentation.arrays` converts and checks inputs,
:mod:`hippogym.segmentation.storage` holds the per-stream rows, :mod:`hippogym.segmentation.cut_hooks`
the overridable cut hooks (``should_cut``, ``should_cut_batch``, ``overlap_after_cut``), this module
is the cutting logic.
``SUCCESS_KEY``, ``ArrayObservation``, ``flatten_observation`` and ``to_numpy`` are re-exported here
so that their old import path keeps working.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hippogym.episode import Episode
from hippogym.errors import ValidationError, describe
from hippogym.segmentation.arrays import (
    FAST_REWARD_TYPES,
    SUCCESS_KEY,
    ArrayObservation,
    InfoRows,
    add_row_axis,
    as_flags,
    check_stream,
    flatten_observation,
    leaves,
    to_numpy,
)
from hippogym.segmentation.cut_hooks import CutHooks
from hippogym.segmentation.offline import segment_episode
from hippogym.segmentation.storage import SegmentStorage

__all__ = ["SUCCESS_KEY", "ArrayObservation", "Segmenter", "flatten_observation", "to_numpy"]

logger = logging.getLogger(__name__)


class Segmenter(SegmentStorage, CutHooks):
    """Cuts per-stream transition streams into units; the base class of all segmenters.

    The base class cuts only at the end of an environment episode (``terminated`` or
    ``truncated``), like :class:`~hippogym.segmentation.TerminalSegmenter`. Subclasses add cuts by
    overriding :meth:`should_cut` (or its vectorised form :meth:`should_cut_batch`).

    Episode ids come from a per-segmenter counter of environment episodes: the first step of a new
    environment episode in any stream takes the next id, and every segment of that environment
    episode carries it. ``Episode.start_step`` is the offset of the segment's first step within its
    environment episode.

    Args:
        info_keys: ``info`` keys recorded per step into ``Episode.infos`` (numeric values only). A
            key missing from a step's ``info`` is recorded as ``0`` for that step. Whatever these
            keys are, ``info["is_success"]`` at the last step of an environment episode sets the
            final segment's ``Episode.success`` (earlier segments of the same environment episode
            are emitted before the outcome is known and have ``success=None``).

    Raises:
        ValidationError: ``info_keys`` is not a sequence of non-empty strings.

    Example:
        >>> import numpy as np
        >>> seg = Segmenter()
        >>> seg.add(np.zeros(2), 0, 1.0, False, False, np.ones(2))
        []
        >>> [len(ep) for ep in seg.add(np.ones(2), 1, 1.0, True, False, np.ones(2))]
        [2]
    """

    def __init__(self, info_keys: Sequence[str] = ()) -> None:
        super().__init__(info_keys)
        self._cut_hook: Any = False  # per-step form of the cut hook; False until _resolve_cut_hook

    # ------------------------------------------------------------------ public API
    def add(
        self,
        obs: Any,
        action: Any,
        reward: float,
        terminated: bool,
        truncated: bool,
        next_obs: Any,
        info: Mapping[str, Any] | None = None,
        stream: int = 0,
    ) -> list[Episode]:
        """Record one real transition of ``stream``.

        Args:
            obs: Observation before the step: an array-like, or a (possibly nested) dict of them
                (nested keys are flattened to ``"a.b"``).
            action: Action taken (array-like; a Discrete action is a scalar).
            reward: Reward received.
            terminated: The step reached a terminal state (no bootstrap).
            truncated: The episode was cut (time limit); ``next_obs`` is still bootstrapped.
            next_obs: Observation after the step (the real one, also at the end of an episode).
            info: The step's ``info`` dict (only ``info_keys`` and ``"is_success"`` are read).
            stream: Stream index (e.g. the vector-env index), ``>= 0``.

        Returns:
            The segments this step completed (usually ``[]``).

        Raises:
            ValidationError: A value is not numeric, or its shape or kind differs from earlier
                steps, or ``stream`` is not an int ``>= 0``.
        """
        # Fast path: a known stream, plain-array observations and an action that already have the
        # stored per-step shape and dtype (what the recording wrappers pass): the checks add_batch
        # makes per step reduce to comparing shapes and dtypes with the stored ones. Anything
        # else (the first step, a new stream, dicts, lists, tensors, other dtypes) takes add_batch.
        obs_dtype = self._obs_dtype
        if (
            obs_dtype is not None
            and type(obs) is np.ndarray
            and type(next_obs) is np.ndarray
            and type(stream) is int
            and 0 <= stream < self._num_streams
            and obs.shape == self._obs_shape
            and next_obs.shape == self._obs_shape
            and (obs.dtype is obs_dtype or obs.dtype == obs_dtype)
            and (next_obs.dtype is obs_dtype or next_obs.dtype == obs_dtype)
            and (info is None or type(info) is dict)
            and isinstance(reward, FAST_REWARD_TYPES)
            and (
                (type(action) is int and self._act_int_ok)
                or (
                    type(action) is np.ndarray
                    and action.shape == self._act_shape
                    and (action.dtype is self._act_dtype or action.dtype == self._act_dtype)
                )
            )
        ):
            try:
                return self.add_trusted(
                    stream, obs, action, float(reward), bool(terminated), bool(truncated), next_obs, info
                )
            except OverflowError:  # an int outside the stored integer range: add_batch decides
                pass
        s = check_stream(stream)
        if info is not None and not isinstance(info, Mapping):
            raise ValidationError("info", "a dict or None", describe(info))
        return self.add_batch(
            add_row_axis(flatten_observation(obs, "obs")),
            to_numpy(action, "action")[None],
            np.asarray([reward], dtype=np.float64),
            np.asarray([bool(terminated)]),
            np.asarray([bool(truncated)]),
            add_row_axis(flatten_observation(next_obs, "next_obs")),
            infos=[info],
            streams=np.asarray([s], dtype=np.int64),
        )

    def trusted_layout(
        self,
        obs_shape: tuple[int, ...],
        obs_dtype: Any,
        act_shape: tuple[int, ...],
        act_dtype: Any,
        streams: int = 1,
    ) -> bool | None:
        """Whether a caller's steps in this per-step layout may skip the input checks.

        A recorder whose observation and action converters produce plain arrays of one fixed
        layout asks this once, then calls :meth:`add_trusted` (one stream) or
        :meth:`add_batch_trusted` (a vector step) instead of :meth:`add` / :meth:`add_batch`.

        Args:
            obs_shape: Per-step observation shape the caller passes (no batch axis).
            obs_dtype: Observation dtype.
            act_shape: Per-step action shape (``()`` for a Discrete action).
            act_dtype: Action dtype.
            streams: Streams the caller writes to (``0 .. streams - 1``); each must exist already.

        Returns:
            ``True``: this layout is the stored one and every stream exists, for good (the stored
            layout never changes). ``False``: never, for this segmenter: a subclass overrides
            :meth:`add` or :meth:`add_batch` (it must see every step), the observations are a
            dict, or the stored layout differs. ``None``: not yet known (before the first step,
            or a stream has not been recorded yet); ask again later.
        """
        cls = type(self)
        if cls.add is not Segmenter.add or cls.add_batch is not Segmenter.add_batch:
            return False
        layout = self.plain_layout
        if layout is None:
            return False if self.layout_known else None
        if layout != (tuple(obs_shape), np.dtype(obs_dtype), tuple(act_shape), np.dtype(act_dtype)):
            return False
        return True if self._num_streams >= streams else None

    def add_trusted(
        self,
        s: int,
        obs: np.ndarray,
        action: Any,
        reward: float,
        terminated: bool,
        truncated: bool,
        next_obs: np.ndarray,
        info: dict[str, Any] | None,
    ) -> list[Episode]:
        """One step of stream ``s`` with no input checks (a recording wrapper's per-step path).

        The caller guarantees what :meth:`add` would otherwise check: the stream exists, ``obs``
        and ``next_obs`` are plain arrays and ``action`` matches :attr:`plain_layout`
        (:meth:`trusted_layout` said ``True`` for that layout). Returns the
        units the step completes, exactly as :meth:`add` does.
        """
        fields = self._fields
        pos = int(self._length[s])
        if pos >= self._capacity:
            self._grow(self._num_streams, pos + 1)
            fields = self._fields
        fields["action"][s, pos] = action  # first: it may raise OverflowError (nothing changed yet)
        fields["obs"][s, pos] = obs
        fields["next_obs"][s, pos] = next_obs
        fields["reward"][s, pos] = reward
        if self.info_keys:
            self._write_info_row(info, s, pos)
        if pos == 0 and self._episode_id[s] < 0:
            self._episode_id[s] = self._next_episode_id
            self._next_episode_id += 1
        length = pos + 1
        self._length[s] = length
        hook = self._cut_hook
        if hook is False:
            hook = self._resolve_cut_hook()
        cut = hook is not None and hook(length, reward, terminated, truncated, info)  # called every step
        ended = terminated or truncated
        if not (ended or cut):
            return []
        success = None
        if ended and info is not None and SUCCESS_KEY in info:
            try:
                success = bool(to_numpy(info[SUCCESS_KEY], f"info[{SUCCESS_KEY!r}]").any())
            except ValidationError:  # not numeric: no outcome (a recorded is_success key was checked above)
                pass
        episode = self._emit(s, terminated, truncated, success)
        if ended:
            self._clear(s)
        else:
            self._carry(s)
        return [episode]

    def add_batch(
        self,
        obs: Any,
        actions: Any,
        rewards: Any,
        terminated: Any,
        truncated: Any,
        next_obs: Any,
        infos: Sequence[Mapping[str, Any] | None] | Mapping[str, Any] | None = None,
        streams: Any = None,
    ) -> list[Episode]:
        """Record one transition for each of ``B`` distinct streams at once (vectorised).

        Args:
            obs: ``[B, ...]`` observations (or a dict of such arrays).
            actions: ``[B, ...]`` actions.
            rewards: ``[B]`` rewards.
            terminated: ``[B]`` booleans.
            truncated: ``[B]`` booleans.
            next_obs: ``[B, ...]`` next observations (or a dict of such arrays).
            infos: ``None``, a list of ``B`` info dicts, or a Gymnasium vector-env info dict
                (``{"key": array[B, ...], "_key": mask[B]}``; rows whose mask is ``False`` lack
                the key).
            streams: ``[B]`` distinct stream indices (default ``0 .. B-1``).

        Returns:
            The segments completed by this step, in row order.

        Raises:
            ValidationError: Shapes disagree, streams repeat, or a value is not numeric.
        """
        obs = flatten_observation(obs, "obs")
        next_obs = flatten_observation(next_obs, "next_obs")
        actions = to_numpy(actions, "actions")
        rewards = to_numpy(rewards, "rewards").astype(np.float64, copy=False).reshape(-1)
        size = rewards.shape[0]
        terminated = as_flags(terminated, "terminated", size)
        truncated = as_flags(truncated, "truncated", size)
        if streams is None:
            streams = np.arange(size, dtype=np.int64)
        else:
            streams = to_numpy(streams, "streams").astype(np.int64, copy=False).reshape(-1)
            if streams.shape[0] != size:
                raise ValidationError("streams", f"{size} stream indices (one per row)", describe(streams))
            if size and (int(streams.min()) < 0 or len(set(streams.tolist())) != size):
                raise ValidationError("streams", "distinct ints >= 0", f"{streams.tolist()}")
        if actions.ndim == 0 or actions.shape[0] != size:
            raise ValidationError("actions", f"an array with {size} rows", describe(actions))
        for name, value in (("obs", obs), ("next_obs", next_obs)):
            for key, arr in leaves(value, name):
                if arr.ndim == 0 or arr.shape[0] != size:
                    raise ValidationError(key, f"an array with {size} rows", describe(arr))
        if (
            infos is not None
            and not isinstance(infos, Mapping)
            and (not isinstance(infos, Sequence) or len(infos) != size)
        ):
            raise ValidationError("infos", f"None, a vector info dict or a list of {size} dicts", describe(infos))
        if size == 0:
            return []

        self._prepare(obs, next_obs, actions, streams, type(self).add_batch is Segmenter.add_batch)
        pos = self._length[streams]
        self._write_obs("obs", obs, streams, pos)
        self._write_obs("next_obs", next_obs, streams, pos)
        self._write("action", actions, streams, pos)
        return self._add_rows(rewards, terminated, truncated, infos, streams, pos)

    def add_batch_trusted(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        next_obs: np.ndarray,
        infos: Sequence[Mapping[str, Any] | None] | Mapping[str, Any] | None,
        streams: np.ndarray,
    ) -> list[Episode]:
        """:meth:`add_batch` for a caller that has checked the layout once (a recording wrapper).

        The caller guarantees what ``add_batch`` would otherwise check every step: plain-array
        ``obs``/``next_obs`` and ``actions`` with the stored per-step shapes and dtypes, float64
        ``rewards`` and bool flags ``[B]``, distinct int64 ``streams`` that all exist already, and
        ``infos`` None, a vector info dict or a list of ``B`` dicts. Capacity still grows as needed;
        info values and the cut hook are handled exactly as in ``add_batch``. One row with a plain
        info dict (a single env) takes :meth:`add_trusted`, which writes items, not indexed rows.
        """
        if streams.shape[0] == 1 and not isinstance(infos, Mapping):
            info = None if infos is None else infos[0]
            if info is None or type(info) is dict:
                return self.add_trusted(
                    int(streams[0]), obs[0], actions[0], float(rewards[0]), bool(terminated[0]),
                    bool(truncated[0]), next_obs[0], info,
                )
        pos = self._length[streams]
        top = int(pos.max())
        if top >= self._capacity:
            self._grow(self._num_streams, top + 1)
        fields = self._fields
        fields["obs"][streams, pos] = obs
        fields["next_obs"][streams, pos] = next_obs
        fields["action"][streams, pos] = actions
        return self._add_rows(rewards, terminated, truncated, infos, streams, pos)

    def _add_rows(
        self,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        infos: Sequence[Mapping[str, Any] | None] | Mapping[str, Any] | None,
        streams: np.ndarray,
        pos: np.ndarray,
    ) -> list[Episode]:
        """The rest of one batched step once observations and actions are written at ``pos``."""
        size = streams.shape[0]
        self._fields["reward"][streams, pos] = rewards
        columns = self._info_columns(infos, size)
        self._write_infos(columns, streams, pos)

        # A stream starts a new environment episode only at an empty segment (pos 0). np.count_nonzero
        # is much cheaper than .any() on small arrays.
        if np.count_nonzero(pos) < size:
            fresh = self._episode_id[streams] < 0
            count = np.count_nonzero(fresh)
            if count:
                self._episode_id[streams[fresh]] = np.arange(self._next_episode_id, self._next_episode_id + count)
                self._next_episode_id += int(count)
        lengths = pos + 1
        self._length[streams] = lengths

        ended = terminated | truncated
        if self._cut_hook is False:
            self._resolve_cut_hook()
        if self._cut_hook is None:  # should_cut_batch never cuts early: no need to call it
            cut = ended
        else:
            hook = np.asarray(
                self.should_cut_batch(lengths, rewards, terminated, truncated, InfoRows(infos, size)),
                dtype=bool,
            )
            if hook.shape != (size,):
                raise ValidationError("should_cut_batch()", f"a boolean array of shape ({size},)", describe(hook))
            cut = ended | hook
        if not np.count_nonzero(cut):
            return []
        success_values = columns.get(SUCCESS_KEY)
        out = []
        for i in np.flatnonzero(cut):
            s = int(streams[i])
            success = None
            if ended[i] and success_values is not None and success_values[1][i]:
                success = bool(np.asarray(success_values[0][i]).any())
            out.append(self._emit(s, bool(terminated[i]), bool(truncated[i]), success))
            if ended[i]:
                self._clear(s)
            else:
                self._carry(s)
        return out

    def flush(self, stream: int | None = None) -> list[Episode]:
        """Emit in-progress segments, e.g. at program end or before handing data over.

        A flushed segment ends with neither ``terminated`` nor ``truncated``: its last next
        observation is real and bootstrapping continues from it. The environment episode stays in
        progress, so later steps of the stream form further segments with the same ``episode_id``.
        Streams with no new steps since their last segment emit nothing.

        Args:
            stream: One stream, or ``None`` for all streams (in index order).

        Returns:
            The emitted segments.
        """
        targets = range(self._num_streams) if stream is None else [check_stream(stream)]
        out = []
        for s in targets:
            if s < self._num_streams and self._length[s] > self._carried[s]:
                out.append(self._emit(s, False, False, None))
                self._carry(s)
        return out

    def segment(self, episode: Episode) -> list[Episode]:
        """Cut an already-recorded episode offline with this segmenter's rule (the seed's API).

        The cuts are those :meth:`add` would make on the same steps; this segmenter's own streams
        are not touched. See :func:`hippogym.segmentation.offline.segment_episode`.

        Args:
            episode: The episode (or segment) to cut.

        Returns:
            The pieces, in order: :meth:`Episode.slice` views of ``episode``.

        Example:
            >>> import torch
            >>> from hippogym.segmentation import FixedWindowSegmenter
            >>> ep = Episode(observations=torch.zeros(8, 1), actions=torch.zeros(7), rewards=torch.zeros(7))
            >>> [(p.start_step, len(p)) for p in FixedWindowSegmenter(3).segment(ep)]
            [(0, 3), (3, 3), (6, 1)]
        """
        return segment_episode(self, episode)

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(info_keys={self.info_keys!r}, streams={self._num_streams}, pending={self.pending()})"

    def _carry(self, s: int) -> None:
        """Emitted a segment of stream ``s`` mid-episode: carry ``overlap_after_cut`` rows over."""
        length = int(self._length[s])
        keep = int(self.overlap_after_cut(length))
        if not 0 <= keep < length:
            raise ValidationError("overlap_after_cut()", f"an int in [0, {length})", repr(keep))
        self._carry_rows(s, keep)
