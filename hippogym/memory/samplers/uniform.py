"""Uniform sampling over the live rows of a store."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from hippogym.errors import ValidationError, describe
from hippogym.memory.samplers.base import SampledStore, Sampler, check_priorities, live_mask

__all__ = ["UniformSampler"]


class UniformSampler(Sampler):
    """Every live row with probability ``1 / num_transitions`` (draws with replacement).

    Draws go through the store's :meth:`~hippogym.memory.store.MemoryStore.sample_rows_np`, so a
    sampler sharing a generator with a caller that used ``store.sample_rows_np(n, generator)`` gets
    the same rows.

    Args:
        store: The memory whose rows are sampled.
        seed: Seed of the sampler's own generator (ignored when ``generator`` is given).
        generator: A generator to draw from instead of an own one (shared, not copied).
    """

    def __init__(self, store: SampledStore, seed: int | None = None, generator: torch.Generator | None = None) -> None:
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ValidationError("generator", "a torch.Generator or None", describe(generator))
        if generator is None:
            generator = torch.Generator().manual_seed(torch.Generator().seed() if seed is None else int(seed))
        self.generator = generator
        super().__init__(store)

    def sample_np(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` rows uniformly over the live rows.

        Args:
            n: Number of rows.

        Returns:
            ``(rows, probs)``: int64 rows and ``1 / num_transitions`` for each.

        Raises:
            EmptyMemoryError: The store holds no transition.
        """
        rows = np.asarray(self.store.sample_rows_np(n, self.generator), dtype=np.int64)
        return rows, np.full(rows.size, 1.0 / self.store.num_transitions)

    def probability_np(self, rows: np.ndarray) -> np.ndarray:
        """``1 / num_transitions`` for live rows, 0 for rows that hold no transition.

        Args:
            rows: int64 row indices.

        Returns:
            float64 probabilities shaped like ``rows``.
        """
        rows = np.asarray(rows, dtype=np.int64)
        n = self.store.num_transitions
        if n == 0:
            return np.zeros(rows.shape, dtype=np.float64)
        return np.where(live_mask(self.store, rows), 1.0 / n, 0.0)

    def update_priorities(self, rows: Any, priorities: Any) -> None:
        """Check the feedback; priorities do not change a uniform draw.

        Args:
            rows: Row indices (tensor, array or sequence).
            priorities: One value ``>= 0`` per row.

        Raises:
            ValidationError: Shapes differ, values are negative or not finite.
        """
        check_priorities(rows, priorities)

    def state_dict(self) -> dict[str, Any]:
        """The generator state (the only state a uniform sampler has)."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the generator saved by :meth:`state_dict`.

        Args:
            state: A dict returned by :meth:`state_dict`.
        """
        self.generator.set_state(torch.as_tensor(state["generator"], dtype=torch.uint8))
