"""``HippocampalReplayBuffer.stats()``: a small summary of what the buffer holds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from hippogym.encoders.dual import DualEncoder
    from hippogym.memory.store import MemoryStore

__all__ = ["SummarizedBuffer", "buffer_stats"]


class SummarizedBuffer(Protocol):
    """What :func:`buffer_stats` reads: a buffer's memory, encoder and current mixture ratio."""

    memory: MemoryStore
    encoder: DualEncoder | None

    @property
    def mixture_ratio(self) -> float:
        """Share of semantic draws now."""
        ...


def buffer_stats(buffer: SummarizedBuffer) -> dict[str, Any]:
    """Sizes, units, returns and outcomes of ``buffer``'s memory, as plain Python numbers.

    Keys: ``transitions``, ``units``, ``capacity``, ``total_added`` (transitions ever added),
    ``mixture_ratio`` (the share of semantic draws now), ``unit_length_mean``, ``unit_length_max``,
    ``return_mean``, ``return_std`` (over units), ``success_rate`` (over units whose outcome is
    known; ``None`` when none is), ``encoder_version`` (momentum updates so far; ``None`` before
    the encoder exists) and ``retrieval`` (the index's own report where it has one, e.g.
    ``TransitionIndex.describe``: which path sampling takes now, ``"exact"`` or ``"ivf"``, its
    cells and entries; else the index's config). Cheap: one pass over the live units'
    bookkeeping, none over rows.
    """
    store = buffer.memory
    slots = store.live_slots_np()
    lengths = store.unit_length.numpy().take(slots) if slots.size else np.zeros(0, dtype=np.int64)
    outcome = store.unit_success.numpy().take(slots) if slots.size else np.zeros(0, dtype=np.int8)
    known = outcome >= 0
    mean, std = store.return_stats()
    encoder = buffer.encoder
    return {
        "transitions": int(store.num_transitions),
        "units": int(store.num_units),
        "capacity": int(store.capacity),
        "total_added": int(store.total_added),
        "mixture_ratio": float(buffer.mixture_ratio),
        "unit_length_mean": float(lengths.mean()) if lengths.size else 0.0,
        "unit_length_max": int(lengths.max()) if lengths.size else 0,
        "return_mean": float(mean) if slots.size else 0.0,
        "return_std": float(std) if slots.size else 0.0,
        "success_rate": float(outcome[known].mean()) if known.any() else None,
        "encoder_version": None if encoder is None else int(encoder.version),
        "retrieval": store.index.describe(store) if hasattr(store.index, "describe") else store.index.config(),
    }
