"""Sparse-reward 1-D corridors: a fixed-length one and a curriculum over lengths.

The agent starts in cell ``0`` and must walk to the last cell, where it
receives the only non-zero reward of the episode. Under a uniform-random policy
the goal of a long corridor is almost never reached within the step budget, so
an agent has to explore and then *remember* the rare successful episodes, which
is the situation an episodic memory is meant to help with.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from hippogym.envs._validation import (
    RENDER_MODES,
    check_bool,
    check_choice,
    check_fraction,
    check_int,
    check_lengths,
    check_optional_int,
    check_probability,
    check_render_mode,
    invalid_argument,
    is_int,
)
from hippogym.errors import ResetNeededError

__all__ = ["CurriculumCorridorEnv", "SparseCorridorEnv"]

logger = logging.getLogger(__name__)

LEFT = 0
RIGHT = 1
OBS_MODES: tuple[str, ...] = ("onehot", "scalar")


class _CorridorBase(gym.Env[NDArray[np.float32], int]):
    """Shared dynamics of the corridor environments.

    Subclasses provide the observation through :meth:`_observation` and may
    react to finished episodes through :meth:`_on_episode_end`.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": list(RENDER_MODES), "render_fps": 4}

    def __init__(
        self, *, length: int, max_steps: int, slip: float, render_mode: str | None
    ) -> None:
        self.render_mode = render_mode
        self.slip = slip
        self.length = length
        self.max_steps = max_steps
        self.action_space = spaces.Discrete(2)
        self._position = 0
        self._steps = 0
        self._episode_over = True
        self._started = False

    # ----------------------------------------------------------------- helpers
    def _observation(self) -> NDArray[np.float32]:
        raise NotImplementedError

    def _extra_info(self) -> dict[str, Any]:
        return {}

    def _on_episode_end(self, success: bool) -> dict[str, Any]:
        """Hook called once when an episode terminates or is truncated.

        Args:
            success: Whether the goal was reached.

        Returns:
            Extra entries to merge into the final step's ``info``.
        """
        del success
        return {}

    def _info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "is_success": self._position == self.length - 1,
            "position": self._position,
        }
        info.update(self._extra_info())
        return info

    def _begin_episode(self, seed: int | None) -> None:
        super().reset(seed=seed)
        self._position = 0
        self._steps = 0
        self._episode_over = False
        self._started = True

    # --------------------------------------------------------------------- API
    def step(
        self, action: int
    ) -> tuple[NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        """Move one cell left or right.

        Args:
            action: ``0`` moves left, ``1`` moves right. With probability
                ``slip`` the move is flipped.

        Returns:
            ``(observation, reward, terminated, truncated, info)``. The reward is
            ``1.0`` on the step that reaches the last cell (which terminates the
            episode) and ``0.0`` otherwise.

        Raises:
            ValidationError: If ``action`` is not in the action space.
            ResetNeededError: If called before :meth:`reset` or after the episode ended.
        """
        if not self.action_space.contains(action):
            raise invalid_argument("action", "an int in {0, 1}", action)
        if not self._started:
            raise ResetNeededError("Cannot call step() before reset().")
        if self._episode_over:
            raise ResetNeededError("The episode is over; call reset() before step().")
        move = int(action)
        if self.slip > 0.0 and self.np_random.random() < self.slip:
            move = 1 - move
        if move == RIGHT:
            self._position = min(self._position + 1, self.length - 1)
        else:
            self._position = max(self._position - 1, 0)
        self._steps += 1

        terminated = self._position == self.length - 1
        truncated = not terminated and self._steps >= self.max_steps
        reward = 1.0 if terminated else 0.0
        info = self._info()
        if terminated or truncated:
            self._episode_over = True
            info.update(self._on_episode_end(terminated))
        return self._observation(), reward, terminated, truncated, info

    def render(self) -> str | None:  # type: ignore[override]
        """Render the corridor as text.

        Returns:
            With ``render_mode="ansi"`` a single line such as
            ``"|..A.......G| step 2/40"`` (``A`` agent, ``G`` goal); ``None``
            when no render mode was set.
        """
        if self.render_mode is None:
            logger.warning("render() called on an environment created without a render_mode.")
            return None
        cells = ["."] * self.length
        cells[-1] = "G"
        cells[self._position] = "A"
        return f"|{''.join(cells)}| step {self._steps}/{self.max_steps}{self._render_suffix()}"

    def _render_suffix(self) -> str:
        return ""


class SparseCorridorEnv(_CorridorBase):
    """A 1-D corridor with a single sparse reward at its far end.

    The agent starts in cell ``0`` of ``length`` cells. Action ``0`` moves left
    (bounded by the wall at cell ``0``), action ``1`` moves right. Reaching cell
    ``length - 1`` gives reward ``1.0`` and terminates the episode; every other
    step gives ``0.0``. The episode is truncated internally after ``max_steps``
    steps, so no ``TimeLimit`` wrapper is needed (none is registered).

    Observation (``float32``):

    * ``obs_mode="onehot"``: shape ``(length,)``, one-hot position, in ``[0, 1]``.
    * ``obs_mode="scalar"``: shape ``(1,)``, ``position / (length - 1)`` in ``[0, 1]``.

    ``info`` holds ``"is_success"`` (goal reached) and ``"position"`` (cell index).

    Args:
        length: Number of cells; must be >= 2.
        max_steps: Step budget per episode; defaults to ``4 * length``.
        slip: Probability in ``[0, 1]`` that the chosen move is flipped. Drawn
            from the environment's seeded ``np_random``.
        obs_mode: ``"onehot"`` or ``"scalar"``.
        render_mode: ``None`` or ``"ansi"``.

    Raises:
        ValidationError: If any argument is invalid.
    """

    def __init__(
        self,
        length: int = 30,
        max_steps: int | None = None,
        slip: float = 0.0,
        obs_mode: str = "onehot",
        render_mode: str | None = None,
    ) -> None:
        length = check_int("length", length, minimum=2)
        checked_max_steps = check_optional_int("max_steps", max_steps, minimum=1)
        super().__init__(
            length=length,
            max_steps=4 * length if checked_max_steps is None else checked_max_steps,
            slip=check_probability("slip", slip),
            render_mode=check_render_mode(render_mode),
        )
        self.obs_mode = check_choice("obs_mode", obs_mode, OBS_MODES)
        shape = (length,) if self.obs_mode == "onehot" else (1,)
        self.observation_space = spaces.Box(low=0.0, high=1.0, shape=shape, dtype=np.float32)

    def _observation(self) -> NDArray[np.float32]:
        if self.obs_mode == "scalar":
            return np.array([self._position / (self.length - 1)], dtype=np.float32)
        obs = np.zeros(self.length, dtype=np.float32)
        obs[self._position] = 1.0
        return obs

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.float32], dict[str, Any]]:
        """Start a new episode in cell ``0``.

        Args:
            seed: Seed for the environment's random generator.
            options: Unused; accepted for API compatibility.

        Returns:
            ``(observation, info)``.
        """
        del options
        self._begin_episode(seed)
        return self._observation(), self._info()


class CurriculumCorridorEnv(_CorridorBase):
    """A sparse corridor whose length grows as the agent gets good at it.

    The curriculum starts at ``lengths[0]``. After every finished episode the
    outcome is appended to a window of the last ``window`` outcomes; once the
    window is full and its success rate reaches ``promote_at`` the level goes up
    by one (the new length takes effect at the next :meth:`reset`) and the
    window is cleared. :meth:`set_level` (or ``reset(options={"level": i})``)
    moves to any level, e.g. to measure retention of earlier lengths; pass
    ``auto_promote=False`` to freeze the level during such evaluations.

    The observation space is fixed across levels: a ``float32`` vector of shape
    ``(max(lengths) + 1,)`` in ``[0, 1]`` holding the one-hot position padded
    with zeros to the longest corridor, followed by
    ``current_length / max(lengths)``.

    ``info`` holds ``"is_success"``, ``"position"`` and ``"level"`` (the level the
    episode is played at); the final step of an episode also has
    ``"promoted"`` (whether that episode triggered a promotion).

    Args:
        lengths: Strictly increasing corridor lengths, each >= 2.
        promote_at: Success rate in ``(0, 1]`` needed to move up a level.
        window: Number of recent episodes the success rate is computed over.
        slip: Probability in ``[0, 1]`` that the chosen move is flipped.
        max_steps_factor: The step budget of an episode is
            ``max_steps_factor * current_length``.
        auto_promote: Whether to promote automatically.
        render_mode: ``None`` or ``"ansi"``.

    Raises:
        ValidationError: If any argument is invalid.
    """

    def __init__(
        self,
        lengths: tuple[int, ...] | list[int] = (10, 20, 30, 50),
        promote_at: float = 0.8,
        window: int = 20,
        slip: float = 0.0,
        max_steps_factor: int = 4,
        auto_promote: bool = True,
        render_mode: str | None = None,
    ) -> None:
        checked_lengths = check_lengths("lengths", lengths, minimum=2)
        factor = check_int("max_steps_factor", max_steps_factor, minimum=1)
        super().__init__(
            length=checked_lengths[0],
            max_steps=factor * checked_lengths[0],
            slip=check_probability("slip", slip),
            render_mode=check_render_mode(render_mode),
        )
        self.lengths = checked_lengths
        self.promote_at = check_fraction("promote_at", promote_at)
        self.window = check_int("window", window, minimum=1)
        self.max_steps_factor = factor
        self.auto_promote = check_bool("auto_promote", auto_promote)
        self.max_length = checked_lengths[-1]
        self._level = 0
        self._episode_level = 0
        self._history: deque[bool] = deque(maxlen=self.window)
        self.observation_space = spaces.Box(
            low=0.0, high=1.0, shape=(self.max_length + 1,), dtype=np.float32
        )

    # ------------------------------------------------------------- curriculum
    @property
    def level(self) -> int:
        """Index into ``lengths`` of the current curriculum level."""
        return self._level

    @property
    def num_levels(self) -> int:
        """Number of curriculum levels."""
        return len(self.lengths)

    @property
    def current_length(self) -> int:
        """Corridor length of the current level (used from the next reset on)."""
        return self.lengths[self._level]

    @property
    def success_rate(self) -> float:
        """Success rate over the recorded recent episodes (``0.0`` if none)."""
        if not self._history:
            return 0.0
        return sum(self._history) / len(self._history)

    def set_level(self, level: int) -> None:
        """Jump to a curriculum level and clear the success history.

        The new length takes effect at the next :meth:`reset`.

        Args:
            level: Index into ``lengths``.

        Raises:
            ValidationError: If ``level`` is not a valid index.
        """
        if not is_int(level) or not 0 <= int(level) < len(self.lengths):
            raise invalid_argument("level", f"an int in [0, {len(self.lengths) - 1}]", level)
        self._level = int(level)
        self._history.clear()

    def _on_episode_end(self, success: bool) -> dict[str, Any]:
        self._history.append(success)
        promoted = (
            self.auto_promote
            and self._level < len(self.lengths) - 1
            and len(self._history) >= self.window
            and self.success_rate >= self.promote_at
        )
        if promoted:
            self._level += 1
            self._history.clear()
            logger.info(
                "Curriculum promoted to level %d (length %d).", self._level, self.current_length
            )
        return {"promoted": promoted}

    # -------------------------------------------------------------------- API
    def _observation(self) -> NDArray[np.float32]:
        obs = np.zeros(self.max_length + 1, dtype=np.float32)
        obs[self._position] = 1.0
        obs[-1] = self.length / self.max_length
        return obs

    def _extra_info(self) -> dict[str, Any]:
        return {"level": self._episode_level}

    def _render_suffix(self) -> str:
        return f" level {self._episode_level}/{len(self.lengths) - 1}"

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.float32], dict[str, Any]]:
        """Start a new episode at the current curriculum level.

        Args:
            seed: Seed for the environment's random generator.
            options: Optional ``{"level": i}`` to call :meth:`set_level` first.

        Returns:
            ``(observation, info)``.

        Raises:
            ValidationError: If ``options["level"]`` is not a valid level.
        """
        if options and "level" in options:
            self.set_level(options["level"])
        self._episode_level = self._level
        self.length = self.current_length
        self.max_steps = self.max_steps_factor * self.length
        self._begin_episode(seed)
        return self._observation(), self._info()
