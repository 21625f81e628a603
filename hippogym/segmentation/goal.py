""":class:`GoalAchievementSegmenter`: a unit ends right after the step that reaches a goal."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from hippogym.errors import ValidationError, describe
from hippogym.segmentation.arrays import SUCCESS_KEY, flatten_observation, leaves, to_numpy
from hippogym.segmentation.base import Segmenter

__all__ = ["GoalAchievementSegmenter"]


class GoalAchievementSegmenter(Segmenter):
    """Cuts right after each step that achieves the goal, and at the end of each episode.

    A step achieves the goal when ``goal_fn(next_obs)`` is true for the observation it reached,
    or, without ``goal_fn``, when the step's ``info[info_key]`` is true (Gymnasium-Robotics goal
    envs report ``info["is_success"]`` every step). Goals reached before the segment holds
    ``min_length`` steps do not cut. Each unit is then one "attempt that got there".

    Args:
        goal_fn: Optional predicate on one next observation (a ``torch.Tensor``, or a dict of them
            for Dict observations), e.g. ``lambda s: bool(s[0] > 0.9)``. Called once per step.
        min_length: Shortest segment a goal may cut, ``>= 1``.
        info_key: The ``info`` flag read when ``goal_fn`` is ``None``.
        info_keys: ``info`` keys recorded per step (see :class:`Segmenter`).

    Raises:
        ValidationError: ``goal_fn`` is not callable or ``min_length`` is out of range.

    Example:
        >>> import numpy as np
        >>> seg = GoalAchievementSegmenter(lambda s: bool(s[0] >= 2), min_length=1)
        >>> xs = [0, 1, 2, 0, 2, 1]
        >>> eps = [e for t, x in enumerate(xs) for e in seg.add(np.zeros(1), 0, 0.0, t == 5, False, np.full(1, x))]
        >>> [(e.start_step, len(e)) for e in eps]
        [(0, 3), (3, 2), (5, 1)]
    """

    def __init__(
        self,
        goal_fn: Callable[[Any], Any] | None = None,
        min_length: int = 1,
        *,
        info_key: str = SUCCESS_KEY,
        info_keys: Sequence[str] = (),
    ) -> None:
        if goal_fn is not None and not callable(goal_fn):
            raise ValidationError("goal_fn", "a callable next_obs -> bool, or None", describe(goal_fn))
        if isinstance(min_length, bool) or not isinstance(min_length, (int, np.integer)) or min_length < 1:
            raise ValidationError("min_length", "an int >= 1", describe(min_length))
        if not isinstance(info_key, str) or not info_key:
            raise ValidationError("info_key", "a non-empty string", describe(info_key))
        super().__init__(info_keys)
        self.goal_fn, self.min_length, self.info_key = goal_fn, int(min_length), info_key
        self._goal = np.zeros(0, dtype=bool)  # goal flags of the batch being added (goal_fn only)

    def add_batch(self, obs: Any, actions: Any, rewards: Any, terminated: Any, truncated: Any, next_obs: Any,
                  infos: Any = None, streams: Any = None) -> list:
        """:meth:`Segmenter.add_batch`, evaluating ``goal_fn`` on each row's next observation first."""
        if self.goal_fn is not None:
            flat = flatten_observation(next_obs, "next_obs")
            parts = leaves(flat, "next_obs")
            size = parts[0][1].shape[0] if parts and parts[0][1].ndim else 0

            def row(i: int) -> Any:
                if isinstance(flat, dict):
                    return {k: torch.from_numpy(np.array(v[i])) for k, v in flat.items()}
                return torch.from_numpy(np.array(flat[i]))

            self._goal = np.fromiter((bool(self.goal_fn(row(i))) for i in range(size)), dtype=bool, count=size)
        return super().add_batch(obs, actions, rewards, terminated, truncated, next_obs, infos, streams)

    def should_cut_batch(
        self,
        lengths: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        infos: Sequence[Mapping[str, Any] | None],
    ) -> np.ndarray:
        """Cut after a goal step once the segment holds ``min_length`` steps."""
        if self.goal_fn is not None:
            goal = self._goal
        else:
            goal = np.zeros(lengths.shape[0], dtype=bool)
            for i in range(lengths.shape[0]):
                info = infos[i]
                if info is not None and self.info_key in info:
                    goal[i] = bool(to_numpy(info[self.info_key], f"info[{self.info_key!r}]").any())
        return goal & (lengths >= self.min_length)

    def __repr__(self) -> str:
        rule = f"goal_fn={self.goal_fn!r}" if self.goal_fn is not None else f"info_key={self.info_key!r}"
        return f"GoalAchievementSegmenter({rule}, min_length={self.min_length}, info_keys={self.info_keys!r})"
