"""Built-in segmenters: whole episodes, fixed windows, and reward events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hippogym.errors import ValidationError, describe
from hippogym.segmentation.base import Segmenter

__all__ = ["FixedWindowSegmenter", "RewardEventSegmenter", "TerminalSegmenter"]


class TerminalSegmenter(Segmenter):
    """One unit per environment episode: cuts only when an episode terminates or is truncated.

    Args:
        info_keys: ``info`` keys recorded per step (see :class:`Segmenter`).

    Example:
        >>> import numpy as np
        >>> seg = TerminalSegmenter()
        >>> for t in range(4):
        ...     done = seg.add(np.full(2, t), 0, 0.0, False, t == 3, np.full(2, t + 1))
        >>> len(done[0]), bool(done[0].truncated[-1]), bool(done[0].terminated[-1])
        (4, True, False)
    """

    def should_cut_batch(
        self,
        lengths: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        infos: Sequence[Mapping[str, Any] | None],
    ) -> np.ndarray:
        """Never cut early (the episode end is always a cut)."""
        return np.zeros(lengths.shape[0], dtype=bool)


class FixedWindowSegmenter(Segmenter):
    """Units of at most ``n`` steps: cuts every ``n`` steps and at the end of each episode.

    With ``overlap > 0`` consecutive windows of one environment episode share ``overlap`` steps
    (stride ``n - overlap``), so every window but an episode's last is exactly ``n`` steps long.
    All windows of one environment episode share its ``episode_id``; ``start_step`` is each
    window's offset within the episode. Mid-episode windows end with neither ``terminated`` nor
    ``truncated`` (their last next observation is real, bootstrapping continues).

    Args:
        n: Window length, ``>= 1``.
        overlap: Steps shared by consecutive windows, in ``[0, n)``.
        info_keys: ``info`` keys recorded per step (see :class:`Segmenter`).

    Raises:
        ValidationError: ``n`` or ``overlap`` is out of range.

    Example:
        >>> import numpy as np
        >>> seg = FixedWindowSegmenter(4, overlap=1)
        >>> eps = [e for t in range(10) for e in seg.add(np.full(1, t), 0, 0.0, t == 9, False, np.full(1, t + 1))]
        >>> [(e.start_step, len(e)) for e in eps]
        [(0, 4), (3, 4), (6, 4)]
    """

    def __init__(self, n: int, overlap: int = 0, info_keys: Sequence[str] = ()) -> None:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValidationError("n", "an int >= 1 (steps per window)", describe(n))
        if isinstance(overlap, bool) or not isinstance(overlap, (int, np.integer)) or not 0 <= overlap < n:
            raise ValidationError("overlap", f"an int in [0, n={n})", describe(overlap))
        super().__init__(info_keys)
        self.n = int(n)
        self.overlap = int(overlap)

    def should_cut(
        self, length: int, reward: float, terminated: bool, truncated: bool, info: Mapping[str, Any] | None
    ) -> bool:
        """Cut when the window holds ``n`` steps."""
        return length >= self.n

    def should_cut_batch(
        self,
        lengths: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        infos: Sequence[Mapping[str, Any] | None],
    ) -> np.ndarray:
        """Vectorised :meth:`should_cut`."""
        return lengths >= self.n

    def overlap_after_cut(self, length: int) -> int:
        """Carry the last ``overlap`` steps into the next window."""
        return min(self.overlap, length - 1)

    def __repr__(self) -> str:
        return f"FixedWindowSegmenter(n={self.n}, overlap={self.overlap}, info_keys={self.info_keys!r})"


class RewardEventSegmenter(Segmenter):
    """Cuts right after reward events (``|reward| > threshold``) and at the end of each episode.

    Each unit then ends at a goal or reward event, the natural "what led here" chunk. Events that
    come before the segment holds ``min_length`` steps do not cut (they stay inside a longer
    segment), which avoids a flood of one-step units under dense rewards.

    Args:
        threshold: A step is an event when ``abs(reward) > threshold``; ``>= 0``.
        min_length: Shortest segment an event may cut, ``>= 1``.
        info_keys: ``info`` keys recorded per step (see :class:`Segmenter`).

    Raises:
        ValidationError: ``threshold`` or ``min_length`` is out of range.

    Example:
        >>> import numpy as np
        >>> seg = RewardEventSegmenter()
        >>> rewards = [0, 0, 1, 0, 1, 0]
        >>> eps = [e for t, r in enumerate(rewards) for e in seg.add(np.zeros(1), 0, r, t == 5, False, np.zeros(1))]
        >>> [(e.start_step, len(e)) for e in eps]
        [(0, 3), (3, 2), (5, 1)]
    """

    def __init__(self, threshold: float = 0.0, min_length: int = 1, info_keys: Sequence[str] = ()) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)) or not threshold >= 0:
            raise ValidationError("threshold", "a number >= 0", describe(threshold))
        if isinstance(min_length, bool) or not isinstance(min_length, (int, np.integer)) or min_length < 1:
            raise ValidationError("min_length", "an int >= 1", describe(min_length))
        super().__init__(info_keys)
        self.threshold = float(threshold)
        self.min_length = int(min_length)

    def should_cut(
        self, length: int, reward: float, terminated: bool, truncated: bool, info: Mapping[str, Any] | None
    ) -> bool:
        """Cut after a reward event once the segment holds ``min_length`` steps."""
        return abs(reward) > self.threshold and length >= self.min_length

    def should_cut_batch(
        self,
        lengths: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        infos: Sequence[Mapping[str, Any] | None],
    ) -> np.ndarray:
        """Vectorised :meth:`should_cut`."""
        return (np.abs(rewards) > self.threshold) & (lengths >= self.min_length)

    def __repr__(self) -> str:
        return (
            f"RewardEventSegmenter(threshold={self.threshold}, min_length={self.min_length}, "
            f"info_keys={self.info_keys!r})"
        )


# Each built-in vectorised hook is exactly its class's per-step hook applied row by row, so the
# single-step fast path of Segmenter.add may call the per-step one (see Segmenter._resolve_cut_hook).
TerminalSegmenter.should_cut_batch._scalar_twin = Segmenter.should_cut  # type: ignore[attr-defined]
FixedWindowSegmenter.should_cut_batch._scalar_twin = FixedWindowSegmenter.should_cut  # type: ignore[attr-defined]
RewardEventSegmenter.should_cut_batch._scalar_twin = RewardEventSegmenter.should_cut  # type: ignore[attr-defined]
