"""The typed batch a replay buffer returns."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import torch
from torch import Tensor

from hippogym.episode import Observation

__all__ = ["SEED_KEYS", "ReplayBatch", "SampleMode"]


class SampleMode:
    """Codes of :attr:`ReplayBatch.modes`: how each transition was drawn."""

    UNIFORM = 0
    SEMANTIC = 1
    PRIORITIZED = 2


class ReplayBatch(NamedTuple):
    """A batch of transitions.

    Attributes:
        observations: ``[B, ...]`` (or a dict of them).
        actions: ``[B, ...]``.
        rewards: ``[B]`` float32.
        next_observations: ``[B, ...]`` (or a dict).
        terminated: ``[B]`` bool: no bootstrap.
        truncated: ``[B]`` bool: cut by a time limit; bootstrap from ``next_observations``.
        indices: ``[B]`` row indices (pass them to ``update_priorities``).
        episode_ids: ``[B]`` ids of the units the transitions belong to.
        modes: ``[B]`` int8 :class:`SampleMode` codes.
        probabilities: ``[B]`` probability of drawing each transition in one draw of the mixture.
        weights: ``[B]`` importance weights ``(N * P) ** -beta`` normalised by their max (all ones
            when ``beta`` is 0).
        discounts: ``[B]`` float32 ``gamma^m`` of an ``m``-step target (``None`` without value
            targets): the TD target is ``rewards + (1 - terminated) * discounts * V(next)``.
        returns: ``[B]`` float32 discounted return-to-go inside the unit, or ``None``.
        return_discounts: ``[B]`` float32 ``gamma^(L - t)`` of the missing tail of ``returns`` (0
            when the unit terminated), or ``None``.
        tail_observations: ``[B, ...]`` observations the tail starts from (``returns +
            return_discounts * V(tail_observations)`` completes a partial return), or ``None``.
        relabelled: ``[B]`` bool, rows given a hindsight goal, or ``None``.

    Besides attribute and positional access (it is a ``NamedTuple``), a batch reads like the seed's
    dict batches: ``batch["states"]``, ``batch["actions"]``, ``batch["next_states"]``,
    ``batch["dones"]``, ``batch["sample_modes"]``, ``batch["sampling_probs"]``, ... (see
    :data:`SEED_KEYS`; every field name works too). ``keys()``, ``get()`` and ``"key" in batch``
    follow the same names.

    Example:
        >>> b = ReplayBatch(*(torch.zeros(2) for _ in ReplayBatch._fields))
        >>> b["states"] is b.observations, b["weights"] is b[10], "next_states" in b
        (True, True, True)
    """

    observations: Observation
    actions: Tensor
    rewards: Tensor
    next_observations: Observation
    terminated: Tensor
    truncated: Tensor
    indices: Tensor
    episode_ids: Tensor
    modes: Tensor
    probabilities: Tensor
    weights: Tensor
    discounts: Tensor | None = None
    returns: Tensor | None = None
    return_discounts: Tensor | None = None
    tail_observations: Observation | None = None
    relabelled: Tensor | None = None

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        """A field by position (tuple indexing) or by name (a field name or a seed key)."""
        if isinstance(key, str):
            name = SEED_KEYS.get(key, key)
            if name not in _READABLE:
                raise KeyError(f"{key!r}: a ReplayBatch has {sorted(_READABLE | set(SEED_KEYS))}")
            return getattr(self, name)
        return tuple.__getitem__(self, key)

    def __contains__(self, key: object) -> bool:
        """``True`` for a readable key (a field name, ``"dones"`` or a seed key)."""
        return isinstance(key, str) and SEED_KEYS.get(key, key) in _READABLE

    def keys(self) -> Iterator[str]:
        """The field names, then ``"dones"`` (the dict-like view; seed keys are aliases)."""
        return iter((*self._fields, "dones"))

    def get(self, key: str, default: Any = None) -> Any:
        """``batch[key]``, or ``default`` when the key is not readable."""
        return self[key] if key in self else default

    @property
    def dones(self) -> Tensor:
        """``terminated`` as float (the TD bootstrap mask ``1 - dones``; truncation still bootstraps)."""
        return self.terminated.to(torch.float32)

    def to(self, device: torch.device | str) -> "ReplayBatch":
        """Move every tensor to ``device``."""

        def move(x):
            if x is None:
                return None
            if isinstance(x, dict):
                return {k: v.to(device, non_blocking=True) for k, v in x.items()}
            return x.to(device, non_blocking=True)

        return ReplayBatch(*(move(x) for x in self))


#: The seed's (hippotorch's) batch keys and the :class:`ReplayBatch` field each one reads.
#: ``indices`` are flat memory rows here (the seed stored ``(episode, step)`` pairs).
SEED_KEYS: dict[str, str] = {
    "states": "observations",
    "next_states": "next_observations",
    "sample_modes": "modes",
    "sampling_probs": "probabilities",
}
_READABLE = frozenset((*ReplayBatch._fields, "dones"))
