"""Rebuilding and persisting a :class:`~hippogym.memory.store.MemoryStore`.

:class:`StoreStateMixin` holds the methods that turn the store into episodes (:meth:`unit_episode`,
:meth:`episodes`), a JSON config, a flat ``state_dict`` and a saved file, and back.
:class:`~hippogym.memory.store.MemoryStore` mixes it in; the methods use the store's attributes and
its unit-table and ring helpers.
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor

from hippogym.episode import Episode, Observation
from hippogym.errors import DimensionMismatchError, describe
from hippogym.types import ObservationLayout

__all__ = ["StoreStateMixin"]

_S = TypeVar("_S", bound="StoreStateMixin")


class StoreStateMixin:
    """Episode export, config, state dict and save/load of :class:`~hippogym.memory.store.MemoryStore`."""

    def unit_episode(self, slot: int) -> Episode:
        """Rebuild the unit in ``slot`` as an :class:`Episode` (copies)."""
        start, size = int(self.unit_start[slot]), int(self.unit_length[slot])
        rows = slice(start, start + size)

        def obs_of(bank: dict[str, Tensor]) -> Observation:
            data = {k: v[rows].clone() for k, v in bank.items()}
            return data if self.layout.is_dict else next(iter(data.values()))

        success = int(self.unit_success[slot])
        source = int(self.unit_source[slot])
        return Episode(
            states=obs_of(self.obs),
            next_states=obs_of(self.next_obs),
            actions=self.actions[rows].clone(),
            rewards=self.rewards[rows].clone(),
            terminated=self.terminated[rows].clone(),
            truncated=self.truncated[rows].clone(),
            infos={k: v[rows].clone() for k, v in self.infos.items()} or None,
            episode_id=None if source < 0 else source,
            start_step=int(self.unit_start_step[slot]),
            success=None if success < 0 else bool(success),
        )

    def episodes(self) -> Iterator[Episode]:
        """Rebuild every stored unit as an :class:`Episode`, oldest first."""
        for slot in list(self.order):
            yield self.unit_episode(slot)

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict[str, Any]:
        """JSON description of the store (shapes, dtypes, policies)."""
        return {
            "embed_dim": self.embed_dim,
            "capacity": self.capacity,
            "key_dtype": self.key_dtype,
            "eviction": self.eviction.config(),
            "index": self.index.config(),
            "layout": None if self.layout is None else self.layout.to_json(),
            "action_shape": None if self.action_shape is None else list(self.action_shape),
            "action_dtype": None if self.action_dtype is None else str(self.action_dtype).replace("torch.", ""),
            "info_fields": {
                k: {"shape": list(v.shape[1:]), "dtype": str(v.dtype)[6:]}
                for k, v in getattr(self, "infos", {}).items()
            },
        }

    @classmethod
    def from_config(cls: type[_S], config: Mapping[str, Any]) -> _S:
        """Build an empty store from :meth:`config` (then :meth:`load_state_dict`)."""
        return cls(
            embed_dim=int(config["embed_dim"]),
            capacity=int(config["capacity"]),
            eviction=dict(config["eviction"]),
            index=dict(config["index"]),
            key_dtype=str(config["key_dtype"]),
        )

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to rebuild the store exactly, as flat tensors plus scalars.

        Rows are listed unit by unit in age order (oldest first); ``rows`` gives each one's
        physical position so a reload reproduces the ring and therefore sampling exactly. As with
        ``torch.nn.Module.state_dict``, row tensors may be views of the store's storage (when the
        rows form one run): copy them to keep a snapshot across later inserts.
        """
        slots = self.live_slots()
        state: dict[str, Any] = {"config": self.config()}
        if self.allocated and slots.numel():
            rows, _ = self.rows_of(slots)
        else:
            rows = torch.empty(0, dtype=torch.int64)
        state["rows"] = rows
        if self.allocated:
            span = _contiguous(rows)
            for name, t in self._row_tensors().items():
                # Rows in one run (the ring has not wrapped since the oldest unit): views, no copy.
                state[f"row.{name}"] = t[span[0] : span[1]] if span is not None else t.index_select(0, rows)
        for name in self._UNIT_FIELDS:
            if name == "unit_alive":
                continue
            state[name] = getattr(self, name).index_select(0, slots)
        state["unit_slot"] = slots
        state["scalars"] = {
            "tail": self.tail,
            "num_slots": self.num_slots,
            "high_water": self.high_water,
            "next_unit_id": self.next_unit_id,
            "inserts": self.inserts,
            "total_added": self.total_added,
            "free_slots": list(self.free_slots),
            "rows_allocated": self.rows_allocated,
        }
        state["generator"] = self.generator.get_state()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore from :meth:`state_dict` (the store must have been built with the same config)."""
        config = state["config"]
        if int(config["embed_dim"]) != self.embed_dim or int(config["capacity"]) != self.capacity:
            raise DimensionMismatchError(
                "state_dict",
                f"embed_dim={self.embed_dim}, capacity={self.capacity}",
                f"embed_dim={config['embed_dim']}, capacity={config['capacity']}",
            )
        self.layout = None
        # The unit table at its final size at once (it doubles from 64 as units are added).
        need = max(int(state["scalars"]["num_slots"]), 1)
        self._init_units(64 << max(0, (need - 1) // 64).bit_length())
        self._reset_ring()
        span = None
        if config.get("layout") is not None:
            info_fields = {
                k: (tuple(v["shape"]), getattr(torch, v["dtype"])) for k, v in config.get("info_fields", {}).items()
            }
            rows = torch.as_tensor(state["rows"], dtype=torch.int64)
            span = _contiguous(rows)
            self._allocate_rows(
                ObservationLayout.from_json(config["layout"]),
                config["action_shape"],
                getattr(torch, config["action_dtype"]),
                info_fields,
                # As many rows as the saved store had (memories saved before storage grew: its high water).
                rows=max(
                    _int_or_zero(state["scalars"].get("rows_allocated")), int(state["scalars"]["high_water"]),
                    int(rows.max()) + 1 if rows.numel() else 0, 1,
                ),
                # Rows in one run are written whole below and the rest zeroed: each byte is touched once.
                zero=span is None,
            )
            tensors = self._row_tensors()
            for name, t in tensors.items():
                value = state[f"row.{name}"]
                src = value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
                if src.shape[:1] != (rows.shape[0],):
                    raise DimensionMismatchError(f"row.{name}", f"{rows.shape[0]} rows", describe(src))
                # One copy, straight from the (possibly memory-mapped, read-only) source into the rows
                # (row storage is on the CPU, see RowStorageMixin).
                dst = t.numpy()
                if span is not None:
                    dst[: span[0]] = 0
                    dst[span[0] : span[1]] = src
                    dst[span[1] :] = 0
                else:
                    dst[rows.numpy()] = src
        slots = torch.as_tensor(state["unit_slot"], dtype=torch.int64)
        scalars = state["scalars"]
        while self.unit_start.shape[0] < max(int(scalars["num_slots"]), 1):
            self._grow_units()
        for name in self._UNIT_FIELDS:
            if name in ("unit_alive", "centroid", "theta"):
                continue
            getattr(self, name)[slots] = torch.as_tensor(state[name]).to(getattr(self, name).dtype)
        self.unit_alive[slots] = True
        if self.allocated and slots.numel():
            slots_np = slots.numpy()
            lengths, starts = self._v_length[slots_np], self._v_start[slots_np]
            ends = np.cumsum(lengths)
            if span is not None and int(starts[0]) == span[0] and int(ends[-1]) == span[1] - span[0] and (
                np.array_equal(starts[1:], span[0] + ends[:-1])
            ):
                # The units lie back to back in age order over the saved run of rows (a ring that
                # has not wrapped): each row's unit without building the row list (O(units) check).
                self._v_row_slot[span[0] : span[1]] = np.repeat(slots_np, lengths)
            else:
                rows_, seg = self.rows_of(slots)
                self.row_slot[rows_] = slots[seg]
        self.order = deque(slots.tolist())
        self.tail, self.num_slots = int(scalars["tail"]), int(scalars["num_slots"])
        self.high_water, self.next_unit_id = int(scalars["high_water"]), int(scalars["next_unit_id"])
        self.inserts, self.total_added = int(scalars["inserts"]), int(scalars["total_added"])
        self.free_slots = [int(s) for s in scalars["free_slots"]]
        self.num_transitions = int(self.unit_length[slots].sum()) if slots.numel() else 0
        returns = self.unit_return[slots].double()
        self._ret_sum, self._ret_sq = float(returns.sum()), float((returns * returns).sum())
        self.generator.set_state(torch.as_tensor(state["generator"], dtype=torch.uint8))
        self._dead[:] = np.where(self._v_alive, np.float32(0.0), np.float32(-np.inf))
        self.mutations += 1
        if self.allocated and not self._restore_geometry(state, slots):
            self._update_geometry(slots)
        self.index.rebuild(self)
        for listener in self.listeners:
            listener.on_reset()

    def _restore_geometry(self, state: Mapping[str, Any], slots: torch.Tensor) -> bool:
        """Take the units' centroids and angular radii from ``state`` when it holds valid ones.

        They are derived from the keys (see ``_update_geometry``); a saved memory carries them so
        that loading does not recompute them unit by unit. Returns ``False`` (recompute) when they
        are missing, of the wrong shape, or not finite and in range.
        """
        centroid, theta = state.get("centroid"), state.get("theta")
        if centroid is None or theta is None:
            return False
        # Copies: the sources may be read-only views of a memory-mapped file.
        centroid, theta = _float32_copy(centroid), _float32_copy(theta)
        n = slots.numel()
        if tuple(centroid.shape) != (n, self.embed_dim) or tuple(theta.shape) != (n,):
            return False
        if n and not (
            bool(torch.isfinite(centroid).all())
            and bool(((theta >= 0) & (theta <= math.pi + 0.01)).all())
            and bool((((norms := centroid.norm(dim=1)) - 1).abs() < 1e-3).logical_or(norms < 1e-6).all())
        ):
            return False
        self.centroid[slots] = centroid
        self.theta[slots] = theta
        self.mutations += 1
        return True

    def save(self, path: str | os.PathLike[str], *, compression: str | None = None) -> Path:
        """Save the store (episodes, keys, bookkeeping; no encoder) atomically with ``hippo_format``."""
        from hippogym.memory.persist import save_store

        return save_store(self, path, compression=compression)

    @classmethod
    def load(cls: type[_S], path: str | os.PathLike[str], *, verify: str = "full") -> _S:
        """Load a store saved by :meth:`save` (or the memory part of a saved buffer)."""
        from hippogym.memory.persist import load_store

        return load_store(cls, path, verify=verify)


def _float32_copy(value: Any) -> torch.Tensor:
    """A float32 tensor owning a copy of ``value`` (a tensor or a possibly read-only array)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to(torch.float32, copy=True)
    return torch.from_numpy(np.array(value, dtype=np.float32))


def _contiguous(rows: torch.Tensor) -> tuple[int, int] | None:
    """``(first, end)`` when ``rows`` is the run ``first, first + 1, ..., end - 1``, else ``None``."""
    n = rows.numel()
    if n == 0:
        return None
    r = rows.numpy()
    first, last = int(r[0]), int(r[-1])
    if last - first != n - 1 or (n > 1 and not bool((np.diff(r) == 1).all())):
        return None
    return first, last + 1


def _int_or_zero(value: Any) -> int:
    """A saved size hint: an int as it is, anything else (absent, malformed) as 0."""
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else 0
