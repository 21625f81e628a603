"""Hindsight goal relabelling inside stored units.

Hindsight Experience Replay (Andrychowicz et al., 2017) replays a transition of a goal-conditioned
task as if the goal had been one the agent actually reached later. hippogym stores whole units, so
the goals to choose from are simply the rows of the sampled transition's own unit:

* ``future``: a row ``j`` drawn uniformly in ``[t, end)`` of the unit (the transition itself
  included, as in Stable-Baselines3's ``HerReplayBuffer``);
* ``final``: the unit's last row;
* ``episode``: any row of the unit.

The new desired goal is the ``achieved_goal`` of that row's *next* observation, and the reward is
recomputed with the environment's ``compute_reward(achieved_goal, desired_goal, info)``.
"""

from __future__ import annotations

from enum import Enum

import numpy as np

from hippogym.errors import ValidationError, describe

__all__ = ["GoalSelectionStrategy", "goal_rows", "her_ratio", "parse_strategy"]


class GoalSelectionStrategy(str, Enum):
    """Where a relabelled goal comes from, relative to the sampled row's unit."""

    FUTURE = "future"
    FINAL = "final"
    EPISODE = "episode"


def parse_strategy(value: object) -> GoalSelectionStrategy:
    """A :class:`GoalSelectionStrategy` from its name, itself, or SB3's enum of the same names.

    Raises:
        ValidationError: For anything else.
    """
    name = getattr(value, "name", value)
    if isinstance(value, GoalSelectionStrategy):
        return value
    if isinstance(name, str):
        try:
            return GoalSelectionStrategy(name.lower())
        except ValueError:
            pass
    raise ValidationError("goal_selection_strategy", "one of 'future', 'final', 'episode'", describe(value))


def her_ratio(n_sampled_goal: int) -> float:
    """Share of relabelled samples for ``n_sampled_goal`` virtual goals per real one: ``k / (k + 1)``.

    Raises:
        ValidationError: If ``n_sampled_goal`` is not an int >= 0.
    """
    if not isinstance(n_sampled_goal, (int, np.integer)) or isinstance(n_sampled_goal, bool) or n_sampled_goal < 0:
        raise ValidationError("n_sampled_goal", "an int >= 0", describe(n_sampled_goal))
    return 1.0 - 1.0 / (int(n_sampled_goal) + 1)


def goal_rows(
    rows: np.ndarray,
    unit_starts: np.ndarray,
    unit_ends: np.ndarray,
    strategy: GoalSelectionStrategy | str,
    rng: np.random.Generator,
) -> np.ndarray:
    """Rows whose next ``achieved_goal`` becomes the new goal of each sampled row.

    Args:
        rows: ``[B]`` sampled rows.
        unit_starts: ``[B]`` first row of each sampled row's unit.
        unit_ends: ``[B]`` one past its last row.
        strategy: ``future``, ``final`` or ``episode``.
        rng: Source of randomness (the buffer's, so batches are reproducible).

    Returns:
        ``[B]`` int64 rows, each inside the same unit as its sampled row.
    """
    strategy = parse_strategy(strategy)
    rows = np.asarray(rows, dtype=np.int64)
    starts = np.asarray(unit_starts, dtype=np.int64)
    ends = np.asarray(unit_ends, dtype=np.int64)
    if strategy is GoalSelectionStrategy.FINAL:
        return ends - 1
    low = rows if strategy is GoalSelectionStrategy.FUTURE else starts
    return low + np.floor(rng.random(rows.shape) * (ends - low)).astype(np.int64)
