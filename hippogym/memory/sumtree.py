"""A vectorised sum tree for prioritised sampling (numpy: lower per-call overhead than torch)."""

from __future__ import annotations

import numpy as np

__all__ = ["SumTree"]


class SumTree:
    """Binary sum tree over ``capacity`` leaves; every operation is vectorised over a batch.

    Args:
        capacity: Number of leaves (rows).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        self.size = 1 << max(1, (self.capacity - 1).bit_length())
        self.depth = self.size.bit_length() - 1
        self.tree = np.zeros(2 * self.size, dtype=np.float64)

    @property
    def total(self) -> float:
        """Sum of all leaves."""
        return float(self.tree[1])

    def get(self, idx: np.ndarray) -> np.ndarray:
        """Leaf values at ``idx``."""
        return self.tree[np.asarray(idx, dtype=np.int64) + self.size]

    def set(self, idx: np.ndarray, values: np.ndarray) -> None:
        """Set leaves ``idx`` to ``values`` and update their ancestors (``O(B log N)``)."""
        nodes = np.asarray(idx, dtype=np.int64) + self.size
        self.tree[nodes] = values
        for _ in range(self.depth):
            nodes = np.unique(nodes >> 1)
            self.tree[nodes] = self.tree[2 * nodes] + self.tree[2 * nodes + 1]

    def find(self, mass: np.ndarray) -> np.ndarray:
        """Leaf index for each prefix-sum ``mass`` in ``[0, total)``."""
        mass = np.array(mass, dtype=np.float64)
        nodes = np.ones(mass.shape[0], dtype=np.int64)
        tree = self.tree
        for _ in range(self.depth):
            nodes <<= 1
            left = tree[nodes]
            right = mass >= left
            mass -= left * right
            nodes += right
        leaves = nodes - self.size
        # Rounding can land on an empty leaf right after a non-empty one: step back to it.
        empty = tree[nodes] <= 0
        if empty.any():
            leaves[empty] = self._nearest_nonempty(leaves[empty])
        return leaves

    def _nearest_nonempty(self, leaves: np.ndarray) -> np.ndarray:
        values = self.tree[self.size : self.size + self.capacity]
        nonzero = np.flatnonzero(values > 0)
        pos = np.clip(np.searchsorted(nonzero, leaves), 0, len(nonzero) - 1)
        return nonzero[pos]

    def clear(self, start: int, length: int) -> None:
        """Zero a contiguous range of leaves."""
        self.set(np.arange(start, start + length), np.zeros(length))
