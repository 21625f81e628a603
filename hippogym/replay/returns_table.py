"""Returns-to-go of every stored transition, kept up to date as units come and go.

:class:`ReturnTable` listens to a :class:`~hippogym.memory.store.MemoryStore` (the same store events
the prioritized sampler uses) and keeps one float32 return-to-go per stored row, computed once when
its unit is written: ``G_t = r_t + gamma r_{t+1} + ... + gamma^(L-1-t) r_{L-1}`` inside the unit
(vectorized, :func:`hippogym.returns.discounted_returns`). Moving a unit copies its returns;
evicting one drops them; nothing is ever recomputed for rows that did not change, so an insert
costs O(length of the unit).

**Bootstrapping.** A unit whose last row is ``terminated`` has a complete return: its tail discount
is 0. Any other unit (cut by a time limit, by a segmenter, or flushed while its episode was still
running) has a partial return; :meth:`ReturnTable.tails` gives, per row, the discount
``gamma^(L - t)`` and the row whose ``next_observations`` is the state the tail starts from, so a
learner completes it with its own value estimate: ``G_t + gamma^(L - t) * V(s_L)``.

The table needs no saving: it is a pure function of the stored rewards and flags and is rebuilt
(vectorized, ~70 ms per million rows) when the store is reset or loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from hippogym.returns import discounted_returns

if TYPE_CHECKING:  # pragma: no cover
    from hippogym.memory.store import MemoryStore

__all__ = ["ReturnTable", "Tails"]


class Tails(NamedTuple):
    """How to complete the partial returns of some rows (see :meth:`ReturnTable.tails`).

    Attributes:
        discounts: ``[B]`` float32 ``gamma^(L - t)``, 0 where the unit terminated.
        rows: ``[B]`` int64 last row of each row's unit (its next observation starts the tail).
    """

    discounts: np.ndarray
    rows: np.ndarray


class ReturnTable:
    """Per-row discounted returns-to-go of a store's units.

    Args:
        store: The memory; the table registers itself as a listener.
        gamma: Discount in ``[0, 1]``.

    Example:
        >>> import torch
        >>> from hippogym import Episode, MemoryStore
        >>> store = MemoryStore(embed_dim=4, capacity=16)
        >>> table = ReturnTable(store, gamma=0.5)
        >>> ep = Episode(states=torch.zeros(4, 2), actions=torch.zeros(3, 1), rewards=torch.tensor([0.0, 0.0, 1.0]),
        ...              terminated=torch.tensor([False, False, True]))
        >>> _ = store.add(ep, torch.nn.functional.normalize(torch.ones(3, 4), dim=1))
        >>> table.returns(np.arange(3)).tolist()
        [0.25, 0.5, 1.0]
    """

    def __init__(self, store: MemoryStore, gamma: float) -> None:
        discounted_returns(np.zeros(1), [0], [1], gamma)  # validates gamma with the shared check
        self.store, self.gamma = store, float(gamma)
        self.table = np.zeros(store.capacity, dtype=np.float32)
        store.listeners.append(self)
        self.on_reset()

    # -- store events
    def on_write(self, start: int, length: int) -> None:
        """A unit was written to rows ``[start, start + length)``: compute its returns."""
        rewards = self.store.rewards[start : start + length].numpy()
        self.table[start : start + length] = discounted_returns(rewards, [0], [length], self.gamma)

    def on_evict(self, start: int, length: int) -> None:
        """Rows were freed: forget their returns."""
        self.table[start : start + length] = 0.0

    def on_move(self, src: int, dst: int, length: int) -> None:
        """A unit moved: its returns move with it."""
        self.table[dst : dst + length] = self.table[src : src + length].copy()

    def on_reset(self) -> None:
        """Rebuild from whatever the store holds (after a reset or a load)."""
        self.table = np.zeros(self.store.capacity, dtype=np.float32)
        if not (self.store.allocated and self.store.num_units):
            return
        slots = self.store.live_slots()
        starts, lengths = self.store.unit_start[slots].numpy(), self.store.unit_length[slots].numpy()
        g = discounted_returns(self.store.rewards.numpy(), starts, lengths, self.gamma)
        rows, _ = self.store.rows_of(slots)
        self.table[rows.numpy()] = g[rows.numpy()]

    # -- queries
    def returns(self, rows: np.ndarray) -> np.ndarray:
        """``[B]`` float32 returns-to-go of stored rows."""
        return self.table.take(np.asarray(rows, dtype=np.int64))

    def tails(self, rows: np.ndarray) -> Tails:
        """Tail discounts and tail rows of stored rows (see the module docstring)."""
        rows = np.asarray(rows, dtype=np.int64)
        slots = self.store.row_slot.numpy().take(rows)
        starts = self.store.unit_start.numpy().take(slots)
        last = starts + self.store.unit_length.numpy().take(slots) - 1
        steps_left = (last - rows + 1).astype(np.float64)
        discounts = np.power(self.gamma, steps_left)
        discounts[self.store.terminated.numpy().take(last)] = 0.0
        return Tails(discounts=discounts.astype(np.float32), rows=last)
