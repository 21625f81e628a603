"""Window sampling: batches of contiguous sequences for recurrent agents.

A recurrent policy (R2D2-style, a transformer over a context) trains on runs of ``length``
consecutive steps, not on single transitions. :func:`sample_windows` draws such runs, each inside
one stored unit, never across a unit boundary, like TorchRL's ``SliceSampler``: every valid window
start in memory is equally likely (a unit of ``L`` steps offers ``L - length + 1`` of them), so
long units are not under-sampled and no window mixes two episodes.

Units shorter than ``length`` are skipped by default (``strict=True``); with ``strict=False`` each
offers one window from its first step, padded at the end: ``mask`` marks the real steps and padded
positions repeat the unit's last step (so their values are finite, but must be masked out).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from hippogym.episode import Observation
from hippogym.errors import EmptyMemoryError, ValidationError, describe
from hippogym.memory.store import MemoryStore

__all__ = ["WindowBatch", "sample_windows"]


class WindowBatch(NamedTuple):
    """A batch of ``B`` windows of ``L`` consecutive steps.

    Attributes:
        observations: ``[B, L, ...]`` (or a dict of them).
        actions: ``[B, L, ...]``.
        rewards: ``[B, L]`` float32.
        next_observations: ``[B, L, ...]`` (or a dict).
        terminated: ``[B, L]`` bool (at most the last real step of a window).
        truncated: ``[B, L]`` bool.
        mask: ``[B, L]`` bool, ``False`` on padding (only with ``strict=False``).
        indices: ``[B, L]`` memory rows of the steps (padding repeats the last real row).
        episode_ids: ``[B]`` ids of the units the windows come from.
        start_steps: ``[B]`` offset of each window's first step inside its unit.
    """

    observations: Observation
    actions: Tensor
    rewards: Tensor
    next_observations: Observation
    terminated: Tensor
    truncated: Tensor
    mask: Tensor
    indices: Tensor
    episode_ids: Tensor
    start_steps: Tensor


def _shape(value: Any, batch: int, length: int) -> Any:
    if isinstance(value, dict):
        return {k: _shape(v, batch, length) for k, v in value.items()}
    tensor = value if isinstance(value, Tensor) else torch.from_numpy(np.ascontiguousarray(value))
    return tensor.reshape(batch, length, *tensor.shape[1:])


def sample_windows(
    memory: MemoryStore,
    batch_size: int,
    length: int,
    *,
    generator: torch.Generator | None = None,
    strict: bool = True,
) -> WindowBatch:
    """Draw ``batch_size`` windows of ``length`` consecutive steps, each inside one unit.

    Args:
        memory: The store to draw from.
        batch_size: Windows in the batch, ``>= 1``.
        length: Steps per window, ``>= 1``.
        generator: Random generator (default: the store's).
        strict: Skip units shorter than ``length`` (else pad them, see the module docstring).

    Returns:
        A :class:`WindowBatch`.

    Raises:
        EmptyMemoryError: No unit holds a window (empty memory, or all units too short with
            ``strict=True``).
        ValidationError: ``batch_size`` or ``length`` is not an int ``>= 1``.
    """
    for name, value in (("batch_size", batch_size), ("length", length)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValidationError(name, "an int >= 1", describe(value))
    batch_size, length = int(batch_size), int(length)
    slots = memory.live_slots_np()
    unit_len = memory.unit_length.numpy().take(slots) if slots.size else np.zeros(0, dtype=np.int64)
    starts_per_unit = unit_len - length + 1
    starts_per_unit = np.maximum(starts_per_unit, 0 if strict else 1)
    total = int(starts_per_unit.sum())
    if total == 0:
        longest = int(unit_len.max()) if unit_len.size else 0
        raise EmptyMemoryError(
            f"No window of {length} steps: the memory holds {slots.size} units, the longest {longest} steps. "
            "Add longer units, ask for shorter windows, or pass strict=False to pad short units."
        )
    gen = generator if generator is not None else memory.generator
    pick = torch.randint(0, total, (batch_size,), generator=gen).numpy()
    cum = np.cumsum(starts_per_unit)
    unit = np.searchsorted(cum, pick, side="right")
    offset = pick - (cum[unit] - starts_per_unit[unit])
    chosen = slots[unit]
    first = memory.unit_start.numpy().take(chosen) + offset
    real = np.minimum(unit_len[unit] - offset, length)  # real steps in each window
    steps = np.arange(length, dtype=np.int64)
    mask = steps[None, :] < real[:, None]
    rows = first[:, None] + np.minimum(steps[None, :], real[:, None] - 1)
    fields = memory.gather_np(rows.reshape(-1))
    return WindowBatch(
        _shape(fields["observations"], batch_size, length),
        _shape(fields["actions"], batch_size, length),
        _shape(fields["rewards"], batch_size, length),
        _shape(fields["next_observations"], batch_size, length),
        _shape(fields["terminated"], batch_size, length) & torch.from_numpy(mask),
        _shape(fields["truncated"], batch_size, length) & torch.from_numpy(mask),
        torch.from_numpy(mask),
        torch.from_numpy(rows),
        torch.from_numpy(np.ascontiguousarray(memory.unit_id.numpy().take(chosen))),
        torch.from_numpy(offset.astype(np.int64)),
    )
