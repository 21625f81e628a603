"""The segmenter contract: turn streams of transitions into :class:`~hippogym.Episode` units.

A segmenter receives real transitions one step at a time (:meth:`Segmenter.add`) or one vector-env
step at a time (:meth:`Segmenter.add_batch`), keeps one in-progress segment per *stream* (a
vector-env index), and returns the segments that a step completed. Each returned
:class:`~hippogym.Episode` carries explicit ``next_states``, so the final transition keeps its real
next observation, and the ``terminated``/``truncated`` flags of its last step: truncation (a time
limit) is never turned into termination.

Storage: every per-step field (observation, next observation, action, reward, each recorded info
key) lives in one preallocated array of shape ``[streams, capacity, ...]``. A step of ``B`` streams
is written with a single fancy-indexed assignment per field, and the arrays double when a stream
outgrows them, so appending is amortised O(1) and nothing is re-stacked per step. Only cutting a
segment copies its rows out (into the ``Episode``).

Speed: a step is validated against the layout stored at the first step. :meth:`Segmenter.add`
with numpy arrays that already have the stored per-step shape and dtype (and an int, or such an
array, as the action) skips the general conversion (a few numpy item writes per step);
anything else goes through :meth:`Segmenter.add_batch`, with the same results. Emitted segments
are built from the already-validated rows with only a NaN/inf check per float array.

Writing a custom segmenter: subclass :class:`Segmenter` and override :meth:`Segmenter.should_cut`
(per step, simple) or :meth:`Segmenter.should_cut_batch` (vectorised over streams, fast).
:meth:`Segmenter.overlap_after_cut` decides how many trailing steps a cut segment passes on to the
next one. The segmenter always cuts at the end of an environment episode, whatever the hooks say.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from hippogym.episode import Episode
from hippogym.errors import ValidationError, describe

__all__ = ["SUCCESS_KEY", "ArrayObservation", "Segmenter", "flatten_observation", "to_numpy"]

logger = logging.getLogger(__name__)

#: Info key whose value at the last step of an environment episode sets ``Episode.success``.
SUCCESS_KEY = "is_success"

#: An observation as the segmenter stores it: one array, or a flat dict of arrays.
ArrayObservation = np.ndarray | dict[str, np.ndarray]

_NUMERIC = "biuf"


def to_numpy(value: Any, name: str) -> np.ndarray:
    """Convert a numeric value (array, tensor, scalar, nested list) to a numpy array.

    Args:
        value: The value.
        name: Field name used in the error message.

    Returns:
        A numpy array (a view where possible; callers that keep it must copy).

    Raises:
        ValidationError: The value is not numeric.
    """
    if isinstance(value, torch.Tensor):
        arr = value.detach().cpu().numpy()
    else:
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError) as exc:
            raise ValidationError(name, "a numeric array", describe(value)) from exc
    if arr.dtype.kind not in _NUMERIC:
        raise ValidationError(name, "a numeric array (bool, int or float)", describe(value))
    return arr


def flatten_observation(value: Any, name: str) -> ArrayObservation:
    """Convert an observation to an array, or a nested dict to a flat dict keyed ``"a.b"``.

    Args:
        value: An array-like, or a (possibly nested) mapping of array-likes.
        name: Field name used in error messages.

    Returns:
        A numpy array, or a flat ``dict[str, np.ndarray]`` with sorted keys.

    Raises:
        ValidationError: A leaf is not numeric, a key is not a non-empty string without ``"/"``,
            two keys collide once joined (``{"a": {"b": x}, "a.b": y}``), or a mapping is empty.
    """
    if not isinstance(value, Mapping):
        return to_numpy(value, name)
    out: dict[str, np.ndarray] = {}
    _flatten_into(value, "", out, name)
    return {k: out[k] for k in sorted(out)}


def _flatten_into(value: Mapping[Any, Any], prefix: str, out: dict[str, np.ndarray], name: str) -> None:
    if not value:
        raise ValidationError(name, "a non-empty dict of arrays", "an empty dict")
    for key, item in value.items():
        if not isinstance(key, str) or not key or "/" in key:
            raise ValidationError(f"{name} keys", "non-empty strings without '/'", repr(key))
        path = f"{prefix}{key}"
        if isinstance(item, Mapping):
            _flatten_into(item, path + ".", out, name)
        elif path in out:
            raise ValidationError(f"{name} keys", "unique once nested keys are joined with '.'", f"{path!r} twice")
        else:
            out[path] = to_numpy(item, f"{name}[{path!r}]")


class _InfoRows(Sequence[Mapping[str, Any] | None]):
    """Per-row view of a batch of infos: a list of dicts, or a Gymnasium vector-env info dict."""

    def __init__(self, infos: Sequence[Mapping[str, Any] | None] | Mapping[str, Any] | None, size: int) -> None:
        self._infos = infos
        self._size = size

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, i: int) -> Mapping[str, Any] | None:  # type: ignore[override]
        infos = self._infos
        if infos is None:
            return None
        if isinstance(infos, Mapping):
            return _vector_row(infos, int(i))
        return infos[int(i)]


def _vector_row(infos: Mapping[str, Any], i: int) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for key, value in infos.items():
        if not isinstance(key, str) or key.startswith("_"):
            continue
        mask = infos.get(f"_{key}")
        if mask is not None and not bool(np.asarray(mask)[i]):
            continue
        if isinstance(value, Mapping):
            row[key] = _vector_row(value, i)
        elif isinstance(value, np.ndarray) and value.ndim >= 1:
            row[key] = value[i]
        else:
            row[key] = value
    return row


class Segmenter:
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
        self.info_keys = _check_info_keys(info_keys)
        self._next_episode_id = 0
        self._num_streams = 0
        self._capacity = 0
        self._obs_keys: tuple[str, ...] | None = None  # None until the first add; () = plain array
        self._fields: dict[str, np.ndarray] = {}
        self._info_fields: dict[str, np.ndarray] = {}
        self._length = np.zeros(0, dtype=np.int64)  # rows of the in-progress segment
        # Leading rows of the in-progress segment already emitted in the previous one (overlap):
        # rows not yet emitted = length - carried.
        self._carried = np.zeros(0, dtype=np.int64)
        self._episode_id = np.zeros(0, dtype=np.int64)  # -1 = no environment episode in progress
        # start_step of the in-progress segment; steps of the env episode so far = start + length.
        self._segment_start = np.zeros(0, dtype=np.int64)
        # Stored per-step layout of plain-array observations and actions (set at the first add):
        # what the single-step fast path of add() compares its inputs with.
        self._obs_shape: tuple[int, ...] | None = None
        self._obs_dtype: np.dtype | None = None
        self._act_shape: tuple[int, ...] | None = None
        self._act_dtype: np.dtype | None = None
        self._act_int_ok = False  # a Python int action may be written as is (scalar int/float storage)
        self._cut_hook: Any = False  # per-step form of the cut hook; False until _resolve_cut_hook

    # ------------------------------------------------------------------ hooks
    def should_cut(
        self, length: int, reward: float, terminated: bool, truncated: bool, info: Mapping[str, Any] | None
    ) -> bool:
        """Whether to cut the in-progress segment right after this step.

        Called for every recorded step. The segmenter cuts at the end of an environment episode
        anyway, so implementations only need to decide about the other steps.

        Args:
            length: Steps in the in-progress segment, this one included.
            reward: This step's reward.
            terminated: This step ended the episode in a terminal state.
            truncated: This step ended the episode by truncation (time limit).
            info: This step's ``info`` (``None`` when none was given).

        Returns:
            ``True`` to end the segment after this step. The base class never cuts early.
        """
        return False

    def should_cut_batch(
        self,
        lengths: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        infos: Sequence[Mapping[str, Any] | None],
    ) -> np.ndarray:
        """Vectorised :meth:`should_cut` over the streams of one batch.

        The default calls :meth:`should_cut` once per row when a subclass overrides it, and returns
        all ``False`` otherwise. Override this instead for speed.

        Args:
            lengths: ``[B]`` in-progress segment lengths, this step included.
            rewards: ``[B]`` rewards (float64).
            terminated: ``[B]`` booleans.
            truncated: ``[B]`` booleans.
            infos: ``B`` per-row info mappings (or ``None``); built lazily on access.

        Returns:
            ``[B]`` booleans: cut after this step.
        """
        if type(self).should_cut is Segmenter.should_cut:
            return np.zeros(lengths.shape[0], dtype=bool)
        return np.fromiter(
            (
                bool(
                    self.should_cut(
                        int(lengths[i]), float(rewards[i]), bool(terminated[i]), bool(truncated[i]), infos[i]
                    )
                )
                for i in range(lengths.shape[0])
            ),
            dtype=bool,
            count=lengths.shape[0],
        )

    def overlap_after_cut(self, length: int) -> int:
        """Trailing steps of a segment cut mid-episode (or flushed) that also start the next one.

        Args:
            length: Length of the segment just cut.

        Returns:
            Steps to carry over, in ``[0, length)``. The base class carries none.
        """
        return 0

    # ------------------------------------------------------------------ public API
    @property
    def num_streams(self) -> int:
        """Streams seen so far (one past the largest stream index)."""
        return self._num_streams

    def pending(self, stream: int | None = None) -> int:
        """Steps recorded but not yet emitted in any segment.

        Args:
            stream: One stream, or ``None`` for the total over all streams.
        """
        if stream is None:
            return int((self._length - self._carried).sum())
        s = _check_stream(stream)
        return int(self._length[s] - self._carried[s]) if s < self._num_streams else 0

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
            and isinstance(reward, _FAST_REWARDS)
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
                return self._add_one(stream, obs, action, float(reward), bool(terminated), bool(truncated), next_obs, info)
            except OverflowError:  # an int outside the stored integer range: add_batch decides
                pass
        s = _check_stream(stream)
        if info is not None and not isinstance(info, Mapping):
            raise ValidationError("info", "a dict or None", describe(info))
        return self.add_batch(
            _expand(flatten_observation(obs, "obs")),
            to_numpy(action, "action")[None],
            np.asarray([reward], dtype=np.float64),
            np.asarray([bool(terminated)]),
            np.asarray([bool(truncated)]),
            _expand(flatten_observation(next_obs, "next_obs")),
            infos=[info],
            streams=np.asarray([s], dtype=np.int64),
        )

    def _add_one(
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
        """One step of a known stream whose arrays match the stored layout (see :meth:`add`)."""
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

    def _resolve_cut_hook(self) -> Any:
        """The per-step form of this segmenter's cut hook: ``None`` (never cuts early),
        :meth:`should_cut` (when :meth:`should_cut_batch` is known to be its vectorised twin), or
        a one-row call of :meth:`should_cut_batch`."""
        cls = type(self)
        batch, single = cls.should_cut_batch, cls.should_cut
        if batch is Segmenter.should_cut_batch or getattr(batch, "_scalar_twin", None) is single:
            hook = None if single is Segmenter.should_cut else self._cut_single
        else:
            hook = self._cut_one_row
        self._cut_hook = hook
        return hook

    def _cut_single(
        self, length: int, reward: float, terminated: bool, truncated: bool, info: Mapping[str, Any] | None
    ) -> bool:
        return bool(self.should_cut(length, reward, terminated, truncated, info))

    def _cut_one_row(
        self, length: int, reward: float, terminated: bool, truncated: bool, info: Mapping[str, Any] | None
    ) -> bool:
        hook = np.asarray(
            self.should_cut_batch(
                np.array([length], dtype=np.int64),
                np.array([reward], dtype=np.float64),
                np.array([terminated]),
                np.array([truncated]),
                _InfoRows([info], 1),
            ),
            dtype=bool,
        )
        if hook.shape != (1,):
            raise ValidationError("should_cut_batch()", "a boolean array of shape (1,)", describe(hook))
        return bool(hook[0])

    def _write_info_row(self, info: Mapping[str, Any] | None, s: int, pos: int) -> None:
        """:meth:`_info_columns` plus :meth:`_write_infos` for one step of one stream."""
        values = []
        for key in self.info_keys:  # validate every key before writing any, as add_batch does
            if info is not None and key in info:
                values.append((key, to_numpy(info[key], f"info[{key!r}]")))
        for key, value in values:
            target = self._info_fields.get(key)
            if target is None:
                target = np.zeros((self._num_streams, self._capacity, *value.shape), dtype=value.dtype)
                self._info_fields[key] = target
            _check_row(target, value, f"info[{key!r}]")
            target[s, pos] = value
        if len(values) != len(self._info_fields):
            given = {key for key, _ in values}
            for key, target in self._info_fields.items():
                if key not in given:
                    target[s, pos] = 0

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
        terminated = _flags(terminated, "terminated", size)
        truncated = _flags(truncated, "truncated", size)
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
            for key, arr in _leaves(value, name):
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

        self._prepare(obs, next_obs, actions, streams)
        pos = self._length[streams]
        self._write_obs("obs", obs, streams, pos)
        self._write_obs("next_obs", next_obs, streams, pos)
        self._write("action", actions, streams, pos)
        return self._add_rows(rewards, terminated, truncated, infos, streams, pos)

    def _add_batch_trusted(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        next_obs: np.ndarray,
        infos: Mapping[str, Any] | None,
        streams: np.ndarray,
    ) -> list[Episode]:
        """:meth:`add_batch` for a caller that has checked the layout once (a recording wrapper).

        The caller guarantees what ``add_batch`` would otherwise check every step: plain-array
        ``obs``/``next_obs`` and ``actions`` with the stored per-step shapes and dtypes, float64
        ``rewards`` and bool flags ``[B]``, distinct int64 ``streams`` that all exist already, and
        ``infos`` None or a vector info dict. Capacity still grows as needed; info values and the
        cut hook are handled exactly as in ``add_batch``.
        """
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
                self.should_cut_batch(lengths, rewards, terminated, truncated, _InfoRows(infos, size)),
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
        targets = range(self._num_streams) if stream is None else [_check_stream(stream)]
        out = []
        for s in targets:
            if s < self._num_streams and self._length[s] > self._carried[s]:
                out.append(self._emit(s, False, False, None))
                self._carry(s)
        return out

    def reset(self, stream: int | None = None) -> None:
        """Drop in-progress data; the next step of the stream starts a new environment episode.

        Args:
            stream: One stream, or ``None`` for all streams.
        """
        if stream is None:
            for s in range(self._num_streams):
                self._clear(s)
            return
        s = _check_stream(stream)
        if s < self._num_streams:
            self._clear(s)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(info_keys={self.info_keys!r}, streams={self._num_streams}, pending={self.pending()})"

    # ------------------------------------------------------------------ storage
    def _prepare(
        self, obs: ArrayObservation, next_obs: ArrayObservation, actions: np.ndarray, streams: np.ndarray
    ) -> None:
        keys = tuple(obs) if isinstance(obs, dict) else ()
        next_keys = tuple(next_obs) if isinstance(next_obs, dict) else ()
        if keys != next_keys or isinstance(obs, dict) != isinstance(next_obs, dict):
            raise ValidationError("next_obs", "the same structure (keys) as `obs`", describe(next_obs))
        if self._obs_keys is None:
            for key in keys:
                if not isinstance(key, str) or not key or "/" in key:
                    raise ValidationError("obs keys", "non-empty strings without '/'", repr(key))
            self._obs_keys = keys
            for prefix in ("obs", "next_obs"):
                for name, arr in _leaves(obs, prefix):
                    self._fields[name] = np.zeros((0, 0, *arr.shape[1:]), dtype=arr.dtype)
            self._fields["action"] = np.zeros((0, 0, *actions.shape[1:]), dtype=actions.dtype)
            self._fields["reward"] = np.zeros((0, 0), dtype=np.float64)
            if not keys and type(self).add_batch is Segmenter.add_batch:  # else add() must go through add_batch
                self._obs_shape, self._obs_dtype = tuple(obs.shape[1:]), obs.dtype  # type: ignore[union-attr]
            self._act_shape, self._act_dtype = tuple(actions.shape[1:]), actions.dtype
            self._act_int_ok = actions.ndim == 1 and actions.dtype.kind in "if"
        elif keys != self._obs_keys:
            expected = f"keys {list(self._obs_keys)}" if self._obs_keys else "a single array"
            got = f"keys {list(keys)}" if keys else "a single array"
            raise ValidationError("obs", f"the structure of earlier steps ({expected})", got)
        need_streams = max(self._num_streams, int(streams.max()) + 1)
        known = streams[streams < self._num_streams]
        need_rows = int(self._length[known].max()) + 1 if known.size else 1
        if need_streams > self._num_streams or need_rows > self._capacity:
            self._grow(need_streams, need_rows)

    def _grow(self, streams: int, rows: int) -> None:
        old_s, old_c = self._num_streams, self._capacity
        new_s = old_s if streams <= old_s else max(streams, 2 * old_s)
        new_c = old_c if rows <= old_c else max(rows, 2 * old_c, 16)
        for table in (self._fields, self._info_fields):
            for name, arr in table.items():
                grown = np.zeros((new_s, new_c, *arr.shape[2:]), dtype=arr.dtype)
                grown[: arr.shape[0], : arr.shape[1]] = arr
                table[name] = grown
        if new_s > old_s:
            extra = new_s - old_s
            self._length = np.concatenate([self._length, np.zeros(extra, dtype=np.int64)])
            self._carried = np.concatenate([self._carried, np.zeros(extra, dtype=np.int64)])
            self._episode_id = np.concatenate([self._episode_id, np.full(extra, -1, dtype=np.int64)])
            self._segment_start = np.concatenate([self._segment_start, np.zeros(extra, dtype=np.int64)])
        self._num_streams, self._capacity = new_s, new_c
        logger.debug("segmenter storage grown to %d streams x %d steps", new_s, new_c)

    def _write(
        self, name: str, values: np.ndarray, streams: np.ndarray, pos: np.ndarray, label: str | None = None
    ) -> None:
        target = self._fields[name] if name in self._fields else self._info_fields[name]
        if values.shape[1:] != target.shape[2:]:
            raise ValidationError(
                label or name, f"per-step shape {target.shape[2:]} (as in earlier steps)", describe(values[0])
            )
        _check_row(target, values, label or name, shape=False)
        target[streams, pos] = values

    def _write_obs(self, prefix: str, value: ArrayObservation, streams: np.ndarray, pos: np.ndarray) -> None:
        for name, arr in _leaves(value, prefix):
            self._write(name, arr, streams, pos)

    def _info_columns(
        self, infos: Sequence[Mapping[str, Any] | None] | Mapping[str, Any] | None, size: int
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per requested key: values ``[B, ...]`` (zeros where absent) and a presence mask ``[B]``."""
        columns: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if infos is None:
            return columns
        keys = self.info_keys if SUCCESS_KEY in self.info_keys else (*self.info_keys, SUCCESS_KEY)
        for key in keys:
            strict = key in self.info_keys
            if isinstance(infos, Mapping):
                if key not in infos:
                    continue
                raw = infos[key]
                mask = infos.get(f"_{key}")
                present = np.ones(size, dtype=bool) if mask is None else np.asarray(mask, dtype=bool).reshape(size)
                try:
                    values = to_numpy(raw, f"info[{key!r}]")
                except ValidationError:
                    if strict:
                        raise
                    continue
                if values.ndim == 0 or values.shape[0] != size:
                    if strict:
                        raise ValidationError(
                            f"info[{key!r}]", f"a vector-env info array with {size} rows", describe(values)
                        )
                    continue
                if not present.all():
                    values = values.copy()
                    values[~present] = 0
                columns[key] = (values, present)
                continue
            present = np.zeros(size, dtype=bool)
            found: list[tuple[int, np.ndarray]] = []
            for i, info in enumerate(infos):
                if info is None or key not in info:
                    continue
                try:
                    found.append((i, to_numpy(info[key], f"info[{key!r}]")))
                except ValidationError:
                    if strict:
                        raise
                    continue
                present[i] = True
            if not found:
                continue
            first = found[0][1]
            values = np.zeros((size, *first.shape), dtype=first.dtype)
            for i, value in found:
                if value.shape != first.shape:
                    raise ValidationError(
                        f"info[{key!r}]", f"the same shape {first.shape} at every step", describe(value)
                    )
                values[i] = value
            columns[key] = (values, present)
        return columns

    def _write_infos(
        self, columns: Mapping[str, tuple[np.ndarray, np.ndarray]], streams: np.ndarray, pos: np.ndarray
    ) -> None:
        for key in self.info_keys:
            column = columns.get(key)
            if key not in self._info_fields:
                if column is None:
                    continue
                values = column[0]
                self._info_fields[key] = np.zeros(
                    (self._num_streams, self._capacity, *values.shape[1:]), dtype=values.dtype
                )
            if column is None:
                self._info_fields[key][streams, pos] = 0
            else:
                self._write(key, column[0], streams, pos, f"info[{key!r}]")

    def _emit(self, s: int, terminated: bool, truncated: bool, success: bool | None) -> Episode:
        length = int(self._length[s])
        fields = self._fields
        if self._obs_keys:
            states: ArrayObservation = {k: fields[f"obs.{k}"][s, :length].copy() for k in self._obs_keys}
            next_states: ArrayObservation = {k: fields[f"next_obs.{k}"][s, :length].copy() for k in self._obs_keys}
        else:
            states = fields["obs"][s, :length].copy()
            next_states = fields["next_obs"][s, :length].copy()
        infos = {k: v[s, :length].copy() for k, v in self._info_fields.items()} or None
        # The rows were validated when they were written (numeric, consistent shapes and dtypes):
        # the trusted constructor only checks them for NaN/inf.
        return Episode._trusted(
            states,
            next_states,
            fields["action"][s, :length].copy(),
            fields["reward"][s, :length],  # converted to a new float32 array
            terminated,
            truncated,
            infos,
            int(self._episode_id[s]),
            int(self._segment_start[s]),
            success,
        )

    def _carry(self, s: int) -> None:
        length = int(self._length[s])
        keep = int(self.overlap_after_cut(length))
        if not 0 <= keep < length:
            raise ValidationError("overlap_after_cut()", f"an int in [0, {length})", repr(keep))
        if keep:
            for table in (self._fields, self._info_fields):
                for arr in table.values():
                    arr[s, :keep] = arr[s, length - keep : length].copy()
        self._segment_start[s] += length - keep
        self._length[s] = keep
        self._carried[s] = keep

    def _clear(self, s: int) -> None:
        self._length[s] = 0
        self._carried[s] = 0
        self._episode_id[s] = -1
        self._segment_start[s] = 0


#: Reward types the single-step fast path converts with ``float()``.
_FAST_REWARDS = (float, int, np.floating, np.integer)


def _check_row(target: np.ndarray, value: np.ndarray, label: str, shape: bool = True) -> None:
    """Raise unless one step's ``value`` fits the storage ``target`` ``[streams, capacity, ...]``."""
    if shape and value.shape != target.shape[2:]:
        raise ValidationError(label, f"per-step shape {target.shape[2:]} (as in earlier steps)", describe(value))
    if value.dtype != target.dtype and not np.can_cast(value.dtype, target.dtype, "same_kind"):
        raise ValidationError(
            label, f"dtype {target.dtype} (as in earlier steps) or one that casts to it", f"dtype {value.dtype}"
        )


def _check_info_keys(info_keys: Sequence[str]) -> tuple[str, ...]:
    if isinstance(info_keys, str) or not isinstance(info_keys, Sequence):
        raise ValidationError("info_keys", "a sequence of info keys (e.g. a tuple of str)", describe(info_keys))
    for key in info_keys:
        if not isinstance(key, str) or not key:
            raise ValidationError("info_keys", "non-empty strings", repr(key))
    return tuple(dict.fromkeys(info_keys))


def _check_stream(stream: Any) -> int:
    if isinstance(stream, bool) or not isinstance(stream, (int, np.integer)) or stream < 0:
        raise ValidationError("stream", "an int >= 0 (e.g. a vector-env index)", describe(stream))
    return int(stream)


def _flags(value: Any, name: str, size: int) -> np.ndarray:
    arr = to_numpy(value, name).reshape(-1)
    if arr.shape[0] != size:
        raise ValidationError(name, f"{size} flags (one per row)", describe(arr))
    return arr.astype(bool, copy=False)


def _expand(value: ArrayObservation) -> ArrayObservation:
    if isinstance(value, dict):
        return {k: v[None] for k, v in value.items()}
    return value[None]


def _leaves(value: ArrayObservation, prefix: str) -> list[tuple[str, np.ndarray]]:
    """Storage names and arrays of an observation: ``obs`` or ``obs.<key>``."""
    if isinstance(value, dict):
        return [(f"{prefix}.{k}", v) for k, v in value.items()]
    return [(prefix, value)]
