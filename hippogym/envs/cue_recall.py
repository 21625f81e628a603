"""A T-maze that requires remembering a cue shown only at the start.

At the start of each episode a cue (left or right) is drawn and shown for the
first ``cue_steps`` observations only. The agent walks down a corridor to a
junction and must turn to the cued side. Once the cue has disappeared the
observation no longer identifies the correct turn, so a memoryless policy can
do no better than chance (50 % success) while a policy that remembers the cue
succeeds every time.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from hippogym.envs._validation import (
    RENDER_MODES,
    check_int,
    check_non_negative_float,
    check_optional_int,
    check_render_mode,
    invalid_argument,
    is_int,
)
from hippogym.errors import ResetNeededError

__all__ = ["CueRecallCorridorEnv"]

logger = logging.getLogger(__name__)

FORWARD = 0
TURN_LEFT = 1
TURN_RIGHT = 2
CUE_LEFT = 0
CUE_RIGHT = 1

#: Noisy features are clipped to this many standard deviations so that every
#: observation stays inside the (bounded) observation space.
NOISE_CLIP_SIGMAS = 6.0


class CueRecallCorridorEnv(gym.Env[NDArray[np.float32], int]):
    """T-maze with a transient cue: a partially observable memory task.

    The agent starts at position ``0``; the junction is at position ``length``,
    so ``length`` forward moves reach it. Actions: ``0`` forward, ``1`` turn
    left, ``2`` turn right. Forward moves stop at the junction. At the junction,
    turning to the cued side gives ``+1.0`` and turning to the other side gives
    ``-1.0``; both terminate the episode. Turning before the junction only
    spends a step (reward ``0.0``). The episode is truncated internally after
    ``max_steps`` steps (no ``TimeLimit`` wrapper is registered).

    Observation (``float32``, shape ``(4,)``, or ``(5,)`` when ``noise > 0``)::

        [position / length, cue_left, cue_right, at_junction, distractor]

    * ``position / length`` lies in ``[0, 1]``; with ``noise > 0`` Gaussian noise
      of std ``noise`` is added (clipped to ``NOISE_CLIP_SIGMAS`` std).
    * ``cue_left, cue_right`` is the one-hot cue for the first ``cue_steps``
      observations (the reset observation counts as the first) and ``0, 0``
      afterwards.
    * ``at_junction`` is ``1.0`` at the junction, else ``0.0``.
    * ``distractor`` (only when ``noise > 0``) is pure ``N(0, noise)`` noise,
      clipped likewise.

    ``info`` holds ``"is_success"`` (turned to the cued side), ``"cue"``
    (``0`` left, ``1`` right) and ``"position"``.

    Args:
        length: Number of forward moves from the start to the junction; >= 2.
        noise: Standard deviation (>= 0) of the observation noise.
        cue_steps: Number of initial observations showing the cue, in
            ``[1, length]`` so that the cue is always gone at the junction.
        max_steps: Step budget per episode; defaults to ``3 * length``.
        render_mode: ``None`` or ``"ansi"``.

    Raises:
        ValidationError: If any argument is invalid.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": list(RENDER_MODES), "render_fps": 4}

    def __init__(
        self,
        length: int = 10,
        noise: float = 0.0,
        cue_steps: int = 1,
        max_steps: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        self.length = check_int("length", length, minimum=2)
        self.noise = check_non_negative_float("noise", noise)
        cue_steps_ok = check_int("cue_steps", cue_steps, minimum=1)
        if cue_steps_ok > self.length:
            raise invalid_argument("cue_steps", f"an int in [1, length={self.length}]", cue_steps)
        self.cue_steps = cue_steps_ok
        checked_max_steps = check_optional_int("max_steps", max_steps, minimum=1)
        self.max_steps = 3 * self.length if checked_max_steps is None else checked_max_steps
        self.render_mode = check_render_mode(render_mode)

        self.action_space = spaces.Discrete(3)
        margin = NOISE_CLIP_SIGMAS * self.noise
        low = [-margin, 0.0, 0.0, 0.0]
        high = [1.0 + margin, 1.0, 1.0, 1.0]
        if self.noise > 0.0:
            low.append(-margin)
            high.append(margin)
        self.observation_space = spaces.Box(
            low=np.array(low, dtype=np.float32),
            high=np.array(high, dtype=np.float32),
            dtype=np.float32,
        )
        self._low = self.observation_space.low
        self._high = self.observation_space.high

        self._cue = CUE_LEFT
        self._position = 0
        self._steps = 0
        self._success = False
        self._episode_over = True
        self._started = False

    @property
    def cue(self) -> int:
        """Cue of the current episode (``0`` left, ``1`` right)."""
        return self._cue

    @property
    def cue_visible(self) -> bool:
        """Whether the most recent observation shows the cue."""
        return self._steps < self.cue_steps

    def _observation(self) -> NDArray[np.float32]:
        obs = np.zeros(self.observation_space.shape, dtype=np.float32)
        obs[0] = self._position / self.length
        if self.cue_visible:
            obs[1 + self._cue] = 1.0
        obs[3] = 1.0 if self._position == self.length else 0.0
        if self.noise > 0.0:
            obs[0] += self.np_random.normal(0.0, self.noise)
            obs[4] = self.np_random.normal(0.0, self.noise)
            np.clip(obs, self._low, self._high, out=obs)
        return obs

    def _info(self) -> dict[str, Any]:
        return {"is_success": self._success, "cue": self._cue, "position": self._position}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.float32], dict[str, Any]]:
        """Draw a new cue and start at the beginning of the corridor.

        Args:
            seed: Seed for the environment's random generator.
            options: Optional ``{"cue": 0 | 1}`` to force the cue instead of
                drawing it (the random generator is advanced either way).

        Returns:
            ``(observation, info)``.

        Raises:
            ValidationError: If ``options["cue"]`` is not ``0`` or ``1``.
        """
        super().reset(seed=seed)
        cue = int(self.np_random.integers(2))
        if options and "cue" in options:
            forced = options["cue"]
            if not is_int(forced) or int(forced) not in (CUE_LEFT, CUE_RIGHT):
                raise invalid_argument("options['cue']", "0 or 1", forced)
            cue = int(forced)
        self._cue = cue
        self._position = 0
        self._steps = 0
        self._success = False
        self._episode_over = False
        self._started = True
        return self._observation(), self._info()

    def step(
        self, action: int
    ) -> tuple[NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        """Move forward or turn.

        Args:
            action: ``0`` forward, ``1`` turn left, ``2`` turn right.

        Returns:
            ``(observation, reward, terminated, truncated, info)``.

        Raises:
            ValidationError: If ``action`` is not in the action space.
            ResetNeededError: If called before :meth:`reset` or after the episode ended.
        """
        if not self.action_space.contains(action):
            raise invalid_argument("action", "an int in {0, 1, 2}", action)
        if not self._started:
            raise ResetNeededError("Cannot call step() before reset().")
        if self._episode_over:
            raise ResetNeededError("The episode is over; call reset() before step().")
        act = int(action)
        self._steps += 1
        reward = 0.0
        terminated = False
        at_junction = self._position == self.length
        if act == FORWARD:
            self._position = min(self._position + 1, self.length)
        elif at_junction:
            terminated = True
            self._success = act - TURN_LEFT == self._cue
            reward = 1.0 if self._success else -1.0
        truncated = not terminated and self._steps >= self.max_steps
        self._episode_over = terminated or truncated
        return self._observation(), reward, terminated, truncated, self._info()

    def render(self) -> str | None:  # type: ignore[override]
        """Render the maze as three lines of text.

        The middle line is the corridor (``A`` agent, ``+`` junction); the arms
        ``L`` and ``R`` sit above and below the junction and the cued arm is
        marked with ``*``. A status line follows.

        Returns:
            The text with ``render_mode="ansi"``; ``None`` when no render mode
            was set.
        """
        if self.render_mode is None:
            logger.warning("render() called on an environment created without a render_mode.")
            return None
        cells = ["."] * (self.length + 1)
        cells[-1] = "+"
        cells[self._position] = "A"
        pad = " " * (self.length + 1)
        left = "L*" if self._cue == CUE_LEFT else "L"
        right = "R*" if self._cue == CUE_RIGHT else "R"
        cue_name = "left" if self._cue == CUE_LEFT else "right"
        shown = "shown" if self.cue_visible else "hidden"
        return "\n".join(
            [
                f"{pad}{left}",
                f"|{''.join(cells)}",
                f"{pad}{right}",
                f"cue={cue_name} ({shown}) step {self._steps}/{self.max_steps}",
            ]
        )
