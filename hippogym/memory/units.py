"""The unit table of :class:`~hippogym.memory.store.MemoryStore`: slots, views, geometry and queries.

A *unit* (one added episode or segment) lives in a *slot* of a growable struct-of-arrays table:
start row, length, return, ids, success flag, retrieval hits, rescue count, and the key centroid
and angular radius that prune retrieval. :class:`UnitTableMixin` holds the methods that allocate,
grow and read that table; :class:`~hippogym.memory.store.MemoryStore` mixes it in and owns the
rows, the ring and the attributes these methods use (``embed_dim``, ``order``, ``keys``, ...).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from hippogym.memory.rows import float32_rows, host_array, keys_as_float32

__all__ = ["UnitTableMixin"]


class UnitTableMixin:
    """Unit-table methods of :class:`~hippogym.memory.store.MemoryStore` (not usable on its own)."""

    def _init_units(self, n: int) -> None:
        d = self.embed_dim
        self.unit_start = torch.zeros(n, dtype=torch.int64)
        self.unit_length = torch.zeros(n, dtype=torch.int64)
        self.unit_return = torch.zeros(n, dtype=torch.float32)
        self.unit_id = torch.full((n,), -1, dtype=torch.int64)
        self.unit_source = torch.full((n,), -1, dtype=torch.int64)
        self.unit_start_step = torch.zeros(n, dtype=torch.int64)
        self.unit_success = torch.full((n,), -1, dtype=torch.int8)
        self.unit_hits = torch.zeros(n, dtype=torch.float32)
        self.unit_rescues = torch.zeros(n, dtype=torch.int32)
        self.unit_added = torch.zeros(n, dtype=torch.int64)
        self.unit_alive = torch.zeros(n, dtype=torch.bool)
        self.centroid = torch.zeros(n, d, dtype=torch.float32)
        self.theta = torch.full((n,), math.pi, dtype=torch.float32)  # angular radius (+ slack)
        # Added to centroid scores on the fast retrieval path: 0 for live slots, -inf for free ones.
        self._dead = np.full(n, -np.inf, dtype=np.float32)
        self._unit_views()

    def _unit_views(self) -> None:
        """Refresh the numpy views of the unit table (after it is (re)allocated)."""
        self._v_start = self.unit_start.numpy()
        self._v_length = self.unit_length.numpy()
        self._v_return = self.unit_return.numpy()
        self._v_id = self.unit_id.numpy()
        self._v_source = self.unit_source.numpy()
        self._v_start_step = self.unit_start_step.numpy()
        self._v_success = self.unit_success.numpy()
        self._v_hits = self.unit_hits.numpy()
        self._v_rescues = self.unit_rescues.numpy()
        self._v_added = self.unit_added.numpy()
        self._v_alive = self.unit_alive.numpy()
        self._v_centroid = self.centroid.numpy()
        self._v_theta = self.theta.numpy()

    #: Unit-table tensors, in the order they are grown and saved.
    _UNIT_FIELDS = (
        "unit_start",
        "unit_length",
        "unit_return",
        "unit_id",
        "unit_source",
        "unit_start_step",
        "unit_success",
        "unit_hits",
        "unit_rescues",
        "unit_added",
        "unit_alive",
        "centroid",
        "theta",
    )

    def _grow_units(self) -> None:
        old = self.unit_start.shape[0]
        new = old * 2
        for name in self._UNIT_FIELDS:
            t = getattr(self, name)
            grown = torch.empty((new, *t.shape[1:]), dtype=t.dtype)
            grown[:old] = t
            fill = {"unit_alive": False, "unit_id": -1, "unit_source": -1, "unit_success": -1, "theta": math.pi}
            grown[old:] = fill.get(name, 0)
            setattr(self, name, grown)
        dead = np.full(new, -np.inf, dtype=np.float32)
        dead[:old] = self._dead
        self._dead = dead
        self._unit_views()

    # ------------------------------------------------------------------ public views for parts
    # Samplers, eviction policies, indexes and the consolidator read the unit table and the keys
    # through these (numpy views sharing memory with the tensors; re-read after inserts, since the
    # unit table can be reallocated when it grows). Nothing outside store.py and its mixins touches
    # a private name of the store. What eviction policies and indexes read is listed by the protocols in
    # hippogym/memory/views.py (UnitTable, StoreView), what samplers read by SampledStore: keep
    # those in step when a part starts reading something new.
    @property
    def unit_starts_np(self) -> np.ndarray:
        """First row of every slot's unit (``[num_slots_allocated]`` int64 view)."""
        return self._v_start

    @property
    def unit_lengths_np(self) -> np.ndarray:
        """Rows of every slot's unit (int64 view)."""
        return self._v_length

    @property
    def unit_returns_np(self) -> np.ndarray:
        """Undiscounted return of every slot's unit (float32 view)."""
        return self._v_return

    @property
    def unit_hits_np(self) -> np.ndarray:
        """Retrieval hits of every slot's unit (float32 view)."""
        return self._v_hits

    @property
    def unit_rescues_np(self) -> np.ndarray:
        """Times eviction retained every slot's unit (int32 view)."""
        return self._v_rescues

    @property
    def centroids_np(self) -> np.ndarray:
        """Unit centroids (``[slots, embed_dim]`` float32 view)."""
        return self._v_centroid

    @property
    def dead_mask_np(self) -> np.ndarray:
        """0 for live slots, -inf for free ones (add it to centroid scores to mask free slots)."""
        return self._dead

    @property
    def unit_added_np(self) -> np.ndarray:
        """Insertion counter of every slot's unit (int64 numpy view; larger = inserted later)."""
        return self._v_added

    @property
    def row_slots_np(self) -> np.ndarray | None:
        """Unit slot of every row, ``-1`` for rows that hold no transition (int64 numpy view)."""
        return self._v_row_slot

    @property
    def keys_np(self) -> np.ndarray | None:
        """Row keys as a numpy view (``None`` before the first insert, or when keys are on a device)."""
        return self._v_keys

    def rekey(self, rows: Tensor, keys: Tensor, version: int) -> None:
        """Overwrite the keys of ``rows`` (made by encoder ``version``); call :meth:`update_geometry` after.

        Args:
            rows: ``[n]`` row indices.
            keys: ``[n, embed_dim]`` new keys (cast to the store's key dtype).
            version: Encoder version that made them.
        """
        self.keys[rows] = keys.to(self.keys.dtype)
        self.key_version[rows] = int(version)
        self.mutations += 1
        self.index.on_rekey(self, np.asarray(host_array(torch.as_tensor(rows)), dtype=np.int64).reshape(-1))

    def update_geometry(self, slots: Tensor, *, rebuild_index: bool = True) -> None:
        """Recompute centroid and radius of ``slots`` from their keys (after :meth:`rekey`).

        Args:
            slots: Unit slots whose keys changed.
            rebuild_index: Rebuild the whole retrieval index (default: after a full refresh), or
                update it for ``slots`` only (a partial refresh: cost proportional to them).
        """
        self._update_geometry(slots)
        if rebuild_index:
            self.index.rebuild(self)
        else:
            ids = np.asarray(host_array(torch.as_tensor(slots)), dtype=np.int64).reshape(-1)
            self.index.on_units_rekeyed(self, ids)

    # ------------------------------------------------------------------ geometry for retrieval
    def _update_geometry(self, slots: Tensor) -> None:
        """Recompute centroid and angular radius of ``slots`` from their keys.

        Unit by unit on contiguous key slices (each fits in cache): about 10x faster than a
        vectorised pass, which has to gather every key and expand every centroid to its rows.
        """
        if slots.numel() == 0:
            return
        if self._v_keys is not None:
            ids = np.asarray(host_array(torch.as_tensor(slots)), dtype=np.int64).reshape(-1)
            starts, lengths = self._v_start.take(ids).tolist(), self._v_length.take(ids).tolist()
            for slot, start, length in zip(ids.tolist(), starts, lengths):
                self._geometry_one(slot, start, length)
            self.mutations += 1
            return
        rows, seg = self.rows_of(slots)
        keys = keys_as_float32(self.keys[rows])
        sums = torch.zeros(slots.numel(), self.embed_dim).index_add_(0, seg, keys)
        cent = torch.nn.functional.normalize(sums, dim=1)
        cos = (keys * cent[seg]).sum(1)
        min_cos = torch.full((slots.numel(),), 1.0).scatter_reduce_(0, seg, cos, "amin")
        self.centroid[slots] = cent
        # A small slack keeps the bound valid under float rounding.
        self.theta[slots] = torch.acos(min_cos.clamp(-1.0, 1.0)) + 1e-3
        self.mutations += 1

    def _geometry_one(self, slot: int, start: int, length: int) -> None:
        """:meth:`_update_geometry` for one unit of rows ``[start, start + length)`` (numpy)."""
        if self._v_keys is None:
            self._update_geometry(torch.tensor([slot]))
            return
        keys = float32_rows(self._v_keys[start : start + length])
        total = keys.sum(0)
        cent = total / max(float(np.sqrt(total @ total)), 1e-12)
        min_cos = float((keys @ cent).min())
        self._v_centroid[slot] = cent
        self._v_theta[slot] = math.acos(min(max(min_cos, -1.0), 1.0)) + 1e-3

    def rows_of(self, slots: Tensor) -> tuple[Tensor, Tensor]:
        """Rows of the given units, concatenated, and the position of each row's unit in ``slots``."""
        lengths = self.unit_length[slots]
        seg = torch.repeat_interleave(torch.arange(slots.numel()), lengths)
        first = torch.cumsum(lengths, 0) - lengths
        offsets = torch.arange(int(lengths.sum())) - first[seg]
        return self.unit_start[slots][seg] + offsets, seg

    def maxsim(self, query: Tensor, slots: Tensor) -> Tensor:
        """Score of each unit for one query: the best cosine over its transitions' keys."""
        lengths = self.unit_length.index_select(0, slots)
        longest = int(lengths.max()) if slots.numel() else 0
        if slots.numel() * longest <= 2 * int(lengths.sum()) + 64:
            # Pad every unit to the longest by repeating its last row (a max is unchanged by
            # repeats): one gather, one matvec, one reduction.
            steps = torch.minimum(torch.arange(longest).unsqueeze(0), (lengths - 1).unsqueeze(1))
            rows = (self.unit_start.index_select(0, slots).unsqueeze(1) + steps).reshape(-1)
            scores = keys_as_float32(self.keys.index_select(0, rows)) @ query
            return scores.view(slots.numel(), longest).amax(1)
        rows, seg = self.rows_of(slots)
        scores = keys_as_float32(self.keys.index_select(0, rows)) @ query
        return torch.full((slots.numel(),), -math.inf).scatter_reduce_(0, seg, scores, "amax")

    def refresh_geometry(self) -> None:
        """Recompute all centroids/radii (after keys changed) and rebuild the index."""
        self.update_geometry(self.live_slots())

    # ------------------------------------------------------------------ queries
    def live_slots(self) -> Tensor:
        """Slots of the units in memory, oldest first."""
        return torch.tensor(list(self.order), dtype=torch.int64)

    def live_slots_np(self) -> np.ndarray:
        """:meth:`live_slots` as a numpy array."""
        return np.fromiter(self.order, dtype=np.int64, count=len(self.order))

    def random_slots(self, n: int) -> Tensor:
        """Up to ``n`` live slots drawn uniformly (with replacement) by rejection."""
        return torch.from_numpy(self.random_slots_np(n))

    def random_slots_np(self, n: int) -> np.ndarray:
        """:meth:`random_slots` as a numpy array (same draws)."""
        if not self.order:
            return np.empty(0, dtype=np.int64)
        for _ in range(8):
            cand = torch.randint(0, self.num_slots, (2 * n + 8,), generator=self.generator).numpy()
            cand = cand[self._v_alive.take(cand)]
            if cand.size >= n:
                return cand[:n]
        return self.live_slots_np()[:n]

    def return_stats(self) -> tuple[float, float]:
        """Mean and standard deviation of the returns of the units in memory."""
        n = max(len(self.order), 1)
        mean = self._ret_sum / n
        var = max(self._ret_sq / n - mean * mean, 0.0)
        return mean, math.sqrt(var)

    @property
    def num_units(self) -> int:
        """Units (episodes/segments) in memory."""
        return len(self.order)

    def record_hits(self, slots: Tensor) -> None:
        """Count retrievals (feeds the utility eviction policy)."""
        self.record_hits_np(np.asarray(host_array(torch.as_tensor(slots)), dtype=np.int64).reshape(-1))

    def record_hits_np(self, slots: np.ndarray, *, unique: bool = False) -> None:
        """:meth:`record_hits` for a numpy array of slots (repeats count once each).

        Args:
            slots: Slots retrieved (a slot may repeat).
            unique: The caller knows ``slots`` has no repeats (a faster path).
        """
        if unique:
            self._v_hits[slots] += np.float32(1.0)
        else:
            np.add.at(self._v_hits, slots, np.float32(1.0))
