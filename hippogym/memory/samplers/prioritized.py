"""Prioritised (TD-error) sampling over a sum tree.

:class:`PrioritizedSampler` listens to the store so its tree follows inserts, moves and evictions
without any rebuild. Sampling and priority updates are numpy end to end (``*_np`` methods); the
tensor methods of :class:`~hippogym.memory.samplers.base.Sampler` wrap them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from hippogym.errors import EmptyMemoryError, ValidationError
from hippogym.memory.samplers.base import SampledStore, Sampler, as_numpy, check_priorities, live_mask
from hippogym.memory.sumtree import SumTree

__all__ = ["PrioritizedSampler"]


_numpy = as_numpy  # the old private name


class PrioritizedSampler(Sampler):
    """Proportional prioritised replay: ``P(i) ∝ p_i ** alpha``.

    New rows get the largest priority seen so far, so every transition is replayed at least once
    with high probability.

    Args:
        store: The memory whose rows are sampled.
        alpha: Priority exponent (0 = uniform).
        eps: Added to ``|td_error|`` so no priority is zero.
        seed: Seed of the sampler's numpy generator.
    """

    def __init__(self, store: SampledStore, alpha: float = 0.6, eps: float = 1e-6, seed: int | None = None) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise ValidationError("alpha", "a float in [0, 1]", repr(alpha))
        self.store, self.alpha, self.eps = store, float(alpha), float(eps)
        self.tree = SumTree(store.capacity)
        self.max_priority = 1.0
        self.generator = torch.Generator().manual_seed(torch.Generator().seed() if seed is None else int(seed))
        super().__init__(store)
        self.on_reset()

    # -- store events
    def on_write(self, start: int, length: int) -> None:
        """New rows get the largest priority seen so far."""
        self.tree.set_range(start, np.full(length, self.max_priority**self.alpha))

    def on_evict(self, start: int, length: int) -> None:
        """Evicted rows get priority 0."""
        self.tree.clear(start, length)

    def on_move(self, src: int, dst: int, length: int) -> None:
        """Priorities follow moved rows."""
        values = self.tree.get(np.arange(src, src + length)).copy()
        self.tree.clear(src, length)
        self.tree.set_range(dst, values)

    def on_reset(self) -> None:
        """Rebuild the tree: every live row gets the largest priority seen so far."""
        self.tree = SumTree(self.store.capacity)
        if self.store.allocated and self.store.num_transitions:
            rows, _ = self.store.rows_of(self.store.live_slots())
            self.tree.set(rows.numpy(), np.full(rows.numel(), self.max_priority**self.alpha))

    # -- sampling
    def sample_np(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` rows, stratified over the priority mass.

        Args:
            n: Number of rows.

        Returns:
            ``(rows, probs)``: int64 rows and the probability of each in one draw.

        Raises:
            EmptyMemoryError: No row has priority mass.
        """
        total = self.tree.total
        if total <= 0:
            raise EmptyMemoryError("Cannot sample from an empty memory: add episodes first.")
        mass = (np.arange(n) + torch.rand(n, generator=self.generator, dtype=torch.float64).numpy()) * (total / n)
        rows = self.tree.find(np.minimum(mass, total * (1 - 1e-12)))
        probs = self.tree.get(rows) / total
        return rows, probs

    def probability_np(self, rows: np.ndarray) -> np.ndarray:
        """Probability of drawing each row in one prioritised draw.

        Args:
            rows: int64 row indices.

        Returns:
            float64 probabilities shaped like ``rows``.
        """
        return self.tree.get(rows) / max(self.tree.total, 1e-300)

    def update_priorities(self, rows: Any, priorities: Any) -> None:
        """Set new priorities (e.g. ``|TD error|``) for sampled rows.

        Rows evicted since they were sampled are skipped.

        Args:
            rows: Row indices (tensor, array or sequence).
            priorities: One value ``>= 0`` per row.

        Raises:
            ValidationError: Shapes differ, values are negative or not finite.
        """
        rows, pri = check_priorities(rows, priorities)
        live = live_mask(self.store, rows)  # rows evicted since they were sampled are skipped
        if not live.all():
            rows, pri = rows[live], pri[live]
        pri = pri + self.eps
        if rows.size:
            self.max_priority = max(self.max_priority, float(pri.max()))
            self.tree.set(rows, pri**self.alpha)

    def state_dict(self) -> dict[str, Any]:
        """Priorities of the stored rows (aligned with the store's ``rows``), the max and the generator."""
        if self.store.num_units:
            rows, _ = self.store.rows_of(self.store.live_slots())
        else:
            rows = torch.empty(0, dtype=torch.int64)
        return {
            "priorities": torch.from_numpy(self.tree.get(rows.numpy())),
            "max_priority": self.max_priority,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore priorities saved by :meth:`state_dict` (after the store was restored).

        Args:
            state: A dict returned by :meth:`state_dict`.
        """
        self.max_priority = float(state["max_priority"])
        self.generator.set_state(torch.as_tensor(state["generator"], dtype=torch.uint8))
        self.tree = SumTree(self.store.capacity)
        if self.store.num_units:
            rows, _ = self.store.rows_of(self.store.live_slots())
            self.tree.set(rows.numpy(), torch.as_tensor(state["priorities"], dtype=torch.float64).numpy())
