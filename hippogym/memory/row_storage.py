"""The store's row storage: allocation at the first insert, growth by doubling, numpy views.

A mixin of :class:`~hippogym.memory.store.MemoryStore` (not usable on its own): the row tensors
(observations, next observations, actions, rewards, flags, steps, keys, key versions, infos) are
allocated once the first unit's shapes are known, with :data:`INITIAL_ROWS` rows (or twice the
first unit's length), and doubled whenever the ring first reaches rows past them, up to
``capacity``. Growth copies what is there (amortised O(1) per row) and refreshes the numpy views
that the hot paths read.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from hippogym.episode import Episode
from hippogym.memory.rows import KEY_DTYPES, grown, new_rows, numpy_view
from hippogym.types import ObservationLayout

__all__ = ["INITIAL_ROWS", "RowStorageMixin"]

logger = logging.getLogger("hippogym.memory.store")

#: Rows allocated at the first insert (at least twice its length); storage then doubles as needed.
INITIAL_ROWS = 4_096


class RowStorageMixin:
    """Row allocation, growth and views of :class:`~hippogym.memory.store.MemoryStore`."""

    def _row_views(self) -> None:
        """Refresh the numpy views of the row storage (after it is (re)allocated)."""
        self._v_obs = {k: numpy_view(v) for k, v in self.obs.items()}
        self._v_next_obs = {k: numpy_view(v) for k, v in self.next_obs.items()}
        self._v_actions = numpy_view(self.actions)
        self._v_rewards = numpy_view(self.rewards)
        self._v_terminated = numpy_view(self.terminated)
        self._v_truncated = numpy_view(self.truncated)
        self._v_steps = numpy_view(self.steps)
        self._v_keys = numpy_view(self.keys)
        self._v_key_version = numpy_view(self.key_version)
        self._v_row_slot = numpy_view(self.row_slot)

    def _allocate(self, episode: Episode) -> None:
        self._allocate_rows(
            ObservationLayout.infer(episode.states), episode.actions.shape[1:], episode.actions.dtype,
            rows=max(INITIAL_ROWS, 2 * len(episode)),
        )

    def _allocate_rows(
        self,
        layout: ObservationLayout,
        action_shape: Sequence[int],
        action_dtype: torch.dtype,
        info_fields: Mapping[str, tuple[Sequence[int], torch.dtype]] | None = None,
        rows: int | None = None,
        zero: bool = True,
    ) -> None:
        """Allocate the row storage for ``layout`` and the action and info shapes given.

        ``rows`` rows to start with (default: ``capacity``); :meth:`_ensure_rows` grows them.
        ``zero=False`` leaves the rows uninitialised, for a caller that writes every one of them
        next (a load); ``row_slot`` is always initialised.
        """
        self.layout = layout
        self.action_shape = tuple(action_shape)
        self.action_dtype = action_dtype
        cap = self.capacity if rows is None else min(self.capacity, max(int(rows), 1))
        self.rows_allocated = cap
        fill = 0 if zero else None

        def new(shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
            return new_rows(shape, dtype, fill)

        self.obs = {f.name: new((cap, *f.shape), f.dtype) for f in self.layout.fields}
        self.next_obs = {f.name: new((cap, *f.shape), f.dtype) for f in self.layout.fields}
        self.actions = new((cap, *self.action_shape), self.action_dtype)
        self.rewards = new((cap,), torch.float32)
        self.terminated = new((cap,), torch.bool)
        self.truncated = new((cap,), torch.bool)
        self.steps = new((cap,), torch.int64)
        self.keys = new((cap, self.embed_dim), KEY_DTYPES[self.key_dtype])
        self.key_version = new((cap,), torch.int64)
        self.infos: dict[str, Tensor] = {
            k: new((cap, *shape), dtype) for k, (shape, dtype) in (info_fields or {}).items()
        }
        self.row_slot = new_rows((self.capacity,), torch.int64, -1)
        self._row_views()
        per_row = sum(t[0].numel() * t.element_size() for t in self._row_tensors().values())
        gib = per_row * self.capacity / 2**30
        if gib > 4:
            logger.warning(
                "MemoryStore grows to %.1f GiB when its %d transitions are all used (%d bytes each).",
                gib, self.capacity, per_row,
            )

    def _ensure_rows(self, end: int) -> None:
        """Grow the row storage (doubling, at most ``capacity``) so that rows ``[0, end)`` exist."""
        if end <= self.rows_allocated:
            return
        n = min(self.capacity, max(end, 2 * self.rows_allocated))
        self.obs = {k: grown(v, n) for k, v in self.obs.items()}
        self.next_obs = {k: grown(v, n) for k, v in self.next_obs.items()}
        self.actions, self.rewards = grown(self.actions, n), grown(self.rewards, n)
        self.terminated, self.truncated = grown(self.terminated, n), grown(self.truncated, n)
        self.steps, self.keys, self.key_version = grown(self.steps, n), grown(self.keys, n), grown(self.key_version, n)
        self.infos = {k: grown(v, n) for k, v in self.infos.items()}
        self.rows_allocated = n
        self._row_views()

    def _row_tensors(self) -> dict[str, Tensor]:
        out = {f"obs.{k}": v for k, v in self.obs.items()}
        out.update({f"next_obs.{k}": v for k, v in self.next_obs.items()})
        out.update(
            action=self.actions,
            reward=self.rewards,
            terminated=self.terminated,
            truncated=self.truncated,
            step=self.steps,
            key=self.keys,
            key_version=self.key_version,
        )
        out.update({f"info.{k}": v for k, v in self.infos.items()})
        return out

    @property
    def allocated(self) -> bool:
        """Whether the row storage exists (after the first insert or a load)."""
        return self.layout is not None
