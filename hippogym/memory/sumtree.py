"""A vectorised sum tree for prioritised sampling (numpy: lower per-call overhead than torch).

The tree has a fan-out of :data:`FANOUT` (16) rather than 2: a million leaves take 5 levels instead
of 20, and each level of a batched operation is a handful of numpy calls on a ``[batch, 16]`` block
(prefix sums inside a block are one small matrix product). Every parent is recomputed from its
children (never updated by deltas), so sums do not drift.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SumTree", "FANOUT"]

#: Children per node.
FANOUT = 16
_BYTE_SUM = np.uint64(0x0101010101010101)  # x * this >> 56 = the sum of x's 8 bytes (each 0 or 1)
_TOP_BYTE = np.uint64(56)
#: Largest level (in nodes) :meth:`SumTree.find` starts from with one running sum.
FLAT_START = 8192
_SHIFT = FANOUT.bit_length() - 1


class SumTree:
    """Sum tree over ``capacity`` non-negative leaves; every operation is vectorised over a batch.

    Args:
        capacity: Number of leaves (rows).

    Example:
        >>> import numpy as np
        >>> tree = SumTree(100)
        >>> tree.set(np.array([3, 50]), np.array([1.0, 3.0]))
        >>> tree.total, tree.find(np.array([0.5, 1.5, 3.9])).tolist()
        (4.0, [3, 50, 50])
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        # levels[0] holds the leaves; levels[l + 1][i] = sum of levels[l][16 i : 16 i + 16]. Every
        # level but the last is padded (with zeros) to a multiple of the fan-out; the last has at
        # most FANOUT entries.
        self.levels: list[np.ndarray] = []
        n = max(self.capacity, 1)
        while True:
            padded = -(-n // FANOUT) * FANOUT
            self.levels.append(np.zeros(padded, dtype=np.float64))
            n = padded // FANOUT
            if n <= FANOUT:
                self.levels.append(np.zeros(n, dtype=np.float64))
                break
        self._blocks = [level.reshape(-1, FANOUT) for level in self.levels[:-1]]
        self._exclusive = np.triu(np.ones((FANOUT, FANOUT)), 1)  # row @ this = exclusive prefix sums
        self._ones = np.ones(FANOUT)  # block @ this = block sums (a BLAS call; faster than .sum(1))
        self.size = self.levels[0].size
        self.depth = len(self.levels)
        # The level find() starts from: the lowest whose running sum is cheap (see find).
        self._start = next(i for i, level in enumerate(self.levels) if level.size <= FLAT_START)

    @property
    def total(self) -> float:
        """Sum of all leaves."""
        return float(self.levels[-1].sum())

    def get(self, idx: np.ndarray) -> np.ndarray:
        """Leaf values at ``idx``."""
        return self.levels[0].take(np.asarray(idx, dtype=np.int64))

    def set(self, idx: np.ndarray, values: np.ndarray) -> None:
        """Set leaves ``idx`` to ``values`` and update their ancestors (``O(B log N)``).

        With repeated indices the last value wins (numpy assignment order).
        """
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        self.levels[0][idx] = values
        if idx.size * FANOUT >= self.size:  # large update: recomputing every level is cheaper
            for level in range(1, self.depth):
                sums = self._blocks[level - 1].sum(1)
                self.levels[level][: sums.size] = sums
                self.levels[level][sums.size :] = 0.0
            return
        for level in range(1, self.depth):
            idx = idx >> _SHIFT
            self.levels[level][idx] = self._blocks[level - 1].take(idx, axis=0) @ self._ones

    def set_range(self, start: int, values: np.ndarray) -> None:
        """Set the contiguous leaves ``[start, start + len(values))`` (cheaper than :meth:`set`)."""
        end = start + len(values)
        if end <= start:
            return
        self.levels[0][start:end] = values
        lo, hi = start, end - 1
        for level in range(1, self.depth):
            lo, hi = lo >> _SHIFT, hi >> _SHIFT
            self.levels[level][lo : hi + 1] = self._blocks[level - 1][lo : hi + 1].sum(1)

    def prefix(self, idx: np.ndarray) -> np.ndarray:
        """Sum of the leaves before each index: ``sum(leaves[:i])`` for ``i`` in ``idx`` (``0 <= i <= capacity``).

        ``O(B log N)``: at every level, the siblings left of the path in the node's block.
        """
        node = np.array(idx, dtype=np.int64).reshape(-1)
        out = np.zeros(node.size, dtype=np.float64)
        lanes = np.arange(FANOUT)
        for level in range(self.depth - 1):
            blocks = self._blocks[level]
            block, pos = node >> _SHIFT, node & (FANOUT - 1)
            children = blocks.take(np.minimum(block, blocks.shape[0] - 1), axis=0)
            out += np.where(lanes < pos[:, None], children, 0.0).sum(1)
            node = block
        top = self.levels[-1]
        out += np.concatenate(([0.0], np.cumsum(top))).take(np.minimum(node, top.size))
        return out

    def find(self, mass: np.ndarray) -> np.ndarray:
        """Leaf index for each prefix-sum ``mass`` in ``[0, total)``.

        The search starts at the highest level small enough (at most :data:`FLAT_START` nodes) for
        one running sum over it plus a binary search to be cheaper than descending the levels above,
        then descends one ``[batch, 16]`` block per level.
        """
        mass = np.array(mass, dtype=np.float64).reshape(-1)
        start = self._start
        level = self.levels[start]
        cum = np.cumsum(level)
        node = np.searchsorted(cum, mass, side="right")
        np.minimum(node, level.size - 1, out=node)
        mass -= cum.take(node) - level.take(node)
        base = np.arange(mass.size, dtype=np.int64) * FANOUT
        for lvl in range(start - 1, -1, -1):
            blocks = self._blocks[lvl]
            np.minimum(node, blocks.shape[0] - 1, out=node)
            children = blocks.take(node, axis=0)
            before = children @ self._exclusive  # mass of the siblings left of each child
            # The chosen child is the last whose left siblings hold no more than the mass: count the
            # siblings that qualify, 8 flags at a time (a byte-sum by multiplication per 64-bit word;
            # several times faster than a boolean sum over a 16-wide axis).
            words = (np.less_equal(before, mass[:, None]).view(np.uint64) * _BYTE_SUM) >> _TOP_BYTE
            pick = (words[:, 0] + words[:, 1]).astype(np.int64) - 1
            mass -= before.take(base + pick)
            node = (node << _SHIFT) + pick
        leaves = np.minimum(node, self.capacity - 1)
        # Rounding can land on an empty leaf right after a non-empty one: step back to it.
        empty = self.levels[0].take(leaves) <= 0
        if empty.any():
            leaves[empty] = self._nearest_nonempty(leaves[empty])
        return leaves

    def _nearest_nonempty(self, leaves: np.ndarray) -> np.ndarray:
        values = self.levels[0][: self.capacity]
        nonzero = np.flatnonzero(values > 0)
        if nonzero.size == 0:
            return leaves
        # The last non-empty leaf before each empty one (the first non-empty leaf if there is none).
        pos = np.searchsorted(nonzero, leaves) - 1
        return nonzero[np.clip(pos, 0, nonzero.size - 1)]

    def clear(self, start: int, length: int) -> None:
        """Zero a contiguous range of leaves."""
        self.set_range(start, np.zeros(length))
