"""Record a vector environment into a hippogym buffer: :class:`RecordEpisodesVector`.

The vector twin of :class:`~hippogym.wrappers.record.RecordEpisodes` (which re-exports it, as does
:mod:`hippogym.wrappers`): one segmenter stream per sub-env, each batch converted once and handed
to :meth:`~hippogym.segmentation.Segmenter.add_batch`, for every Gymnasium autoreset mode. The
module-level helpers below select, copy and merge rows of ``[N, ...]`` observations and vector
info dicts (vectorised over rows).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv, VectorWrapper

from hippogym.episode import Episode
from hippogym.errors import ValidationError, describe
from hippogym.segmentation import Segmenter
from hippogym.wrappers.recording import RecorderSink, make_segmenter, note_source, success_alias
from hippogym.wrappers.spaces import SpaceConverter, StoredArray

__all__ = ["RecordEpisodesVector"]

# The recorder's warnings keep the logger name they had before the split (hippogym.wrappers.record).
logger = logging.getLogger("hippogym.wrappers.record")


class RecordEpisodesVector(VectorWrapper, RecorderSink):
    """Record a vector environment's transitions into a buffer; one segmenter stream per sub-env.

    Works with ``SyncVectorEnv``, ``AsyncVectorEnv`` and any ``VectorEnv`` that declares
    ``metadata["autoreset_mode"]`` (a missing tag means ``NEXT_STEP``, Gymnasium's default). Each
    batch is converted once (vectorised) and handed to
    :meth:`~hippogym.segmentation.Segmenter.add_batch`. Per autoreset mode:

    * ``NEXT_STEP``: the step after a sub-env's episode ended is its reset step. It is not a
      transition and is not recorded; its observation starts the next episode.
    * ``SAME_STEP``: every step is a transition. For a sub-env whose episode ended, the returned
      observation is already the reset observation: the recorded next observation is
      ``infos["final_obs"][i]`` and its info keys (``is_success`` included) are read from
      ``infos["final_info"]``.
    * ``DISABLED``: every step of a running sub-env is recorded. Once a sub-env's episode ended,
      its further steps are ignored (and a warning is logged once) until the user resets it with
      ``reset(options={"reset_mask": mask})`` or a full ``reset()``.

    A ``reset()`` (full or masked) of a sub-env whose episode is still running hands the
    transitions recorded so far to the buffer (a unit ending with neither flag) and starts a new
    episode in that stream. ``flush()`` hands over all in-progress data; ``close()`` flushes too.
    What the environment returns is passed through untouched. Units completed by the same
    ``step`` go to ``buffer.add_episodes`` together (one encoder pass); with ``ingest_every > 1``
    they are batched across steps too, with the latency and hand-over points described in
    :class:`RecordEpisodes`.

    Args:
        env: The vector environment.
        buffer: Receives the units (``add_episode(Episode)``).
        segmenter: How to cut units (default ``TerminalSegmenter``); stream ``i`` is sub-env ``i``.
        info_keys: ``info`` keys recorded per step (added to the segmenter's own).
        ingest_every: Hand completed units to the buffer once at least this many of their
            transitions wait. ``1`` (default): at the end of the step that completed them.

    Attributes:
        episodes_recorded: Units handed to the buffer.
        transitions_recorded: Transitions in those units.
        pending_episodes: Completed units waiting for the next hand-over (``ingest_every > 1``).

    Raises:
        ValidationError: Unsupported spaces, a buffer without ``add_episode``, a bad segmenter, or
            an unknown autoreset mode.
    """

    def __init__(
        self,
        env: VectorEnv,
        buffer: Any,
        segmenter: Segmenter | None = None,
        info_keys: Sequence[str] = (),
        ingest_every: int = 1,
    ) -> None:
        VectorWrapper.__init__(self, env)
        self._init_sink(buffer, ingest_every)
        self.segmenter = make_segmenter(segmenter, info_keys)
        mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        try:
            self.autoreset_mode = mode if isinstance(mode, AutoresetMode) else AutoresetMode(mode)
        except ValueError as exc:
            raise ValidationError(
                "env.metadata['autoreset_mode']", "a gymnasium.vector.AutoresetMode", describe(mode)
            ) from exc
        self._n = int(env.num_envs)
        self._obs_conv = SpaceConverter(env.single_observation_space, "observation_space")
        self._act_conv = SpaceConverter(env.single_action_space, "action_space")
        spec = getattr(env, "spec", None) or getattr((getattr(env, "envs", None) or [None])[0], "spec", None)
        note_source(self.buffer, spec, env.single_observation_space, env.single_action_space)
        self._obs: StoredArray | None = None  # [N, ...] observations the next step starts from
        self._live = np.zeros(self._n, dtype=bool)  # the next step of sub-env i is a real transition
        self._warned = False
        self._streams = np.arange(self._n, dtype=np.int64)
        # The segmenter whose stored layout was found to match the converters (checked once): its
        # steps then skip add_batch's per-step input checks.
        self._direct_for: Segmenter | None = None
        self._not_direct_for: Segmenter | None = None  # a segmenter whose known layout does not match

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset all sub-envs, or those in ``options["reset_mask"]``; running episodes are flushed."""
        mask = None
        if options is not None and "reset_mask" in options:
            mask = np.array(options["reset_mask"], dtype=bool, copy=True).reshape(self._n)
        obs, info = self.env.reset(seed=seed, options=options)
        converted = self._obs_conv.batch(obs, self._n)
        if mask is None or self._obs is None:
            self._store(self.segmenter.flush())
            self.segmenter.reset()
            self._obs = converted
            self._live[:] = True
        else:
            flushed: list[Episode] = []
            for i in np.flatnonzero(mask):
                flushed += self.segmenter.flush(int(i))
                self.segmenter.reset(int(i))
            self._store(flushed)
            _assign_rows(self._obs, mask, converted)
            self._live[mask] = True
        return obs, info

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        """Step all sub-envs and record their real transitions (returns what the env returned)."""
        obs, rewards, terminations, truncations, infos = self.env.step(actions)
        if self._obs is None:
            if not self._warned:
                logger.warning("RecordEpisodesVector: step() before reset(); nothing is recorded until reset().")
                self._warned = True
            return obs, rewards, terminations, truncations, infos
        term = np.asarray(terminations, dtype=bool).reshape(self._n)
        trunc = np.asarray(truncations, dtype=bool).reshape(self._n)
        done = term | trunc
        current = self._obs_conv.batch(obs, self._n)
        rec = self._live  # read only: self._live is rebound, never changed in place, below
        next_rec = current
        step_infos: Mapping[str, Any] = infos
        if self.autoreset_mode == AutoresetMode.SAME_STEP and done.any():
            next_rec, step_infos = self._final_rows(current, infos, done)
        elif self.autoreset_mode == AutoresetMode.DISABLED and not rec.all() and not self._warned:
            logger.warning(
                "RecordEpisodesVector: sub-envs %s were stepped after their episode ended (autoreset DISABLED); "
                "their steps are ignored until they are reset with reset(options={'reset_mask': ...}).",
                np.flatnonzero(~rec).tolist(),
            )
            self._warned = True
        idx = self._streams if np.count_nonzero(rec) == self._n else np.flatnonzero(rec)
        if idx.size:
            acts = self._act_conv.batch(actions, self._n)
            rews = np.asarray(rewards, dtype=np.float64).reshape(self._n)
            infos_arg = step_infos if isinstance(step_infos, Mapping) else None
            if infos_arg is not None and done.any():
                infos_arg = success_alias(infos_arg)
            segmenter = self.segmenter
            if self._direct_for is segmenter or (self._not_direct_for is not segmenter and self._check_direct(self._n)):
                # Converted arrays of the layout checked once: no per-step input checks.
                if idx.size == self._n:
                    episodes = segmenter.add_batch_trusted(
                        self._obs,
                        acts,
                        rews,
                        term,
                        trunc,
                        next_rec,
                        infos_arg,
                        self._streams,  # type: ignore[arg-type]
                    )
                else:
                    episodes = segmenter.add_batch_trusted(
                        _take(self._obs, idx),  # type: ignore[arg-type]
                        _take(acts, idx),  # type: ignore[arg-type]
                        rews[idx],
                        term[idx],
                        trunc[idx],
                        _take(next_rec, idx),  # type: ignore[arg-type]
                        None if infos_arg is None else _select_rows(infos_arg, idx, self._n),
                        idx,
                    )
            elif idx.size == self._n:  # every sub-env made a real transition: no row selection
                episodes = segmenter.add_batch(self._obs, acts, rews, term, trunc, next_rec, infos_arg, idx)
            else:
                episodes = self.segmenter.add_batch(
                    _take(self._obs, idx),
                    _take(acts, idx),
                    rews[idx],
                    term[idx],
                    trunc[idx],
                    _take(next_rec, idx),
                    None if infos_arg is None else _select_rows(infos_arg, idx, self._n),
                    idx,
                )
            if episodes:
                self._store(episodes)
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            # Recorded rows continue from their next obs; reset-step rows start a new episode.
            self._obs = current
            self._live = ~(rec & done)
        elif self.autoreset_mode == AutoresetMode.SAME_STEP:
            self._obs = current  # rows that ended already hold their reset observation
        else:
            _assign_rows(self._obs, rec, current)
            self._live = rec & ~done
        return obs, rewards, terminations, truncations, infos

    def _final_rows(
        self, current: StoredArray, infos: Mapping[str, Any], done: np.ndarray
    ) -> tuple[StoredArray, Mapping[str, Any]]:
        """SAME_STEP: next observations and infos of ended sub-envs come from ``final_obs``/``final_info``."""
        final_obs = infos.get("final_obs")
        if final_obs is None:
            raise ValidationError(
                "infos['final_obs']",
                "present when a sub-env ends under AutoresetMode.SAME_STEP",
                f"keys {sorted(infos)}",
            )
        mask = np.asarray(infos.get("_final_obs", done), dtype=bool).reshape(self._n)
        next_rec = _copy(current)
        for i in np.flatnonzero(mask):
            _assign_row(next_rec, int(i), self._obs_conv.single(final_obs[i]))
        final_info = infos.get("final_info")
        if not isinstance(final_info, Mapping):
            return next_rec, infos
        final_mask = np.asarray(infos.get("_final_info", mask), dtype=bool).reshape(self._n)
        return next_rec, _merge_final_info(infos, final_info, final_mask, self._n)

    def flush(self) -> list[int]:
        """Hand all in-progress units and every waiting unit to the buffer.

        Returns:
            Ids of the units added.
        """
        ids = self._store(self.segmenter.flush())
        return ids + self._drain()

    def close(self, **kwargs: Any) -> None:
        """Flush in-progress data, then close the environment."""
        self.flush()
        super().close(**kwargs)


# ---------------------------------------------------------------------- batch helpers
def _take(value: StoredArray, idx: np.ndarray) -> StoredArray:
    if isinstance(value, dict):
        return {k: v[idx] for k, v in value.items()}
    return value[idx]


def _copy(value: StoredArray) -> StoredArray:
    if isinstance(value, dict):
        return {k: v.copy() for k, v in value.items()}
    return value.copy()


def _assign_rows(target: StoredArray, mask: np.ndarray, source: StoredArray) -> None:
    if isinstance(target, dict):
        for k, v in target.items():
            v[mask] = source[k][mask]  # type: ignore[index]
    else:
        target[mask] = source[mask]  # type: ignore[index]


def _assign_row(target: StoredArray, i: int, row: StoredArray) -> None:
    if isinstance(target, dict):
        for k, v in target.items():
            v[i] = row[k]  # type: ignore[index]
    else:
        target[i] = row


def _select_rows(infos: Mapping[str, Any], idx: np.ndarray, n: int) -> dict[str, Any]:
    """Rows ``idx`` of a vector info dict (arrays with ``n`` rows and their masks; nested dicts too)."""
    out: dict[str, Any] = {}
    for key, value in infos.items():
        if isinstance(value, Mapping):
            out[key] = _select_rows(value, idx, n)
        elif isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == n:
            out[key] = value[idx]
    return out


def _merge_final_info(
    infos: Mapping[str, Any], final_info: Mapping[str, Any], rows: np.ndarray, n: int
) -> dict[str, Any]:
    """The step's infos with ended rows replaced by their ``final_info`` (the last step's info)."""
    merged = {k: v for k, v in infos.items() if k not in ("final_info", "_final_info", "final_obs", "_final_obs")}
    for key, value in final_info.items():
        if (
            not isinstance(key, str)
            or key.startswith("_")
            or not isinstance(value, np.ndarray)
            or value.shape[:1] != (n,)
        ):
            continue
        present = rows & np.asarray(final_info.get(f"_{key}", np.ones(n, dtype=bool)), dtype=bool)
        base = merged.get(key)
        base_mask = np.asarray(
            merged.get(f"_{key}", np.ones(n, dtype=bool) if base is not None else np.zeros(n, dtype=bool)), dtype=bool
        )
        if isinstance(base, np.ndarray) and base.shape[1:] == value.shape[1:]:
            column = (
                base.copy()
                if np.can_cast(value.dtype, base.dtype, "same_kind")
                else base.astype(np.result_type(base, value))
            )
        else:
            column = np.zeros_like(value)
            base_mask = np.zeros(n, dtype=bool)
        column[rows] = 0
        column[present] = value[present]
        mask = base_mask.copy()
        mask[rows] = present[rows]
        merged[key], merged[f"_{key}"] = column, mask
    # Keys the reset info carries but the final step's info lacks do not belong to ended rows.
    for key in list(merged):
        if (
            not isinstance(key, str)
            or key.startswith("_")
            or key in final_info
            or not isinstance(merged[key], np.ndarray)
        ):
            continue
        if merged[key].shape[:1] != (n,):
            continue
        mask = np.asarray(merged.get(f"_{key}", np.ones(n, dtype=bool)), dtype=bool).copy()
        mask[rows] = False
        merged[f"_{key}"] = mask
    return merged
