"""n-step returns over stored units.

For a sampled row ``t`` the n-step target replaces the one-step reward by
``r_t + gamma r_{t+1} + ... + gamma^(m-1) r_{t+m-1}`` and the next observation by the one after
row ``t + m - 1``, where ``m <= n`` stops early at the first row that is terminated, truncated, or
the last row of its unit. The learner then bootstraps with ``discounts = gamma^m`` instead of
``gamma``. These are the semantics of Stable-Baselines3's ``NStepReplayBuffer`` (its samples carry
the same ``discounts``); because hippogym stores whole units, rows never run across two episodes
and no special case is needed for the ring's write position.

A unit cut by a segmenter (neither terminated nor truncated at its last row) is treated like a
time-limit cut: the target bootstraps from the last row's next observation.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from hippogym.errors import ValidationError, describe

__all__ = ["NStepTargets", "nstep_targets"]


class NStepTargets(NamedTuple):
    """n-step quantities for a batch of rows (all ``[B]``).

    Attributes:
        rewards: Discounted sum of up to ``n`` rewards (float32).
        last_rows: Row whose next observation the target bootstraps from.
        terminated: Whether the last row is terminal (no bootstrap).
        truncated: Whether the last row ended its unit without termination.
        discounts: ``gamma ** m`` with ``m`` the rows summed (float32).
        steps: ``m``, the number of rewards summed (int64).
    """

    rewards: np.ndarray
    last_rows: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    discounts: np.ndarray
    steps: np.ndarray


def nstep_targets(
    rows: np.ndarray,
    unit_ends: np.ndarray,
    rewards: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    n: int,
    gamma: float,
) -> NStepTargets:
    """n-step targets of ``rows`` (vectorized over the batch).

    Args:
        rows: ``[B]`` sampled rows.
        unit_ends: ``[B]`` one past the last row of each sampled row's unit (units are contiguous).
        rewards: ``[N]`` rewards of all rows.
        terminated: ``[N]`` bool.
        truncated: ``[N]`` bool.
        n: Steps (>= 1); ``n = 1`` gives the one-step quantities with ``discounts = gamma``.
        gamma: Discount in ``[0, 1]``.

    Returns:
        The :class:`NStepTargets` of the batch.

    Raises:
        ValidationError: On ``n < 1`` or ``gamma`` outside ``[0, 1]``.
    """
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValidationError("n_steps", "an int >= 1", describe(n))
    if not isinstance(gamma, (int, float)) or isinstance(gamma, bool) or not 0.0 <= float(gamma) <= 1.0:
        raise ValidationError("gamma", "a float in [0, 1]", describe(gamma))
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    unit_ends = np.asarray(unit_ends, dtype=np.int64).reshape(-1)
    offsets = np.arange(n, dtype=np.int64)[None, :]
    idx = rows[:, None] + offsets  # [B, n]
    inside = idx < unit_ends[:, None]
    idx = np.where(inside, idx, (unit_ends - 1)[:, None])
    stop = terminated[idx] | truncated[idx] | (idx == (unit_ends - 1)[:, None])
    # First stopping offset (inclusive); n - 1 when none stops inside the window.
    has_stop = stop.any(axis=1)
    last = np.where(has_stop, stop.argmax(axis=1), n - 1)
    mask = offsets <= last[:, None]
    powers = float(gamma) ** offsets.astype(np.float64)
    summed = (rewards[idx].astype(np.float64) * powers * mask).sum(axis=1)
    last_rows = rows + last
    steps = last + 1
    term = terminated[last_rows].astype(bool)
    trunc = ~term & (truncated[last_rows].astype(bool) | (last_rows == unit_ends - 1))
    return NStepTargets(
        rewards=summed.astype(np.float32),
        last_rows=last_rows,
        terminated=term,
        truncated=trunc,
        discounts=(float(gamma) ** steps.astype(np.float64)).astype(np.float32),
        steps=steps,
    )
