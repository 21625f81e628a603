"""The default retrieval index: nearest **transitions** first, then their units.

A unit's score for a query is MaxSim, the best cosine between the query and the keys of its
transitions. The top ``k`` units are therefore the units of the best-scoring transitions, taken in
order of first appearance: searching transitions and grouping the hits by unit is exact MaxSim, with
no bound to trust (a unit's centroid says little about its best match when its keys are spread out,
which is what untrained and consolidated encoders both give).

Two paths, chosen automatically by the memory's size (:attr:`TransitionIndex.mode` reports which):

* **exact** (``mode == "exact"``): brute force, one matrix product over every stored key in chunks,
  a per-unit maximum over each unit's contiguous rows (``np.maximum.reduceat``), then the top
  ``k``. Used while the memory holds fewer than ``exact_below`` transitions, and for every search
  with ``exact=True`` (what :meth:`~hippogym.HippocampalReplayBuffer.retrieve` asks by default), so
  an exact search is never slower than brute force because it *is* brute force.
* **ivf** (``mode == "ivf"``): an inverted-file index over the transition keys. Spherical k-means
  splits the key space into ``nlist`` cells (``sqrt(N)`` by default); every key is filed in the cell
  of its nearest centre. A cell keeps, contiguously, each key's projection on the keys' top
  ``scan_dim`` principal directions (by default a quarter of the key width, at least 24: 24 for the
  default 64-d keys, 32 for 128-d ones). A query scores the centres, scans the ``nprobe`` best
  cells in full with projected scores (one BLAS matrix-vector product per cell), re-scores the
  best ``rerank`` candidates exactly with their stored keys, then groups those by unit. A query
  built from a stored observation equals that transition's key, whose cell is the query's best
  cell, so it finds its own transition (score 1, up to ties) unless ``rerank`` other keys project
  closer to it than its own.

**Maintenance is incremental.** The store tells the index which rows got new keys (insert, a
retained unit's move, a key refresh): those rows are queued and filed at the next search, in one
batch (one matrix product assigns them to cells). Entries carry the row's *stamp* (bumped at every
key write); an entry whose row was overwritten, moved or evicted no longer matches and is skipped,
and cells are compacted once stale entries outnumber live ones (amortised O(1) per insert). The
cells are re-fitted (k-means again, every key re-filed) only when the memory has grown fourfold
since the last fit, or after a wholesale key refresh (:meth:`rebuild`).

**Ties** (identical keys in different units, e.g. every visit of the same corridor cell) are
broken by recency: the unit inserted last ranks first. The exact path applies the rule over the
whole memory; the IVF path over the candidates it scanned (all copies of a key sit in one cell,
so exact duplicates are always scanned together).

Costs (one thread): the exact path is the fast choice up to ``exact_below`` (8,192 transitions by
default); the IVF path scans about ``nprobe * N / nlist`` projected keys per query, then reads
``rerank`` stored keys. An entry costs ``4 * scan_dim + 8`` bytes (a float32 projection, an int32
row and an int32 stamp), cells keep a quarter more room to grow, and every row of the store has a
4-byte stamp: about 150 bytes per stored transition with the default 64-d keys, reported by
:meth:`TransitionIndex.describe` as ``bytes``. ``benchmarks/bench_memory.py`` reports recall
against the exact path and the cost of every path, at 10k / 100k / 1M.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hippogym.errors import ValidationError, describe
from hippogym.memory.index import RetrievalIndex
from hippogym.memory.rows import dot_rows, float32_rows
from hippogym.memory.views import StoreView

__all__ = ["TransitionIndex", "top_units"]

logger = logging.getLogger(__name__)

_MODES = ("auto", "exact", "ivf")


def top_units(
    scores: np.ndarray,
    slots: np.ndarray | Callable[[np.ndarray], np.ndarray],
    added: np.ndarray,
    k: int,
    *,
    first: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best distinct units among scored transitions (MaxSim, ties: most recent unit first).

    Only the best candidates are looked at: ``first`` of them, four times more each round while
    they hold fewer than ``k`` units or a tie at the cut could change the answer, so the result is
    exactly what sorting every candidate would give.

    Args:
        scores: ``[C]`` float32 scores of candidate transitions.
        slots: ``[C]`` unit slot of each candidate, or a function giving the slots of candidate
            positions (``-1`` for a candidate that no longer holds a transition: it is skipped).
        added: Insertion counter of every slot (larger = newer), indexed by slot.
        k: Units wanted.
        first: Candidates examined in the first round.

    Returns:
        ``(scores, slots)`` of at most ``k`` units, best first.
    """
    c = scores.shape[0]
    m = min(c, max(first, 4 * k))
    resolve = slots if callable(slots) else slots.take
    while True:
        part = np.argpartition(scores, c - m)[c - m :] if m < c else np.arange(c)
        s, u = scores.take(part), resolve(part)
        cut = s.min() if m < c else -math.inf  # every candidate left out scores <= cut
        order = np.argsort(s)[::-1]
        s, u = s.take(order), u.take(order)
        if s.size > 1 and bool((s[1:] == s[:-1]).any()):  # ties: the newest unit first among equals
            order = np.lexsort((-added.take(u), -s))
            s, u = s.take(order), u.take(order)
        units, first_at = np.unique(u, return_index=True)
        first_at = np.sort(first_at[units >= 0])[:k]
        if m == c or (first_at.size == k and s[first_at[-1]] > cut):
            return s.take(first_at), u.take(first_at)
        m = min(c, 4 * m)


def _slots(row_slot: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Unit slot of each row, ``-1`` for rows marked ``-1``."""
    return np.where(rows >= 0, row_slot.take(np.maximum(rows, 0)), -1)


class TransitionIndex(RetrievalIndex):
    """Retrieval over transition keys: exact brute force when small, an IVF index when large.

    See the module docstring for the algorithm, its maintenance and its tie rule.

    Args:
        mode: ``"auto"`` (default: exact below ``exact_below`` live transitions, IVF from there),
            ``"exact"`` (always brute force) or ``"ivf"`` (IVF from ``min_ivf`` transitions).
        exact_below: Transitions under which ``"auto"`` searches exactly.
        nlist: IVF cells (default: ``sqrt`` of the transitions at fitting time, at least 16).
        nprobe: Cells scanned per query.
        min_ivf: Fewest transitions an IVF index is fitted on (``"ivf"`` mode searches exactly
            below it).
        chunk: Keys scored per block of the exact path.
        seed: Seed of the k-means initialisation (the index never draws from the store's
            generator, so it does not change the store's sampling stream).
        scan_dim: Width of what cells keep of a key (its projection on the keys' principal
            directions); ``"auto"`` (default) is a quarter of the key width, at least 24 (or the
            whole key if narrower): 24 for 64-d keys, 32 for 128-d. ``None`` keeps whole keys (no
            re-scoring step). On ``bench_keys.py``'s random walk, 16 of 64 dimensions gave
            recall@5 of 0.91 against exact search, 24 gave 0.96-0.97.
        rerank: Candidates re-scored exactly with their stored keys per query (more when they hold
            fewer than ``k`` units).
    """

    name = "transition"

    def __init__(
        self,
        mode: str = "auto",
        exact_below: int = 8_192,
        nlist: int | None = None,
        nprobe: int = 8,
        min_ivf: int = 1_024,
        chunk: int = 65_536,
        seed: int = 0,
        scan_dim: int | str | None = "auto",
        rerank: int = 128,
    ) -> None:
        if mode not in _MODES:
            raise ValidationError("index.mode", f"one of {list(_MODES)}", repr(mode))
        for name, value, low in (
            ("exact_below", exact_below, 0), ("nprobe", nprobe, 1), ("min_ivf", min_ivf, 16), ("chunk", chunk, 1),
            ("rerank", rerank, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValidationError(f"index.{name}", f"an int >= {low}", describe(value))
        if nlist is not None and (not isinstance(nlist, int) or nlist < 1):
            raise ValidationError("index.nlist", "None or an int >= 1", describe(nlist))
        if scan_dim is not None and scan_dim != "auto" and (
            not isinstance(scan_dim, int) or isinstance(scan_dim, bool) or scan_dim < 1
        ):
            raise ValidationError("index.scan_dim", "'auto', None or an int >= 1", describe(scan_dim))
        self.scan_dim, self.rerank = scan_dim, rerank
        self.mode_setting, self.exact_below, self.nlist, self.nprobe = mode, exact_below, nlist, nprobe
        self.min_ivf, self.chunk, self.seed = min_ivf, chunk, int(seed)
        self.last_mode = "exact"  # the path the last search took (diagnostics)
        self.last_scanned = 0  # keys scored by the last search (diagnostics)
        self.fits = 0  # k-means fits so far (diagnostics)
        self.fallbacks = 0  # IVF queries answered by exact search because their cells came up short
        self._reset_ivf()
        self._stamp: np.ndarray | None = None
        self._pending: list[np.ndarray] = []
        self._pending_rows = 0
        self._segments: tuple[int, np.ndarray, np.ndarray] | None = None
        # 16-bit keys: a float32 unit-norm copy of rows [0, len) for the exact path of a small memory
        # (at most 4 * exact_below rows, 8 MB for 64-d keys), kept up to date by the store's events,
        # so a fresh query there costs what it costs with float32 keys. None: not built (yet).
        self._mirror: np.ndarray | None = None

    # ------------------------------------------------------------------ state
    def _reset_ivf(self) -> None:
        # Cells live in one pool: cell c holds entries [off[c], off[c] + size[c]) of the pool
        # arrays, with room up to off[c] + cap[c]. A full cell moves to the pool's end (its old
        # region becomes garbage until the next compaction).
        self._centres: np.ndarray | None = None  # [nlist, d] float32, unit norm
        self._basis: np.ndarray | None = None  # [scan_dim, d] orthonormal rows: what cells store of a key
        self._pool_keys = np.empty((0, 0), dtype=np.float32)
        self._pool_rows = np.empty(0, dtype=np.int32)
        self._pool_stamps = np.empty(0, dtype=np.int32)
        self._pool_end = 0
        self._cell_off = np.zeros(0, dtype=np.int64)
        self._cell_sizes = np.zeros(0, dtype=np.int64)
        self._cell_cap = np.zeros(0, dtype=np.int64)
        self._fitted_on = 0
        self._entries = 0  # entries filed, stale ones included

    @property
    def mode(self) -> str:
        """The path searches take now: ``"exact"`` or ``"ivf"`` (``"auto"`` resolved)."""
        return self.last_mode

    def choose(self, store: StoreView, exact: bool | None) -> str:
        """The path a search with ``exact`` takes on ``store`` now: ``"exact"`` or ``"ivf"``."""
        n = store.num_transitions
        if exact or self.mode_setting == "exact" or n < self.min_ivf:
            return "exact"
        if self.mode_setting == "auto" and n < self.exact_below:
            return "exact"
        return "ivf"

    def _stamps(self, store: StoreView) -> np.ndarray:
        if self._stamp is None or self._stamp.shape[0] != store.capacity:
            # int32: a stamp only has to differ from the one an entry was filed with (it wraps after
            # 2**32 writes of one row, far beyond any run).
            self._stamp = np.zeros(store.capacity, dtype=np.int32)
        return self._stamp

    # ------------------------------------------------------------------ store events
    def _mirror_rows(self, store: StoreView, rows: np.ndarray | slice, end: int) -> None:
        """Copy the new keys of ``rows`` (all below ``end``) into the float32 mirror, if there is one."""
        mirror = self._mirror
        if mirror is None:
            return
        if end > mirror.shape[0]:
            if end > 4 * self.exact_below:  # too big for a copy: the exact path converts as it scans
                self._mirror = None
                return
            grown = np.empty((min(max(end, 2 * mirror.shape[0]), 4 * self.exact_below), mirror.shape[1]), np.float32)
            grown[: mirror.shape[0]] = mirror
            self._mirror = mirror = grown
        mirror[rows] = float32_rows(store.keys_np[rows])

    def _mirrored_keys(self, store: StoreView) -> np.ndarray:
        """What the exact path scans: the store's keys, or their float32 mirror (16-bit, small)."""
        keys = store.keys_np  # the store keeps keys on the CPU in a numpy-viewable dtype (float32 or float16)
        hw = store.high_water
        if keys.dtype == np.float32 or hw > 4 * self.exact_below:
            return keys
        if self._mirror is None or self._mirror.shape[0] < hw:
            self._mirror = float32_rows(keys[: max(hw, min(2 * hw, 4 * self.exact_below))])
        return self._mirror

    def on_rows(self, store: StoreView, start: int, length: int) -> None:  # noqa: D102
        self._mirror_rows(store, slice(start, start + length), start + length)
        stamp = self._stamps(store)
        stamp[start : start + length] += 1
        if self._centres is not None:
            self._queue(store, np.arange(start, start + length, dtype=np.int64))

    def _queue(self, store: StoreView, rows: np.ndarray) -> None:
        if self._pending_rows + rows.size > store.capacity:
            # More queued than the memory holds (searches have been exact for a while): re-fit
            # from scratch at the next IVF search instead of holding the queue.
            self._reset_ivf()
            self._pending, self._pending_rows = [], 0
            return
        self._pending.append(rows)
        self._pending_rows += int(rows.size)

    def on_rekey(self, store: StoreView, rows: np.ndarray) -> None:  # noqa: D102
        if rows.size:
            self._mirror_rows(store, rows, int(rows.max()) + 1)
        stamp = self._stamps(store)
        stamp[rows] += 1
        if self._centres is not None:
            self._queue(store, np.asarray(rows, dtype=np.int64).reshape(-1))

    def on_units_rekeyed(self, store: StoreView, slots: Any) -> None:  # noqa: D102
        pass  # their rows were queued by on_rekey and are filed at the next IVF search

    def rebuild(self, store: StoreView) -> None:
        """Keys changed wholesale (a full refresh or a reload): re-fit the cells at the next IVF search."""
        self._stamps(store)[:] += 1
        self._reset_ivf()
        self._pending, self._pending_rows, self._segments = [], 0, None
        self._mirror = None

    # ------------------------------------------------------------------ search
    def search(self, store: StoreView, queries: Tensor, k: int, exact: bool | None = None) -> tuple[Tensor, Tensor]:  # noqa: D102
        q = np.ascontiguousarray(queries.detach().cpu().numpy(), dtype=np.float32)
        s, i = self.search_np(store, q, k, exact)
        return torch.from_numpy(s), torch.from_numpy(i)

    def search_np(  # noqa: D102
        self, store: StoreView, queries: np.ndarray, k: int, exact: bool | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        path = self.choose(store, exact)
        self.last_mode = path
        if path == "ivf":
            self._sync(store)
            return self._ivf_search(store, queries, k)
        return self._exact_search(store, queries, k)

    # -- exact
    def _unit_segments(self, store: StoreView) -> tuple[np.ndarray, np.ndarray]:
        """Live slots and the interleaved ``[start, end, start, end, ...]`` of their rows."""
        cached = self._segments
        if cached is not None and cached[0] == store.mutations:
            return cached[1], cached[2]
        slots = store.live_slots_np()
        starts = store.unit_starts_np.take(slots)
        bounds = np.empty(2 * slots.size, dtype=np.int64)
        bounds[0::2] = starts
        bounds[1::2] = starts + store.unit_lengths_np.take(slots)
        self._segments = (store.mutations, slots, bounds)
        return slots, bounds

    def exact_scores(self, store: StoreView, queries: np.ndarray) -> np.ndarray:
        """Cosine of every query with every stored row ``[Q, high_water + 1]`` (last column ``-inf``).

        Rows that hold no transition get garbage scores: mask them with the store's row slots.
        """
        hw = store.high_water
        out = np.empty((queries.shape[0], hw + 1), dtype=np.float32)
        out[:, hw] = -np.inf
        q_t = np.ascontiguousarray(queries.T)
        keys = self._mirrored_keys(store)
        for lo in range(0, hw, self.chunk):
            hi = min(hw, lo + self.chunk)
            if queries.shape[0] == 1:
                dot_rows(keys[lo:hi], queries[0], out[0, lo:hi])
            else:
                block = np.empty((hi - lo, queries.shape[0]), dtype=np.float32)
                dot_rows(keys[lo:hi], q_t, block)
                out[:, lo:hi] = block.T
        self.last_scanned = hw * queries.shape[0]
        return out

    def _exact_search(self, store: StoreView, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        slots, bounds = self._unit_segments(store)
        n_q = queries.shape[0]
        k_out = min(k, slots.size)
        out_s = np.full((n_q, k), -np.inf, dtype=np.float32)
        out_i = np.full((n_q, k), -1, dtype=np.int64)
        if slots.size == 0:
            return out_s, out_i
        added = store.unit_added_np
        block = max(1, (1 << 24) // max(store.high_water, 1))  # queries per pass: <= 64 MB of scores
        scanned = 0
        for lo in range(0, n_q, block):
            scores = self.exact_scores(store, queries[lo : lo + block])
            scanned += self.last_scanned
            per_unit = np.maximum.reduceat(scores, bounds, axis=1)[:, 0::2]  # [q, units]: exact MaxSim
            for j in range(per_unit.shape[0]):
                s, u = top_units(per_unit[j], slots, added, k_out, first=max(4 * k_out, 8))
                out_s[lo + j, : s.size], out_i[lo + j, : u.size] = s, u
        self.last_scanned = scanned
        return out_s, out_i

    # -- IVF
    def _fit(self, store: StoreView) -> None:
        """k-means over (a sample of) the live keys, then file every live row."""
        rows = np.flatnonzero(store.row_slots_np[: store.high_water] >= 0)
        n = rows.size
        nlist = self.nlist or max(16, int(round(math.sqrt(n))))
        nlist = max(1, min(nlist, n // 8))
        rng = np.random.default_rng(self.seed + self.fits)
        sample = rows if n <= 32 * nlist else np.sort(rng.choice(rows, 32 * nlist, replace=False))
        x = torch.from_numpy(self._keys_of(store, sample))
        centres = x[torch.from_numpy(rng.choice(sample.size, nlist, replace=False))].clone()
        for _ in range(8):
            assign = (x @ centres.T).argmax(1)
            sums = torch.zeros_like(centres).index_add_(0, assign, x)
            counts = torch.bincount(assign, minlength=nlist)
            empty = counts == 0
            if bool(empty.any()):  # re-seed empty cells on random keys
                pick = torch.from_numpy(rng.choice(sample.size, int(empty.sum()), replace=True))
                sums[empty] = x[pick]
            centres = torch.nn.functional.normalize(sums, dim=1)
        self._reset_ivf()
        self._centres = np.ascontiguousarray(centres.numpy(), dtype=np.float32)
        width = self.scan_width(store.embed_dim)
        if width is not None and width < store.embed_dim:
            # The keys' principal directions (uncentred: inner products are what is preserved).
            _, _, vt = torch.linalg.svd(x, full_matrices=False)
            self._basis = np.ascontiguousarray(vt[:width].numpy(), dtype=np.float32)
        self._fitted_on = n
        self.fits += 1
        self._pending, self._pending_rows = [], 0
        self._layout(store, *self._assign(store, rows), nlist)
        logger.info("TransitionIndex: fitted %d cells on %d transitions (fit %d)", nlist, n, self.fits)

    def scan_width(self, embed_dim: int) -> int | None:
        """What cells keep of a ``embed_dim``-wide key (``None``: the whole key)."""
        width = max(24, embed_dim // 4) if self.scan_dim == "auto" else self.scan_dim
        return None if width is None or width >= embed_dim else width

    def _width(self, store: StoreView) -> int:
        return store.embed_dim if self._basis is None else self._basis.shape[0]

    def _scan_keys(self, store: StoreView, rows: np.ndarray) -> np.ndarray:
        """What the cells keep of the keys of ``rows``: the keys, or their projection on the basis."""
        keys = self._keys_of(store, rows)
        return keys if self._basis is None else np.ascontiguousarray(keys @ self._basis.T)

    @staticmethod
    def _keys_of(store: StoreView, rows: np.ndarray) -> np.ndarray:
        return float32_rows(store.keys_np.take(rows, axis=0))

    def _assign(self, store: StoreView, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cell of each of ``rows`` (nearest centre); returns ``(cells, rows, stamps)`` sorted by cell."""
        cells = np.empty(rows.size, dtype=np.int64)
        for lo in range(0, rows.size, self.chunk):
            hi = min(rows.size, lo + self.chunk)
            cells[lo:hi] = (self._keys_of(store, rows[lo:hi]) @ self._centres.T).argmax(1)
        order = np.argsort(cells, kind="stable")
        rows = rows[order]
        return cells[order], rows, self._stamps(store).take(rows)

    def _layout(self, store: StoreView, cells: np.ndarray, rows: np.ndarray, stamps: np.ndarray, nlist: int) -> None:
        """Lay out a fresh pool holding exactly ``rows`` (sorted by cell), with room to grow."""
        sizes = np.bincount(cells, minlength=nlist).astype(np.int64)
        cap = sizes + sizes // 4 + 8
        off = np.zeros(nlist, dtype=np.int64)
        np.cumsum(cap[:-1], out=off[1:])
        total = int(cap.sum())
        room = total + total // 8 + 1024
        self._pool_keys = np.empty((room, self._width(store)), dtype=np.float32)
        self._pool_rows = np.full(room, -1, dtype=np.int32)
        self._pool_stamps = np.zeros(room, dtype=np.int32)
        first = np.zeros(nlist, dtype=np.int64)
        np.cumsum(sizes[:-1], out=first[1:])
        pos = off[cells] + (np.arange(rows.size) - first[cells])
        for lo in range(0, rows.size, self.chunk):
            hi = min(rows.size, lo + self.chunk)
            self._pool_keys[pos[lo:hi]] = self._scan_keys(store, rows[lo:hi])
        self._pool_rows[pos] = rows
        self._pool_stamps[pos] = stamps
        self._cell_off, self._cell_sizes, self._cell_cap, self._pool_end = off, sizes, cap, total
        self._entries = int(rows.size)

    def _file(self, store: StoreView, rows: np.ndarray) -> None:
        """Append ``rows`` (live, current keys) to their nearest cells."""
        if rows.size == 0:
            return
        cells, rows, stamps = self._assign(store, rows)
        keys = self._scan_keys(store, rows)
        touched, first, counts = np.unique(cells, return_index=True, return_counts=True)
        for cell, lo, cnt in zip(touched.tolist(), first.tolist(), counts.tolist()):
            size = int(self._cell_sizes[cell])
            if size + cnt > self._cell_cap[cell]:
                self._relocate(cell, 2 * (size + cnt))
            at = int(self._cell_off[cell]) + size
            self._pool_keys[at : at + cnt] = keys[lo : lo + cnt]
            self._pool_rows[at : at + cnt] = rows[lo : lo + cnt]
            self._pool_stamps[at : at + cnt] = stamps[lo : lo + cnt]
            self._cell_sizes[cell] = size + cnt
        self._entries += rows.size

    def _relocate(self, cell: int, cap: int) -> None:
        """Move ``cell`` to the end of the pool with room for ``cap`` entries (growing the pool)."""
        end = self._pool_end
        if end + cap > self._pool_rows.shape[0]:
            room = 2 * (end + cap)
            keys = np.empty((room, self._pool_keys.shape[1]), dtype=np.float32)
            keys[:end] = self._pool_keys[:end]
            rows = np.full(room, -1, dtype=np.int32)
            rows[:end] = self._pool_rows[:end]
            stamps = np.zeros(room, dtype=np.int32)
            stamps[:end] = self._pool_stamps[:end]
            self._pool_keys, self._pool_rows, self._pool_stamps = keys, rows, stamps
        off, size = int(self._cell_off[cell]), int(self._cell_sizes[cell])
        self._pool_keys[end : end + size] = self._pool_keys[off : off + size]
        self._pool_rows[end : end + size] = self._pool_rows[off : off + size]
        self._pool_stamps[end : end + size] = self._pool_stamps[off : off + size]
        self._pool_rows[off : off + size] = -1
        self._cell_off[cell], self._cell_cap[cell], self._pool_end = end, cap, end + cap

    def _compact(self, store: StoreView) -> None:
        """Re-lay the pool with the live entries only (stale entries and moved cells' old regions go)."""
        nlist = self._cell_sizes.size
        cells = np.repeat(np.arange(nlist), self._cell_sizes)
        pos = np.repeat(self._cell_off - np.concatenate(([0], np.cumsum(self._cell_sizes)[:-1])), self._cell_sizes)
        pos += np.arange(cells.size)
        rows, stamps = self._pool_rows[pos], self._pool_stamps[pos]
        ok = (store.row_slots_np.take(rows) >= 0) & (self._stamps(store).take(rows) == stamps)
        self._layout(store, cells[ok], rows[ok], stamps[ok], nlist)

    def _sync(self, store: StoreView) -> None:
        """Fit the cells if needed, file queued rows, compact when stale entries dominate."""
        live = store.num_transitions
        if self._centres is None or live >= 4 * max(self._fitted_on, 1) or self._pending_rows > live:
            self._fit(store)
            return
        if self._pending:
            rows = np.unique(np.concatenate(self._pending))
            self._pending, self._pending_rows = [], 0
            rows = rows[store.row_slots_np.take(rows) >= 0]
            self._file(store, rows)
        if self._entries > 2 * live + 1_024 or self._pool_end > 3 * live + 4_096:
            self._compact(store)

    def _ivf_search(self, store: StoreView, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        n_q = queries.shape[0]
        k_out = min(k, store.num_units)
        out_s = np.full((n_q, k), -np.inf, dtype=np.float32)
        out_i = np.full((n_q, k), -1, dtype=np.int64)
        sizes, offs, pool = self._cell_sizes, self._cell_off, self._pool_keys
        nlist = sizes.size
        nprobe = min(self.nprobe, nlist)
        row_slot, stamp, added = store.row_slots_np, self._stamps(store), store.unit_added_np
        pool_rows, pool_stamps, basis = self._pool_rows, self._pool_stamps, self._basis
        coarse = queries @ self._centres.T  # [Q, nlist]
        scan_q = queries if basis is None else np.ascontiguousarray(queries @ basis.T)
        scanned = 0
        for qi in range(n_q):
            if nprobe < nlist:
                cells = np.argpartition(coarse[qi], nlist - nprobe)[nlist - nprobe :]
            else:
                cells = np.arange(nlist)
            starts = np.zeros(cells.size + 1, dtype=np.int64)
            np.cumsum(sizes.take(cells), out=starts[1:])
            total = int(starts[-1])
            if total == 0:
                continue
            scores = np.empty(total, dtype=np.float32)
            q = scan_q[qi]
            for cell, lo, hi in zip(cells.tolist(), starts[:-1].tolist(), starts[1:].tolist()):
                if hi > lo:
                    off = int(offs[cell])
                    np.dot(pool[off : off + hi - lo], q, out=scores[lo:hi])
            scanned += total
            base = offs.take(cells) - starts[:-1]  # pool position = base[cell's block] + candidate position

            def rows_of(part: np.ndarray, base: np.ndarray = base, starts: np.ndarray = starts) -> np.ndarray:
                """Rows of candidate positions; -1 where the entry is stale."""
                pos = base.take(np.searchsorted(starts, part, side="right") - 1) + part
                rows = pool_rows.take(pos)
                return np.where(stamp.take(rows) == pool_stamps.take(pos), rows, -1)

            if basis is None:
                s, u = top_units(scores, lambda part: _slots(row_slot, rows_of(part)), added, k_out)
            else:
                s, u = self._rerank(store, queries[qi], scores, rows_of, k_out)
            out_s[qi, : s.size], out_i[qi, : u.size] = s, u
        # A query whose probed cells hold fewer than k live units (their entries were evicted or moved
        # since the cells were fitted) is answered exactly: a search never returns fewer units than exist.
        short = np.flatnonzero((out_i >= 0).sum(1) < k_out)
        if short.size:
            out_s[short], out_i[short] = self._exact_search(store, queries[short], k)
            self.fallbacks += int(short.size)
        self.last_scanned = scanned
        return out_s, out_i

    def _rerank(
        self,
        store: StoreView,
        query: np.ndarray,
        approx: np.ndarray,
        rows_of: Callable[[np.ndarray], np.ndarray],
        k: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact scores of the best ``rerank`` candidates by projected score, then their top units.

        More candidates (four times as many a round) only when those hold fewer than ``k`` units.
        """
        total = approx.size
        m = min(total, max(self.rerank, 4 * k))
        row_slot, added = store.row_slots_np, store.unit_added_np
        while True:
            part = np.argpartition(approx, total - m)[total - m :] if m < total else np.arange(total)
            rows = rows_of(part)
            rows = rows[rows >= 0]
            slots = row_slot.take(rows)
            live = slots >= 0
            if not live.all():
                rows, slots = rows[live], slots[live]
            if rows.size:
                exact = self._keys_of(store, rows) @ query
                s, u = top_units(exact, slots, added, k, first=rows.size)
            else:
                s, u = np.empty(0, np.float32), np.empty(0, np.int64)
            if u.size >= k or m == total:
                return s, u
            m = min(total, 4 * m)

    # ------------------------------------------------------------------ reporting
    def describe(self, store: StoreView | None = None) -> dict[str, Any]:
        """What the index does now: the path, cells, entries (for stats and benchmarks)."""
        out: dict[str, Any] = {
            "type": self.name,
            "setting": self.mode_setting,
            "mode": self.last_mode if store is None else self.choose(store, None),
            "cells": int(self._cell_sizes.size),
            "pool": int(self._pool_end),
            "bytes": int(
                self._pool_keys.nbytes + self._pool_rows.nbytes + self._pool_stamps.nbytes
                + (0 if self._stamp is None else self._stamp.nbytes)
                + (0 if self._mirror is None else self._mirror.nbytes)
            ),
            "entries": int(self._entries),
            "fitted_on": int(self._fitted_on),
            "nprobe": self.nprobe,
            "exact_below": self.exact_below,
            "fallbacks": self.fallbacks,
            "scan_width": None if self._basis is None else int(self._basis.shape[0]),
        }
        return out

    def config(self) -> dict[str, Any]:  # noqa: D102
        return {
            "type": self.name, "mode": self.mode_setting, "exact_below": self.exact_below, "nlist": self.nlist,
            "nprobe": self.nprobe, "min_ivf": self.min_ivf, "chunk": self.chunk, "seed": self.seed,
            "scan_dim": self.scan_dim, "rerank": self.rerank,
        }
