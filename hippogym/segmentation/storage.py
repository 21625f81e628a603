"""Per-stream row storage of a segmenter: the in-progress segments and how they become episodes.

Storage: every per-step field (observation, next observation, action, reward, each recorded info
key) lives in one preallocated array of shape ``[streams, capacity, ...]``. A step of ``B`` streams
is written with a single fancy-indexed assignment per field, and the arrays double when a stream
outgrows them, so appending is amortised O(1) and nothing is re-stacked per step. Only cutting a
segment copies its rows out (into the ``Episode``).

:class:`SegmentStorage` owns these arrays and the per-stream bookkeeping (segment length, rows carried
over from the previous segment, environment episode id, start step) and turns a stream's rows into
an :class:`~hippogym.Episode`. It knows nothing about *when* to cut: that is
:class:`~hippogym.segmentation.Segmenter`, its subclass.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hippogym.episode import Episode
from hippogym.errors import ValidationError, describe
from hippogym.segmentation.arrays import (
    SUCCESS_KEY,
    ArrayObservation,
    check_info_keys,
    check_row,
    check_stream,
    leaves,
    to_numpy,
)

__all__ = ["SegmentStorage"]

logger = logging.getLogger(__name__)


class SegmentStorage:
    """Growing ``[streams, capacity, ...]`` arrays holding each stream's in-progress segment.

    Args:
        info_keys: ``info`` keys recorded per step (see :class:`~hippogym.segmentation.Segmenter`).

    Raises:
        ValidationError: ``info_keys`` is not a sequence of non-empty strings.
    """

    def __init__(self, info_keys: Sequence[str] = ()) -> None:
        self.info_keys = check_info_keys(info_keys)
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

    @property
    def layout_known(self) -> bool:
        """Whether the stored layout is fixed (after the first step): it never changes afterwards."""
        return self._obs_keys is not None

    @property
    def plain_layout(self) -> tuple[tuple[int, ...], np.dtype, tuple[int, ...], np.dtype] | None:
        """``(obs shape, obs dtype, action shape, action dtype)`` of a plain-array layout, once known.

        ``None`` before the first step and for Dict observations. Recorders ask
        :meth:`Segmenter.trusted_layout` whether their converters' layout is this one, then call
        :meth:`Segmenter.add_trusted` / :meth:`Segmenter.add_batch_trusted` without per-step checks.
        """
        if self._obs_dtype is None or self._act_dtype is None:
            return None
        return (self._obs_shape, self._obs_dtype, self._act_shape, self._act_dtype)  # type: ignore[return-value]

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
        s = check_stream(stream)
        return int(self._length[s] - self._carried[s]) if s < self._num_streams else 0

    def reset(self, stream: int | None = None) -> None:
        """Drop in-progress data; the next step of the stream starts a new environment episode.

        Args:
            stream: One stream, or ``None`` for all streams.
        """
        if stream is None:
            for s in range(self._num_streams):
                self._clear(s)
            return
        s = check_stream(stream)
        if s < self._num_streams:
            self._clear(s)

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
            check_row(target, value, f"info[{key!r}]")
            target[s, pos] = value
        if len(values) != len(self._info_fields):
            given = {key for key, _ in values}
            for key, target in self._info_fields.items():
                if key not in given:
                    target[s, pos] = 0

    def _prepare(
        self,
        obs: ArrayObservation,
        next_obs: ArrayObservation,
        actions: np.ndarray,
        streams: np.ndarray,
        remember_layout: bool,
    ) -> None:
        """Check a batch against the stored layout (set it at the first batch); grow to fit it.

        ``remember_layout``: store the plain-array observation layout for the single-step fast path
        (only when ``add_batch`` is not overridden, so that ``add`` may bypass it).
        """
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
                for name, arr in leaves(obs, prefix):
                    self._fields[name] = np.zeros((0, 0, *arr.shape[1:]), dtype=arr.dtype)
            self._fields["action"] = np.zeros((0, 0, *actions.shape[1:]), dtype=actions.dtype)
            self._fields["reward"] = np.zeros((0, 0), dtype=np.float64)
            if not keys and remember_layout:  # else add() must go through add_batch
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
        check_row(target, values, label or name, shape=False)
        target[streams, pos] = values

    def _write_obs(self, prefix: str, value: ArrayObservation, streams: np.ndarray, pos: np.ndarray) -> None:
        for name, arr in leaves(value, prefix):
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
        return Episode.from_validated(
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

    def _carry_rows(self, s: int, keep: int) -> None:
        """Start stream ``s``'s next segment with the last ``keep`` rows of the one just emitted."""
        length = int(self._length[s])
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

