"""Semantic sampling: rows of the units retrieved for already-embedded query keys.

A unit is picked with probability ``softmax(score / temperature)`` among the ``k`` units the
store's MaxSim search returns for a query, then a row uniformly inside it, or, given row weights
(the prioritised sampler's sum tree: ``|TD error|`` or self-imitation priorities), a row with
probability proportional to its weight among the unit's rows (:meth:`SemanticSampler.draw_np` with
``weights``), so a retrieved episode is replayed where it still has something to teach. The sampler sees the
store only through its public numpy API (``search_np``, ``unit_starts_np``, ``unit_lengths_np``,
``record_hits_np``) and takes query keys already embedded: encoding queries is the replay
buffer's job (:mod:`hippogym.memory` does not import the encoders).
"""

from __future__ import annotations

import itertools
import math
from typing import Any, NamedTuple

import numpy as np
import torch

from hippogym.errors import EmptyMemoryError, ValidationError, describe
from hippogym.memory.samplers.base import Sampler, as_numpy, check_priorities

__all__ = ["Recall", "SemanticSampler"]


class Recall(NamedTuple):
    """A retrieval prepared for semantic draws (``[Q, k]`` arrays, ``-1`` slots are padding).

    Attributes:
        slots: Retrieved unit slots.
        pi: Softmax weight of each retrieved unit (0 for padding).
        cdf: Running sum of ``pi``, last column exactly 1.
        starts: First row of each retrieved unit.
        lengths: Rows of each retrieved unit.
        hit_slots: Valid retrieved slots, flat (one hit each).
        hits_unique: Whether ``hit_slots`` has no repeats.
        units: Distinct retrieved slots.
        row_mass: Semantic probability of one row of each of ``units``.
    """

    slots: np.ndarray
    pi: np.ndarray
    cdf: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    hit_slots: np.ndarray
    hits_unique: bool
    units: np.ndarray
    row_mass: np.ndarray


class SemanticSampler(Sampler):
    """Rows of the units retrieved for query keys, with their exact probabilities.

    Set the query with :meth:`set_query` (or pass a :class:`Recall` to :meth:`draw_np`); the last
    retrieval is cached while the keys (the same array object), the memory (its ``mutations``
    counter), ``k``, the temperature and the search mode are unchanged.

    Args:
        store: The memory (a :class:`~hippogym.memory.store.MemoryStore`).
        temperature: Softmax temperature over retrieval scores (> 0).
        exact: Exact MaxSim search instead of the index's fast path.
        generator: Generator of :meth:`sample_np` (shared, not copied; default: a fresh one).
    """

    def __init__(
        self, store: Any, temperature: float = 0.1, exact: bool = False, generator: torch.Generator | None = None
    ) -> None:
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ValidationError("generator", "a torch.Generator or None", describe(generator))
        self.temperature, self.exact = float(temperature), bool(exact)
        self.generator = torch.Generator().manual_seed(torch.Generator().seed()) if generator is None else generator
        self.query: Recall | None = None
        self._cache: tuple[tuple[Any, ...], np.ndarray, Recall] | None = None
        self._table: tuple[np.ndarray | None, Any, np.ndarray | None] = (None, None, None)
        super().__init__(store)

    # -- retrieval
    def recall(self, keys: np.ndarray, k: int, temperature: float | None = None, exact: bool | None = None) -> Recall:
        """Retrieve the ``k`` best units for each query key and prepare the draws.

        Args:
            keys: ``[Q, embed_dim]`` query keys (numpy).
            k: Units per query.
            temperature: Softmax temperature (default: :attr:`temperature`).
            exact: Exact search (default: :attr:`exact`).

        Returns:
            The prepared retrieval (cached, see the class docstring).
        """
        temperature = self.temperature if temperature is None else float(temperature)
        exact = self.exact if exact is None else bool(exact)
        store = self.store
        key = (store, store.mutations, store.index, k, exact, temperature)
        cached = self._cache
        if cached is not None and cached[1] is keys and cached[0] == key:
            return cached[2]
        scores, slots = store.search_np(keys, k, exact=exact)
        recall = self.prepare_single(scores, slots, temperature) if slots.shape[0] == 1 else None
        if recall is None:
            recall = self.prepare(scores, slots, temperature)
        self._cache = (key, keys, recall)
        return recall

    def set_query(self, keys: Any, k: int) -> Recall:
        """Retrieve for ``keys`` and make it the query of :meth:`sample_np`/:meth:`probability_np`.

        Args:
            keys: ``[Q, embed_dim]`` query keys (tensor or array).
            k: Units per query.

        Returns:
            The prepared retrieval.
        """
        self.query = self.recall(np.asarray(as_numpy(keys)), int(k))
        return self.query

    def prepare_single(self, scores: np.ndarray, slots: np.ndarray, temperature: float) -> Recall | None:
        """:meth:`prepare` for one query whose results are all valid, on Python floats.

        Args:
            scores: ``[1, k]`` scores.
            slots: ``[1, k]`` slots.
            temperature: Softmax temperature.

        Returns:
            The prepared retrieval, or ``None`` when a slot is padding (use :meth:`prepare`).
        """
        row = slots[0]
        if row.size == 0 or int(row.min()) < 0:
            return None
        inv_t = 1.0 / temperature
        values = scores[0].tolist()
        top = max(values)
        weights = [math.exp((v - top) * inv_t) for v in values]
        total = math.fsum(weights)
        pi = [w / total for w in weights]
        cdf = list(itertools.accumulate(pi))
        cdf[-1] = 1.0  # draws u < 1 then never run past the last unit
        store = self.store
        starts, lengths = store.unit_starts_np.take(slots), store.unit_lengths_np.take(slots)
        pi_arr = np.array([pi])
        hits_unique = len(set(row.tolist())) == row.size
        if hits_unique:
            units, row_mass = row, pi_arr[0] / lengths[0]
        else:
            units, inverse = np.unique(row, return_inverse=True)
            row_mass = np.bincount(inverse, weights=pi_arr[0]) / store.unit_lengths_np.take(units)
        return Recall(slots, pi_arr, np.array([cdf]), starts, lengths, row, hits_unique, units, row_mass)

    def prepare(self, scores: np.ndarray, slots: np.ndarray, temperature: float) -> Recall:
        """Softmax weights, running sums and unit tables of a retrieval (any number of queries).

        Args:
            scores: ``[Q, k]`` scores.
            slots: ``[Q, k]`` slots (``-1`` = padding).
            temperature: Softmax temperature.

        Returns:
            The prepared retrieval.
        """
        store = self.store
        valid = slots >= 0
        all_valid = bool(valid.all())
        logits = scores.astype(np.float64)
        logits *= 1.0 / temperature
        if not all_valid:
            logits[~valid] = -np.inf
        logits -= logits.max(axis=1, keepdims=True)
        pi = np.exp(logits)
        cdf = np.cumsum(pi, axis=1)
        total = cdf[:, -1:].copy()
        pi /= total
        cdf /= total
        cdf[:, -1] = 1.0  # draws u < 1 then never run past the last unit
        safe = slots if all_valid else np.where(valid, slots, 0)
        hit = slots.reshape(-1) if all_valid else slots[valid]
        # Probability of a row of each retrieved unit under one draw: pi / Q / length, summed
        # over the queries that retrieved the unit.
        if slots.shape[0] == 1:
            units, mass = hit, pi.reshape(-1) if all_valid else pi[valid]
        else:
            units, inverse = np.unique(hit, return_inverse=True)
            mass = np.bincount(inverse, weights=pi[valid] / slots.shape[0])
        lengths = store.unit_lengths_np.take(safe)
        return Recall(
            slots,
            pi,
            cdf,
            store.unit_starts_np.take(safe),
            lengths,
            hit,
            units.size == hit.size,
            units,
            mass / store.unit_lengths_np.take(units),
        )

    # -- draws
    def draw_np(self, recall: Recall, u: np.ndarray, weights: Any = None) -> np.ndarray:
        """Rows for ``n = len(u) // 2`` draws from ``2n`` uniforms in ``[0, 1)`` (draw ``i`` uses query ``i % Q``).

        Args:
            recall: The prepared retrieval.
            u: float64 uniforms: the first ``n`` pick units (inverse CDF), the rest rows inside them.
            weights: ``None`` (a row uniformly inside the unit) or a sum tree over rows (``prefix``,
                ``find``): a row with probability proportional to its leaf among the unit's rows
                (uniformly when the unit's leaves are all 0).

        Returns:
            int64 rows.
        """
        n = u.size // 2
        n_q = recall.slots.shape[0]
        if n_q == 1:
            pick = np.searchsorted(recall.cdf[0], u[:n])
            starts, lengths = recall.starts[0].take(pick), recall.lengths[0].take(pick)
        else:
            qidx = np.arange(n) % n_q
            pick = np.count_nonzero(recall.cdf[qidx] < u[:n, None], axis=1)
            starts, lengths = recall.starts[qidx, pick], recall.lengths[qidx, pick]
        if weights is None:
            offsets = u[n : 2 * n] * lengths
            return starts + offsets.astype(np.int64)
        lo, hi = np.split(weights.prefix(np.concatenate((starts, starts + lengths))), 2)
        span = hi - lo
        rows = weights.find(lo + u[n : 2 * n] * span)
        flat = span <= 0
        if flat.any():
            rows[flat] = starts[flat] + (u[n : 2 * n][flat] * lengths[flat]).astype(np.int64)
        return np.clip(rows, starts, starts + lengths - 1)  # float rounding at a unit's edge

    def weighted_probability_np(self, recall: Recall, rows: np.ndarray, slots: np.ndarray, weights: Any) -> np.ndarray:
        """Probability of each row in one semantic draw of :meth:`draw_np` with ``weights``.

        Args:
            recall: The prepared retrieval.
            rows: int64 rows.
            slots: Their unit slots (``-1``: no unit; probability 0).
            weights: The sum tree the draws used.

        Returns:
            float64 probabilities shaped like ``rows``.
        """
        store = self.store
        safe = np.maximum(slots, 0)
        per_row = self.row_mass_table(recall).take(safe)  # unit mass / length: the uniform case
        starts, lengths = store.unit_starts_np.take(safe), store.unit_lengths_np.take(safe)
        lo, hi = np.split(weights.prefix(np.concatenate((starts, starts + lengths))), 2)
        span = hi - lo
        weighted = per_row * lengths * weights.get(rows) / np.where(span > 0, span, 1.0)
        return np.where(slots >= 0, np.where(span > 0, weighted, per_row), 0.0)

    def record_hits(self, recall: Recall) -> None:
        """Count one hit for every retrieved unit of ``recall`` (feeds utility eviction).

        Args:
            recall: The prepared retrieval.
        """
        self.store.record_hits_np(recall.hit_slots, unique=recall.hits_unique)

    def row_mass_table(self, recall: Recall) -> np.ndarray:
        """Per-slot table of semantic row probabilities holding exactly ``recall``'s units.

        Args:
            recall: The prepared retrieval.

        Returns:
            float64 array indexed by unit slot (reused between calls; do not keep it).
        """
        store = self.store
        table, owner, units = self._table
        if table is None or table.size < store.unit_start.shape[0] or owner is not store:
            table = np.zeros(store.unit_start.shape[0], dtype=np.float64)
            units = None
        if units is not recall.units:
            if units is not None:
                table[units] = 0.0
            table[recall.units] = recall.row_mass
        self._table = (table, store, recall.units)
        return table

    def _need_query(self) -> Recall:
        if self.query is None:
            raise EmptyMemoryError("SemanticSampler has no query: call set_query first.")
        return self.query

    # -- the Sampler contract
    def sample_np(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` rows for the current query (:meth:`set_query`).

        Args:
            n: Number of rows.

        Returns:
            ``(rows, probs)``: int64 rows and the probability of drawing each in one draw.

        Raises:
            EmptyMemoryError: No query was set.
        """
        recall = self._need_query()
        u = torch.rand(2 * n, generator=self.generator, dtype=torch.float64).numpy()
        rows = self.draw_np(recall, u)
        return rows, self.probability_np(rows)

    def probability_np(self, rows: np.ndarray) -> np.ndarray:
        """Probability of drawing each row in one draw for the current query (0 outside its units).

        Args:
            rows: int64 row indices.

        Returns:
            float64 probabilities shaped like ``rows``.
        """
        recall = self._need_query()
        rows = np.asarray(rows, dtype=np.int64)
        slots = self.store.row_slot.numpy().take(rows)
        return np.where(slots >= 0, self.row_mass_table(recall).take(np.maximum(slots, 0)), 0.0)

    def update_priorities(self, rows: Any, priorities: Any) -> None:
        """Check the feedback; priorities do not change a semantic draw.

        Args:
            rows: Row indices.
            priorities: One value ``>= 0`` per row.
        """
        check_priorities(rows, priorities)

    def state_dict(self) -> dict[str, Any]:
        """Settings and generator state (retrievals are recomputed from the store)."""
        return {"temperature": self.temperature, "exact": self.exact, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`.

        Args:
            state: A dict returned by :meth:`state_dict`.
        """
        self.temperature, self.exact = float(state["temperature"]), bool(state["exact"])
        self.generator.set_state(torch.as_tensor(state["generator"], dtype=torch.uint8))
        self.query, self._cache = None, None
