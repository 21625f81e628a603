"""The sampler contract: rows of a store and their exact probabilities.

A sampler draws row indices of a :class:`~hippogym.memory.store.MemoryStore` and reports, for each
row, the probability of drawing it in one draw (what importance weights are computed from). It is
handed the store only through :class:`SampledStore`, the small public surface samplers may use, and
it follows the store's life through four event hooks (``on_write``, ``on_evict``, ``on_move``,
``on_reset``) that the store calls on every object in ``store.listeners``.

To add a sampler, subclass :class:`Sampler`, implement the five abstract methods and override the
hooks whose events change your state. Sampling is numpy end to end (``*_np`` methods); the tensor
methods wrap them.
"""

from __future__ import annotations

import abc
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from hippogym.errors import DimensionMismatchError, ValidationError, describe

__all__ = ["SampledStore", "Sampler", "as_numpy", "check_priorities", "live_mask"]


class SampledStore(Protocol):
    """What a sampler may use of the store (all public members of ``MemoryStore``).

    Attributes:
        capacity: Rows the store can hold.
        num_transitions: Live rows.
        high_water: Rows ``[high_water, capacity)`` have never been written.
        row_slot: ``[capacity]`` int64 CPU tensor: the unit slot of each row, ``-1`` when the row
            holds no live transition. Replaced (not resized) when the storage is reallocated.
        listeners: Objects whose event hooks the store calls.
    """

    capacity: int
    num_transitions: int
    high_water: int
    row_slot: Tensor | None
    listeners: list[Any]

    @property
    def allocated(self) -> bool:
        """Whether the row storage exists."""
        ...

    @property
    def num_units(self) -> int:
        """Units in memory."""
        ...

    def live_slots(self) -> Tensor:
        """Slots of the units in memory, oldest first."""
        ...

    def rows_of(self, slots: Tensor) -> tuple[Tensor, Tensor]:
        """Rows of the given units and the position of each row's unit in ``slots``."""
        ...

    def sample_rows_np(self, n: int, generator: torch.Generator | None = None) -> np.ndarray:
        """``n`` rows drawn uniformly over the live rows."""
        ...


def as_numpy(value: Any) -> np.ndarray:
    """A host numpy array from a tensor (any device, with or without grad), array or sequence.

    Args:
        value: Tensor, array or sequence.

    Returns:
        The values as a numpy array (a view when ``value`` is a CPU tensor without grad).
    """
    if isinstance(value, Tensor):
        try:
            return value.numpy()
        except (TypeError, RuntimeError):
            value = value.detach().cpu()
            return value.to(torch.float64 if value.is_floating_point() else torch.int64).numpy()
    return np.asarray(value)


def check_priorities(rows: Any, priorities: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate priority feedback and flatten it.

    Args:
        rows: Row indices (tensor, array or sequence).
        priorities: One value per row.

    Returns:
        ``(rows, priorities)`` as flat int64 and float64 arrays.

    Raises:
        DimensionMismatchError: Not one priority per row.
        ValidationError: Values are negative or not finite.
    """
    rows = np.asarray(as_numpy(rows), dtype=np.int64).reshape(-1)
    pri = np.asarray(as_numpy(priorities), dtype=np.float64).reshape(-1)
    if rows.shape != pri.shape:
        expected = f"one value per index ({rows.size})"
        raise DimensionMismatchError("priorities", expected, describe(torch.from_numpy(pri)))
    if not (np.isfinite(pri).all() and (pri >= 0).all()):
        raise ValidationError("priorities", "finite values >= 0", "negative or non-finite values")
    return rows, pri


def live_mask(store: SampledStore, rows: np.ndarray) -> np.ndarray:
    """Whether each row holds a live transition of ``store``.

    Args:
        store: The sampled store.
        rows: int64 row indices in ``[0, capacity)``.

    Returns:
        Boolean array shaped like ``rows``.
    """
    if store.row_slot is None:
        return np.zeros(rows.shape, dtype=bool)
    return store.row_slot.numpy().take(rows) >= 0


class Sampler(abc.ABC):
    """Draws rows of a store with known per-row probabilities.

    The constructor registers the sampler as a listener of ``store``, so the event hooks see every
    insert, eviction, move and reset from then on.

    Args:
        store: The memory whose rows are sampled.
    """

    def __init__(self, store: SampledStore) -> None:
        self.store = store
        store.listeners.append(self)

    # -- the contract
    @abc.abstractmethod
    def sample_np(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` rows.

        Args:
            n: Number of rows.

        Returns:
            ``(rows, probs)``: int64 row indices and float64 probability of drawing each in one draw.

        Raises:
            EmptyMemoryError: The store holds no transition.
        """

    @abc.abstractmethod
    def probability_np(self, rows: np.ndarray) -> np.ndarray:
        """Probability of drawing each row in one draw (0 for rows that hold no transition).

        Args:
            rows: int64 row indices.

        Returns:
            float64 probabilities shaped like ``rows``.
        """

    @abc.abstractmethod
    def update_priorities(self, rows: Any, priorities: Any) -> None:
        """Feed back per-row priorities (e.g. ``|TD error|``) of sampled rows.

        Args:
            rows: Row indices (tensor, array or sequence).
            priorities: One value ``>= 0`` per row.

        Raises:
            ValidationError: Shapes differ, values are negative or not finite.
        """

    @abc.abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the same draws after :meth:`load_state_dict`."""

    @abc.abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (after the store itself was restored).

        Args:
            state: A dict returned by :meth:`state_dict`.
        """

    # -- store events (no-ops unless the sampler keeps per-row state)
    def on_write(self, start: int, length: int) -> None:
        """Rows ``[start, start + length)`` now hold new transitions."""

    def on_evict(self, start: int, length: int) -> None:
        """Rows ``[start, start + length)`` no longer hold transitions."""

    def on_move(self, src: int, dst: int, length: int) -> None:
        """Rows ``[src, src + length)`` moved to ``[dst, dst + length)``."""

    def on_reset(self) -> None:
        """The store was cleared or reloaded: rebuild any per-row state from it."""

    # -- tensor wrappers
    def sample(self, n: int) -> tuple[Tensor, Tensor]:
        """:meth:`sample_np` as tensors: ``(rows, probabilities)``."""
        rows, probs = self.sample_np(n)
        return torch.from_numpy(rows), torch.from_numpy(probs)

    def probability(self, rows: Tensor) -> Tensor:
        """:meth:`probability_np` for a tensor of rows."""
        return torch.from_numpy(self.probability_np(np.asarray(as_numpy(rows), dtype=np.int64)))

    def update(self, rows: Any, priorities: Any) -> None:
        """Alias of :meth:`update_priorities`."""
        self.update_priorities(rows, priorities)

    def detach(self) -> None:
        """Stop listening to the store's events."""
        if self in self.store.listeners:
            self.store.listeners.remove(self)
