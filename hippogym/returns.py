"""Discounted returns over stored units, vectorized.

The memory keeps whole units (episodes or segments of them), so every stored transition can carry
its discounted **return-to-go** ``G_t = r_t + gamma * r_{t+1} + ... + gamma^(L-1-t) * r_{L-1}``
computed once when its unit closes. This module holds the arithmetic, free of any storage detail:
units are given as ``(starts, lengths)`` into one flat reward array, the layout of the memory's
rows.

A unit that ended with ``terminated`` has a complete return. A unit cut by a time limit, by a
segmenter, or still open has a *partial* one: its tail is missing and a learner that wants an
unbiased target adds ``gamma^(L - t) * V(s_L)`` (``bootstrap_values``, or later from its own
critic, see :func:`bootstrap_discounts`).

Everything runs in float64 and without a Python loop over rows: the reverse discounted cumulative
sum is computed with the scaled-prefix-sum identity inside blocks short enough that
``gamma ** block`` stays far from underflow, and blocks are chained backwards.
"""

from __future__ import annotations

import math

import numpy as np

from hippogym.errors import ValidationError, describe

__all__ = ["RETURNS_GAMMA", "bootstrap_discounts", "discounted_returns", "return_columns", "unit_positions"]

#: Discount of the returns-to-go a saved memory carries when its buffer has no value targets.
RETURNS_GAMMA = 0.99


def _check_gamma(gamma: float) -> float:
    if not isinstance(gamma, (int, float)) or isinstance(gamma, bool) or not 0.0 <= float(gamma) <= 1.0:
        raise ValidationError("gamma", "a float in [0, 1]", describe(gamma))
    return float(gamma)


def _check_units(starts: np.ndarray, lengths: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    starts = np.asarray(starts, dtype=np.int64).reshape(-1)
    lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
    if starts.shape != lengths.shape:
        raise ValidationError("lengths", f"one length per start ({starts.size})", f"{lengths.size} lengths")
    if starts.size and (lengths.min() < 1 or starts.min() < 0 or (starts + lengths).max() > n_rows):
        raise ValidationError("starts/lengths", f"units of >= 1 row inside [0, {n_rows})", "a unit outside it")
    return starts, lengths


def unit_positions(starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat rows of the given units, each row's unit number, and its step inside its unit.

    Args:
        starts: ``[U]`` first row of each unit.
        lengths: ``[U]`` rows of each unit (>= 1).

    Returns:
        ``(rows, unit, step)``, each ``[sum(lengths)]`` int64, units in the given order.
    """
    starts = np.asarray(starts, dtype=np.int64).reshape(-1)
    lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
    total = int(lengths.sum())
    unit = np.repeat(np.arange(lengths.size, dtype=np.int64), lengths)
    offsets = np.cumsum(lengths) - lengths
    step = np.arange(total, dtype=np.int64) - np.repeat(offsets, lengths)
    return starts[unit] + step, unit, step


def _block_size(gamma: float) -> int:
    # Inside a block the scaled prefix sums mix terms of size 1 and gamma ** block; keeping
    # gamma ** block >= 1e-4 bounds the cancellation error to about 1e-12 of the largest reward.
    if gamma >= 1.0:
        return 1 << 30
    return max(1, min(1 << 30, int(math.log(1e-4) / math.log(gamma))))


def discounted_returns(
    rewards: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    gamma: float,
    bootstrap_values: np.ndarray | None = None,
) -> np.ndarray:
    """Discounted return-to-go of every row of the given units.

    Args:
        rewards: ``[N]`` rewards of all rows (float).
        starts: ``[U]`` first row of each unit in ``rewards``.
        lengths: ``[U]`` rows of each unit; units must not overlap.
        gamma: Discount in ``[0, 1]``.
        bootstrap_values: Optional ``[U]`` value of the state after each unit's last row, added as
            ``gamma^(L - t) * V`` (0 for a terminated unit).

    Returns:
        ``[N]`` float64; rows outside every unit are 0.

    Raises:
        ValidationError: On a bad ``gamma``, units outside ``rewards`` or non-finite rewards.

    Example:
        >>> discounted_returns(np.array([0.0, 0.0, 1.0]), [0], [3], 0.5).tolist()
        [0.25, 0.5, 1.0]
    """
    gamma = _check_gamma(gamma)
    rewards = np.asarray(rewards, dtype=np.float64).reshape(-1)
    starts, lengths = _check_units(starts, lengths, rewards.size)
    out = np.zeros(rewards.size, dtype=np.float64)
    if not starts.size:
        return out
    rows, unit, step = unit_positions(starts, lengths)
    r = rewards[rows]
    if not np.isfinite(r).all():
        raise ValidationError("rewards", "finite values", "NaN or inf")
    if gamma == 0.0:
        g = r.copy()
    else:
        g = _reverse_discounted_cumsum(r, unit, step, lengths, gamma)
    if bootstrap_values is not None:
        v = np.asarray(bootstrap_values, dtype=np.float64).reshape(-1)
        if v.shape != lengths.shape:
            raise ValidationError("bootstrap_values", f"shape [{lengths.size}]", f"shape {list(v.shape)}")
        g = g + (gamma ** (lengths[unit] - step).astype(np.float64)) * v[unit]
    out[rows] = g
    return out


def _reverse_discounted_cumsum(
    r: np.ndarray, unit: np.ndarray, step: np.ndarray, lengths: np.ndarray, gamma: float
) -> np.ndarray:
    """``G[t] = r[t] + gamma * G[t+1]`` inside each unit, for units laid out back to back."""
    block = _block_size(gamma)
    # Block id of each row: rows of one unit in chunks of `block` steps; blocks never span units.
    blocks_per_unit = (lengths + block - 1) // block
    first_block = np.cumsum(blocks_per_unit) - blocks_per_unit
    bid = first_block[unit] + step // block
    pos = step % block  # position inside its block
    n_blocks = int(blocks_per_unit.sum())
    # Inside a block: G_local[t] = sum_{k >= t in block} gamma^(k - t) r_k
    #               = (S_end - S_{t-1}) / gamma^pos[t], with S the prefix sum of gamma^pos * r.
    scale = gamma ** pos.astype(np.float64)
    weighted = r * scale
    csum = np.cumsum(weighted)
    block_start = np.searchsorted(bid, np.arange(n_blocks), side="left")
    block_end = np.append(block_start[1:], r.size) - 1
    before = np.where(block_start > 0, csum[np.maximum(block_start - 1, 0)], 0.0)
    block_total = csum[block_end] - before  # sum of weighted rewards per block
    local = (block_total[bid] - (csum - weighted - before[bid])) / scale
    if n_blocks == lengths.size:
        return local
    # Chain blocks backwards within each unit: carry[b] = G at the first row of block b + 1.
    # One vectorized step per block position (the longest unit's block count), across all units.
    block_len = (block_end - block_start + 1).astype(np.float64)
    head = local[block_start]  # local G at each block's first row
    carry = np.zeros(n_blocks, dtype=np.float64)
    for j in range(int(blocks_per_unit.max()) - 2, -1, -1):
        has = blocks_per_unit > j + 1  # units with a block after their j-th
        b = first_block[has] + j
        carry[b] = head[b + 1] + gamma ** block_len[b + 1] * carry[b + 1]
    return local + gamma ** (block_len[bid] - pos) * carry[bid]


def bootstrap_discounts(lengths: np.ndarray, gamma: float) -> np.ndarray:
    """``gamma^(L - t)`` for every row of units of the given lengths, in order.

    The factor a learner multiplies ``V(s_L)`` by to complete a partial return-to-go.

    Args:
        lengths: ``[U]`` unit lengths.
        gamma: Discount in ``[0, 1]``.

    Returns:
        ``[sum(lengths)]`` float64.
    """
    gamma = _check_gamma(gamma)
    lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
    _, unit, step = unit_positions(np.zeros_like(lengths), lengths)
    return gamma ** (lengths[unit] - step).astype(np.float64)


def return_columns(
    rewards: np.ndarray, terminated: np.ndarray, starts: np.ndarray, lengths: np.ndarray, gamma: float
) -> dict[str, np.ndarray]:
    """The returns-to-go of a table of contiguous units, as saved memories carry them.

    Args:
        rewards: ``[N]`` rewards, units laid out contiguously.
        terminated: ``[N]`` termination flags.
        starts: ``[U]`` first row of each unit.
        lengths: ``[U]`` rows of each unit.
        gamma: Discount in ``[0, 1]``.

    Returns:
        ``{"return_to_go": [N] float32, "return_complete": [N] bool}``: the discounted return from
        each row to the end of its unit, and whether that unit terminated (``False``: the return
        is partial, complete it with ``gamma^(L - t) * V(s_L)``, see :func:`bootstrap_discounts`).

    Example:
        >>> cols = return_columns(np.array([0.0, 1.0, 1.0]), np.array([False, True, False]), [0, 2], [2, 1], 0.5)
        >>> cols["return_to_go"].tolist(), cols["return_complete"].tolist()
        ([0.5, 1.0, 1.0], [True, True, False])
    """
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    rtg = discounted_returns(rewards, starts, lengths, gamma).astype(np.float32)
    done = np.asarray(terminated, dtype=bool).reshape(-1)
    complete = done[starts + lengths - 1] if starts.size else np.zeros(0, dtype=bool)
    return {"return_to_go": rtg, "return_complete": np.repeat(complete, lengths)}
