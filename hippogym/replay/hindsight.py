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

from collections.abc import Callable, Mapping
from enum import Enum
from typing import TYPE_CHECKING, Any

import numpy as np

from hippogym.errors import ValidationError, describe

if TYPE_CHECKING:  # pragma: no cover
    from hippogym.memory.store import MemoryStore

__all__ = ["GoalSelectionStrategy", "HindsightRelabeler", "goal_rows", "her_ratio", "parse_strategy"]

#: The keys a goal-conditioned observation must have (Gymnasium-Robotics' ``GoalEnv`` convention).
GOAL_KEYS = ("observation", "achieved_goal", "desired_goal")


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


class HindsightRelabeler:
    """Relabels a share of sampled rows with goals reached later in their own unit.

    ``k / (k + 1)`` of each batch (``k = n_sampled_goal``; the same share as SB3's
    ``HerReplayBuffer``) gets a new ``desired_goal`` in both observations and next observations,
    picked by :func:`goal_rows`, and rewards recomputed with ``compute_reward``. With n-step targets
    every reward of the window is recomputed with the new goal before it is summed, so relabelling
    composes with n-step returns; it composes with semantic draws because it acts on whatever rows
    were drawn.

    Args:
        compute_reward: ``compute_reward(achieved_goal [B, G], desired_goal [B, G], infos)`` ->
            ``[B]`` rewards, vectorized as in Gymnasium-Robotics (SB3's ``BitFlippingEnv`` too).
            ``infos`` is a list of empty dicts: the memory does not keep the env's info objects.
        n_sampled_goal: Virtual goals per real transition (``k``).
        goal_selection_strategy: ``"future"``, ``"final"`` or ``"episode"`` (or SB3's enum).
        seed: Seed of the relabelling generator.
    """

    def __init__(
        self,
        compute_reward: Callable[..., Any],
        n_sampled_goal: int = 4,
        goal_selection_strategy: GoalSelectionStrategy | str = "future",
        seed: int | None = None,
    ) -> None:
        if not callable(compute_reward):
            raise ValidationError(
                "compute_reward", "a callable (achieved_goal, desired_goal, infos)", describe(compute_reward)
            )
        self.compute_reward = compute_reward
        self.ratio = her_ratio(n_sampled_goal)
        self.n_sampled_goal = int(n_sampled_goal)
        self.strategy = parse_strategy(goal_selection_strategy)
        self.rng = np.random.default_rng(seed)

    @staticmethod
    def check_observations(observations: Any) -> None:
        """Refuse observations that are not goal-conditioned dicts.

        Raises:
            ValidationError: When ``observations`` is not a dict with the three goal keys.
        """
        if not isinstance(observations, Mapping) or not all(k in observations for k in GOAL_KEYS):
            got = sorted(observations) if isinstance(observations, Mapping) else type(observations).__name__
            raise ValidationError("observation_space", f"a Dict space with keys {list(GOAL_KEYS)}", str(got))

    def _rewards(self, store: MemoryStore, rows: np.ndarray, goals: np.ndarray) -> np.ndarray:
        achieved = np.asarray(store.gather_np(rows)["next_observations"]["achieved_goal"])
        out = self.compute_reward(achieved, goals, [{} for _ in range(rows.size)])
        return np.asarray(out, dtype=np.float32).reshape(rows.size)

    def relabel(
        self,
        store: MemoryStore,
        rows: np.ndarray,
        observations: dict[str, np.ndarray],
        next_observations: dict[str, np.ndarray],
        rewards: np.ndarray,
        window: tuple[np.ndarray, float] | None = None,
    ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
        """Relabel a ``k / (k + 1)`` share of ``rows`` in place of their gathered fields.

        Args:
            store: The memory the rows come from.
            rows: ``[B]`` sampled rows.
            observations: Gathered observation dict of ``rows`` (not modified; copies are returned).
            next_observations: Gathered next observation dict (of the n-step window's last rows
                when ``window`` is given).
            rewards: ``[B]`` rewards (n-step sums when ``window`` is given).
            window: ``(steps [B], gamma)`` of n-step targets: rewards of rows ``t .. t + m - 1``
                are recomputed with the new goal and re-summed with ``gamma``.

        Returns:
            ``(relabelled, observations, next_observations, rewards)``; ``relabelled`` is the
            ``[B]`` bool mask of rows given a new goal.
        """
        self.check_observations(observations)
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        n = rows.size
        mask = np.zeros(n, dtype=bool)
        n_virtual = int(self.ratio * n)
        if n_virtual == 0:
            return mask, observations, next_observations, rewards
        mask[self.rng.choice(n, size=n_virtual, replace=False)] = True
        picked = rows[mask]
        slots = store.row_slot.numpy().take(picked)
        starts = store.unit_start.numpy().take(slots)
        ends = starts + store.unit_length.numpy().take(slots)
        sources = goal_rows(picked, starts, ends, self.strategy, self.rng)
        goals = np.asarray(store.gather_np(sources)["next_observations"]["achieved_goal"])
        obs = {k: np.array(v, copy=True) for k, v in observations.items()}
        nxt = {k: np.array(v, copy=True) for k, v in next_observations.items()}
        obs["desired_goal"][mask] = goals
        nxt["desired_goal"][mask] = goals
        rewards = np.array(rewards, dtype=np.float32, copy=True)
        if window is None:
            rewards[mask] = self._rewards(store, picked, goals)
        else:
            steps, gamma = window
            m = np.asarray(steps, dtype=np.int64)[mask]
            width = int(m.max())
            offsets = np.arange(width, dtype=np.int64)[None, :]
            inside = offsets < m[:, None]
            idx = np.where(inside, picked[:, None] + offsets, picked[:, None])
            flat = self._rewards(store, idx.reshape(-1), np.repeat(goals, width, axis=0)).reshape(idx.shape)
            powers = float(gamma) ** offsets.astype(np.float64)
            rewards[mask] = (flat * powers * inside).sum(axis=1).astype(np.float32)
        return mask, obs, nxt, rewards
