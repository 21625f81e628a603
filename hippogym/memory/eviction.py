"""Forgetting: which stored unit gives way when the memory is full.

The store is a ring. When the write head reaches the oldest unit, the eviction policy decides
whether that unit is **retained** (moved forward to the head, so it lives another pass) or
**evicted**. FIFO never retains. :class:`UtilityEviction` retains units that matter: high return
(rare successes) or often retrieved, each at most ``max_rescues`` times, so the memory still turns
over and stays fresh. Retention work per insert is capped (``rescue_budget`` times the incoming
length), which keeps insertion O(episode length) amortised.

Policies read the store only through :class:`~hippogym.memory.views.UnitTable` (public members of
``MemoryStore``); this module does not import the store.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from hippogym.errors import ValidationError
from hippogym.memory.views import UnitTable

__all__ = ["EvictionPolicy", "FIFOEviction", "UtilityEviction", "make_eviction"]


def _quantile(values: np.ndarray, q: float) -> float:
    """Linear-interpolation quantile (``torch.quantile``'s default) of a small array."""
    ordered = np.sort(values)
    pos = q * (ordered.size - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, ordered.size - 1)
    a, b = float(ordered[lo]), float(ordered[hi])
    return a + (b - a) * (pos - lo)


class EvictionPolicy:
    """Interface: decide whether the oldest unit is retained when the ring needs its space.

    Subclasses implement :meth:`retain` and :meth:`config`; ``rescue_budget`` bounds how many rows
    may be moved to retain units, as a multiple of the incoming unit's length. The store is handed
    in as a :class:`UnitTable`, the public members a policy may read.
    """

    name = "base"
    rescue_budget = 0.0

    def retain(self, store: UnitTable, slot: int) -> bool:
        """Return ``True`` to keep unit ``slot`` for another pass of the ring."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """JSON description (for manifests and :func:`make_eviction`)."""
        return {"type": self.name}


class FIFOEviction(EvictionPolicy):
    """First in, first out: the oldest unit always goes (a classic replay buffer)."""

    name = "fifo"

    def retain(self, store: UnitTable, slot: int) -> bool:  # noqa: D102
        return False


class UtilityEviction(EvictionPolicy):
    """Forget what doesn't matter: retain units whose utility is in the top ``keep_fraction``.

    ``utility = return_weight * z(return) + hits_weight * log1p(retrieval hits)``, where ``z`` is
    the return standardised over the units in memory. The threshold is the ``1 - keep_fraction``
    quantile of the utility of ``peers`` randomly drawn units (O(peers), not O(memory)). A unit is
    retained only if it is strictly above the threshold (ties, e.g. all-zero returns, are evicted)
    and has been retained fewer than ``max_rescues`` times; its hit count halves at each rescue so
    popularity must be earned again.

    Args:
        keep_fraction: Share of units (by utility) that may be retained, in (0, 1).
        max_rescues: How many extra passes of the ring a unit may live.
        return_weight: Weight of the standardised return.
        hits_weight: Weight of the retrieval popularity.
        peers: Units drawn to estimate the threshold.
        rescue_budget: Rows that may be moved per insert, as a multiple of the incoming length.
    """

    name = "utility"

    def __init__(
        self,
        keep_fraction: float = 0.1,
        max_rescues: int = 3,
        return_weight: float = 1.0,
        hits_weight: float = 0.5,
        peers: int = 64,
        rescue_budget: float = 2.0,
    ) -> None:
        if not 0.0 < keep_fraction < 1.0:
            raise ValidationError("keep_fraction", "a float in (0, 1)", repr(keep_fraction))
        if max_rescues < 0:
            raise ValidationError("max_rescues", "an int >= 0", repr(max_rescues))
        self.keep_fraction, self.max_rescues = float(keep_fraction), int(max_rescues)
        self.return_weight, self.hits_weight = float(return_weight), float(hits_weight)
        self.peers, self.rescue_budget = int(peers), float(rescue_budget)

    def utility(self, store: UnitTable, slots: torch.Tensor) -> torch.Tensor:
        """Utility of the given unit slots."""
        mean, std = store.return_stats()
        z = (store.unit_return[slots].double() - mean) / max(std, 1e-8)
        return self.return_weight * z + self.hits_weight * torch.log1p(store.unit_hits[slots].double())

    def utility_np(self, store: UnitTable, slots: np.ndarray) -> np.ndarray:
        """:meth:`utility` on numpy slot indices (float64)."""
        mean, std = store.return_stats()
        z = (store.unit_returns_np.take(slots).astype(np.float64) - mean) / max(std, 1e-8)
        return self.return_weight * z + self.hits_weight * np.log1p(store.unit_hits_np.take(slots).astype(np.float64))

    def retain(self, store: UnitTable, slot: int) -> bool:  # noqa: D102
        # Runs on every eviction, so in numpy (same draws and figures as the torch formulation).
        if int(store.unit_rescues_np[slot]) >= self.max_rescues:
            return False
        peers = store.random_slots_np(self.peers)
        if peers.size < 2:
            return False
        threshold = _quantile(self.utility_np(store, peers), 1.0 - self.keep_fraction)
        mine = float(self.utility_np(store, np.array([slot], dtype=np.int64))[0])
        return mine > threshold

    def config(self) -> dict[str, Any]:  # noqa: D102
        return {
            "type": self.name, "keep_fraction": self.keep_fraction, "max_rescues": self.max_rescues,
            "return_weight": self.return_weight, "hits_weight": self.hits_weight,
            "peers": self.peers, "rescue_budget": self.rescue_budget,
        }


def make_eviction(spec: str | Mapping[str, Any] | EvictionPolicy) -> EvictionPolicy:
    """Build a policy from a name (``"fifo"``, ``"utility"``), a config dict, or pass one through."""
    if isinstance(spec, EvictionPolicy):
        return spec
    if isinstance(spec, str):
        spec = {"type": spec}
    kind = spec.get("type")
    kwargs = {k: v for k, v in spec.items() if k != "type"}
    if kind == "fifo":
        return FIFOEviction()
    if kind == "utility":
        return UtilityEviction(**kwargs)
    raise ValidationError("eviction", "'fifo', 'utility' or an EvictionPolicy", repr(kind))
