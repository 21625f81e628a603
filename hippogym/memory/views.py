"""What the parts of the memory may read of the store: typing protocols, no implementation.

Eviction policies and retrieval indexes are handed the store on every call, and the store owns
them. Were they annotated with :class:`~hippogym.memory.store.MemoryStore` itself, the two modules
would import the module that imports them. Instead each is annotated with the protocol below that
lists exactly the public members it reads, and ``MemoryStore`` satisfies both structurally (no
inheritance, no registration). The same holds for samplers, whose protocol
(:class:`~hippogym.memory.samplers.base.SampledStore`) lives with them.

* :class:`UnitTable`: what an :class:`~hippogym.memory.eviction.EvictionPolicy` reads (returns,
  hits and rescue counts of units, the return statistics, random live slots).
* :class:`StoreView`: what a :class:`~hippogym.memory.index.RetrievalIndex` reads (unit geometry,
  the key matrix, live slots, exact MaxSim).

The ``*_np`` members are numpy views sharing memory with the store's tensors. The store replaces
them when its unit table grows, so read them afresh on every call and never keep one.

This module imports nothing from :mod:`hippogym.memory`, so any part of the memory may import it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from torch import Tensor

__all__ = ["StoreView", "UnitTable"]


@runtime_checkable
class UnitTable(Protocol):
    """The unit table as eviction policies read it (all public members of ``MemoryStore``).

    Arrays are indexed by unit slot and cover every allocated slot, free ones included.
    """

    @property
    def unit_return(self) -> Tensor:
        """Undiscounted return of every slot's unit (float32 tensor)."""
        ...

    @property
    def unit_hits(self) -> Tensor:
        """Retrieval hits of every slot's unit (float32 tensor)."""
        ...

    @property
    def unit_returns_np(self) -> np.ndarray:
        """:attr:`unit_return` as a float32 numpy view."""
        ...

    @property
    def unit_hits_np(self) -> np.ndarray:
        """:attr:`unit_hits` as a float32 numpy view."""
        ...

    @property
    def unit_rescues_np(self) -> np.ndarray:
        """Times eviction retained every slot's unit (int32 numpy view)."""
        ...

    def return_stats(self) -> tuple[float, float]:
        """Mean and standard deviation of the returns of the units in memory."""
        ...

    def random_slots_np(self, n: int) -> np.ndarray:
        """Up to ``n`` live slots drawn uniformly with replacement from the store's own generator.

        Args:
            n: Slots wanted.

        Returns:
            int64 slots (fewer than ``n`` only when the memory holds very few units).
        """
        ...


@runtime_checkable
class StoreView(Protocol):
    """The store as retrieval indexes read it (all public members of ``MemoryStore``).

    Per-slot arrays are indexed by unit slot; only their first :attr:`num_slots` entries have ever
    held a unit.
    """

    @property
    def embed_dim(self) -> int:
        """Width of the keys."""
        ...

    @property
    def capacity(self) -> int:
        """Rows of the store (transitions it can hold)."""
        ...

    @property
    def high_water(self) -> int:
        """Rows ever written: rows at and after it have never held a transition."""
        ...

    @property
    def num_transitions(self) -> int:
        """Transitions in memory."""
        ...

    @property
    def mutations(self) -> int:
        """A counter bumped whenever what retrieval sees may change."""
        ...

    @property
    def row_slots_np(self) -> np.ndarray:
        """Unit slot of every row, ``-1`` for rows that hold no transition (int64 numpy view)."""
        ...

    @property
    def unit_added_np(self) -> np.ndarray:
        """Insertion counter of every slot's unit (int64 numpy view; larger = newer)."""
        ...

    def live_slots_np(self) -> np.ndarray:
        """Slots of the units in memory, oldest first (int64 array)."""
        ...

    @property
    def num_slots(self) -> int:
        """Slots ever used (an upper bound of the live slot ids)."""
        ...

    @property
    def num_units(self) -> int:
        """Units in memory."""
        ...

    @property
    def unit_alive(self) -> Tensor:
        """Whether each slot holds a unit (bool tensor)."""
        ...

    @property
    def centroid(self) -> Tensor:
        """Unit key centroids (``[slots, embed_dim]`` float32 tensor, L2-normalised)."""
        ...

    @property
    def theta(self) -> Tensor:
        """Angular radius of each unit around its centroid, with a little slack (float32 tensor)."""
        ...

    @property
    def unit_starts_np(self) -> np.ndarray:
        """First row of every slot's unit (int64 numpy view)."""
        ...

    @property
    def unit_lengths_np(self) -> np.ndarray:
        """Rows of every slot's unit (int64 numpy view)."""
        ...

    @property
    def centroids_np(self) -> np.ndarray:
        """:attr:`centroid` as a float32 numpy view."""
        ...

    @property
    def dead_mask_np(self) -> np.ndarray:
        """0 for live slots, -inf for free ones (float32; add it to centroid scores)."""
        ...

    @property
    def keys_np(self) -> np.ndarray | None:
        """Row keys ``[capacity, embed_dim]`` as a numpy view (``None`` when numpy cannot view them)."""
        ...

    def live_slots(self) -> Tensor:
        """Slots of the units in memory, oldest first (int64 tensor)."""
        ...

    def maxsim(self, query: Tensor, slots: Tensor) -> Tensor:
        """Exact score of each unit for one query: the best cosine over its transitions' keys.

        Args:
            query: ``[embed_dim]`` L2-normalised query.
            slots: ``[n]`` int64 unit slots.

        Returns:
            ``[n]`` float32 scores.
        """
        ...
