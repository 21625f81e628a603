"""Row samplers beyond uniform: prioritised (TD-error) sampling over a sum tree.

Uniform sampling lives on the store (:meth:`MemoryStore.sample_rows`); semantic sampling is composed
by the replay buffer from :meth:`MemoryStore.search`. :class:`PrioritizedSampler` listens to the
store so its tree follows inserts, moves and evictions without any rebuild. Sampling and priority
updates are numpy end to end (``*_np`` methods); the tensor methods wrap them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from hippogym.errors import DimensionMismatchError, EmptyMemoryError, ValidationError, describe
from hippogym.memory.sumtree import SumTree

if TYPE_CHECKING:  # pragma: no cover
    from hippogym.memory.store import MemoryStore

__all__ = ["PrioritizedSampler"]


def _numpy(value: Any) -> np.ndarray:
    """A host numpy array from a tensor (any device, with or without grad), array or sequence."""
    if isinstance(value, Tensor):
        try:
            return value.numpy()
        except (TypeError, RuntimeError):
            value = value.detach().cpu()
            return value.to(torch.float64 if value.is_floating_point() else torch.int64).numpy()
    return np.asarray(value)


class PrioritizedSampler:
    """Proportional prioritised replay: ``P(i) ∝ p_i ** alpha``.

    New rows get the largest priority seen so far, so every transition is replayed at least once
    with high probability.

    Args:
        store: The memory whose rows are sampled.
        alpha: Priority exponent (0 = uniform).
        eps: Added to ``|td_error|`` so no priority is zero.
        seed: Seed of the sampler's numpy generator.
    """

    def __init__(self, store: "MemoryStore", alpha: float = 0.6, eps: float = 1e-6, seed: int | None = None) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise ValidationError("alpha", "a float in [0, 1]", repr(alpha))
        self.store, self.alpha, self.eps = store, float(alpha), float(eps)
        self.tree = SumTree(store.capacity)
        self.max_priority = 1.0
        self.generator = torch.Generator().manual_seed(torch.Generator().seed() if seed is None else int(seed))
        store.listeners.append(self)
        self.on_reset()

    # -- store events
    def on_write(self, start: int, length: int) -> None:  # noqa: D102
        self.tree.set_range(start, np.full(length, self.max_priority**self.alpha))

    def on_evict(self, start: int, length: int) -> None:  # noqa: D102
        self.tree.clear(start, length)

    def on_move(self, src: int, dst: int, length: int) -> None:  # noqa: D102
        values = self.tree.get(np.arange(src, src + length)).copy()
        self.tree.clear(src, length)
        self.tree.set_range(dst, values)

    def on_reset(self) -> None:  # noqa: D102
        self.tree = SumTree(self.store.capacity)
        if self.store.allocated and self.store.num_transitions:
            rows, _ = self.store.rows_of(self.store.live_slots())
            self.tree.set(rows.numpy(), np.full(rows.numel(), self.max_priority**self.alpha))

    # -- sampling
    def sample(self, n: int) -> tuple[Tensor, Tensor]:
        """Draw ``n`` rows (stratified). Returns ``(rows, probabilities)``."""
        rows, probs = self.sample_np(n)
        return torch.from_numpy(rows), torch.from_numpy(probs)

    def sample_np(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`sample` as numpy arrays."""
        total = self.tree.total
        if total <= 0:
            raise EmptyMemoryError("Cannot sample from an empty memory: add episodes first.")
        mass = (np.arange(n) + torch.rand(n, generator=self.generator, dtype=torch.float64).numpy()) * (total / n)
        rows = self.tree.find(np.minimum(mass, total * (1 - 1e-12)))
        probs = self.tree.get(rows) / total
        return rows, probs

    def probability(self, rows: Tensor) -> Tensor:
        """Probability of drawing each row in one prioritised draw."""
        return torch.from_numpy(self.probability_np(np.asarray(rows.numpy(), dtype=np.int64)))

    def probability_np(self, rows: np.ndarray) -> np.ndarray:
        """:meth:`probability` for numpy row indices."""
        return self.tree.get(rows) / max(self.tree.total, 1e-300)

    def update(self, rows: Tensor, priorities: Tensor) -> None:
        """Set new priorities (e.g. ``|TD error|``) for sampled rows.

        Raises:
            ValidationError: Shapes differ, values are negative or not finite.
        """
        rows = np.asarray(_numpy(rows), dtype=np.int64).reshape(-1)
        pri = np.asarray(_numpy(priorities), dtype=np.float64).reshape(-1)
        if rows.shape != pri.shape:
            raise DimensionMismatchError("priorities", f"one value per index ({rows.size})", describe(torch.from_numpy(pri)))
        if not (np.isfinite(pri).all() and (pri >= 0).all()):
            raise ValidationError("priorities", "finite values >= 0", "negative or non-finite values")
        live = self.store._v_row_slot.take(rows) >= 0  # rows evicted since they were sampled are skipped
        if not live.all():
            rows, pri = rows[live], pri[live]
        pri = pri + self.eps
        if rows.size:
            self.max_priority = max(self.max_priority, float(pri.max()))
            self.tree.set(rows, pri**self.alpha)

    def state_dict(self) -> dict[str, Any]:
        """Priorities of the stored rows (aligned with the store's ``rows``) and the max."""
        rows, _ = self.store.rows_of(self.store.live_slots()) if self.store.num_units else (torch.empty(0, dtype=torch.int64), None)
        return {
            "priorities": torch.from_numpy(self.tree.get(rows.numpy())),
            "max_priority": self.max_priority,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore priorities saved by :meth:`state_dict` (after the store was restored)."""
        self.max_priority = float(state["max_priority"])
        self.generator.set_state(torch.as_tensor(state["generator"], dtype=torch.uint8))
        self.tree = SumTree(self.store.capacity)
        if self.store.num_units:
            rows, _ = self.store.rows_of(self.store.live_slots())
            self.tree.set(rows.numpy(), torch.as_tensor(state["priorities"], dtype=torch.float64).numpy())
