""":class:`ChangePointSegmenter`: a unit ends where the observation jumps."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from hippogym.errors import ValidationError, describe
from hippogym.segmentation.arrays import flatten_observation, leaves
from hippogym.segmentation.base import Segmenter

if TYPE_CHECKING:  # pragma: no cover
    from hippogym.episode import Episode

__all__ = ["ChangePointSegmenter"]


def _jumps(obs: Any, next_obs: Any) -> np.ndarray:
    """``||next_obs - obs||`` per row over every (flattened, float64) observation leaf."""
    a, b = leaves(flatten_observation(obs, "obs"), "obs"), leaves(flatten_observation(next_obs, "next_obs"), "next_obs")
    size = a[0][1].shape[0] if a[0][1].ndim else 0
    total = np.zeros(size, dtype=np.float64)
    for (_, x), (_, y) in zip(a, b):
        d = y.astype(np.float64).reshape(size, -1) - x.astype(np.float64).reshape(size, -1)
        total += np.einsum("ij,ij->i", d, d)
    return np.sqrt(total)


class ChangePointSegmenter(Segmenter):
    """Cuts after a step whose observation change is anomalously large, or every ``max_length`` steps.

    A step's *jump* is ``||next_obs - obs||`` (all observation keys together). It is a change
    point when ``jump > mean + threshold * std``, with the mean and standard deviation of the
    jumps seen before it (running statistics over all streams, updated after each batch; no cut
    until 2 jumps were seen). A change point cuts once the segment holds ``min_length`` steps; a
    segment is always cut at ``max_length``. The step with the jump ends its segment.

    :meth:`~hippogym.segmentation.Segmenter.segment` on a recorded episode uses that episode's
    own jump statistics instead (all its steps, as the seed did), so it finds the same change
    points whatever came before.

    Args:
        threshold: Jumps above ``mean + threshold * std`` are change points, ``> 0``.
        min_length: Shortest segment a change point may cut, ``>= 1``.
        max_length: Longest segment, ``>= min_length``.
        info_keys: ``info`` keys recorded per step (see :class:`Segmenter`).

    Raises:
        ValidationError: A parameter is out of range.

    Example:
        >>> import numpy as np
        >>> seg = ChangePointSegmenter(threshold=2.0, min_length=2, max_length=100)
        >>> xs = [0, 1, 2, 3, 4, 50, 51, 52, 53]  # one jump: 4 -> 50
        >>> def step(t):
        ...     return seg.add(np.full(1, xs[t]), 0, 0.0, t == 7, False, np.full(1, xs[t + 1]))
        >>> eps = [e for t in range(8) for e in step(t)]
        >>> [(e.start_step, len(e)) for e in eps]
        [(0, 5), (5, 3)]
    """

    def __init__(
        self, threshold: float = 2.0, min_length: int = 16, max_length: int = 256, info_keys: Sequence[str] = ()
    ) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)) or not threshold > 0:
            raise ValidationError("threshold", "a number > 0", describe(threshold))
        if isinstance(min_length, bool) or not isinstance(min_length, (int, np.integer)) or min_length < 1:
            raise ValidationError("min_length", "an int >= 1", describe(min_length))
        if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)) or max_length < min_length:
            raise ValidationError("max_length", f"an int >= min_length={min_length}", describe(max_length))
        super().__init__(info_keys)
        self.threshold, self.min_length, self.max_length = float(threshold), int(min_length), int(max_length)
        self._count, self._mean, self._m2 = 0, 0.0, 0.0  # running jump statistics (Welford)
        self._fixed: tuple[float, float] | None = None  # (mean, std) of one episode, offline
        self._jump = np.zeros(0, dtype=np.float64)  # jumps of the batch being added

    def add_batch(self, obs: Any, actions: Any, rewards: Any, terminated: Any, truncated: Any, next_obs: Any,
                  infos: Any = None, streams: Any = None) -> list:
        """:meth:`Segmenter.add_batch`, measuring each row's jump first."""
        self._jump = _jumps(obs, next_obs)
        out = super().add_batch(obs, actions, rewards, terminated, truncated, next_obs, infos, streams)
        if self._fixed is None:
            for x in self._jump.tolist():  # Welford: B is small (one vector-env step)
                self._count += 1
                delta = x - self._mean
                self._mean += delta / self._count
                self._m2 += delta * (x - self._mean)
        return out

    def _limit(self) -> float:
        if self._fixed is not None:
            mean, std = self._fixed
        elif self._count < 2:
            return math.inf
        else:
            mean, std = self._mean, math.sqrt(self._m2 / (self._count - 1))
        return mean + self.threshold * max(std, 1e-6)

    def _begin_offline(self, episode: Episode) -> None:
        """Use ``episode``'s own jump statistics (called on the copy :meth:`segment` replays into)."""
        jumps = _jumps(_numpy(episode.states), _numpy(episode.next_states))
        std = float(jumps.std(ddof=1)) if jumps.size > 1 else 0.0
        self._fixed = (float(jumps.mean()), std) if jumps.size > 1 else (math.inf, 0.0)

    def should_cut_batch(
        self,
        lengths: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        infos: Sequence[Mapping[str, Any] | None],
    ) -> np.ndarray:
        """Cut after a change point (once ``min_length`` steps are held) or at ``max_length``."""
        return ((self._jump > self._limit()) & (lengths >= self.min_length)) | (lengths >= self.max_length)

    def __repr__(self) -> str:
        return (
            f"ChangePointSegmenter(threshold={self.threshold}, min_length={self.min_length}, "
            f"max_length={self.max_length}, info_keys={self.info_keys!r})"
        )


def _numpy(obs: Any) -> Any:
    return {k: v.numpy() for k, v in obs.items()} if isinstance(obs, dict) else obs.numpy()
