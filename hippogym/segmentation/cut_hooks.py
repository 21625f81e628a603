"""The cut hooks of a segmenter: *when* to end a segment, and how the hook is called per step.

:class:`CutHooks` is the part of :class:`~hippogym.segmentation.Segmenter` that subclasses
override: :meth:`CutHooks.should_cut` (per step, simple), :meth:`CutHooks.should_cut_batch`
(vectorised over streams, fast) and :meth:`CutHooks.overlap_after_cut` (trailing steps a cut
segment passes on to the next one). It also resolves, once per segmenter, the cheapest per-step
form of the hook for the one-step fast path (``Segmenter.add_trusted``): no call at all when the
hooks never cut early, :meth:`CutHooks.should_cut` when :meth:`CutHooks.should_cut_batch` is marked
as its vectorised twin (a ``_scalar_twin`` attribute on the batch function), or a one-row call of
:meth:`CutHooks.should_cut_batch`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hippogym.errors import ValidationError, describe
from hippogym.segmentation.arrays import InfoRows

__all__ = ["CutHooks"]


class CutHooks:
    """The overridable cut decisions of a segmenter (a mixin of :class:`~hippogym.segmentation.Segmenter`).

    The defaults never cut early and carry nothing over, so a segmenter cuts only at the end of an
    environment episode. ``_cut_hook`` caches the per-step form of the hook: ``False`` until
    resolved (the segmenter sets it in ``__init__``), then ``None`` or a callable.

    Example:
        >>> import numpy as np
        >>> class Every2(CutHooks):
        ...     def should_cut(self, length, reward, terminated, truncated, info):
        ...         return length >= 2
        >>> Every2().should_cut_batch(np.array([1, 2]), np.zeros(2), np.zeros(2, bool), np.zeros(2, bool), [None] * 2)
        array([False,  True])
        >>> CutHooks().should_cut_batch(np.array([5]), np.zeros(1), np.ones(1, bool), np.zeros(1, bool), [None])
        array([False])
    """

    _cut_hook: Any

    def should_cut(
        self, length: int, reward: float, terminated: bool, truncated: bool, info: Mapping[str, Any] | None
    ) -> bool:
        """Whether to cut the in-progress segment right after this step.

        Called for every recorded step. The segmenter cuts at the end of an environment episode
        anyway, so implementations only need to decide about the other steps.

        Args:
            length: Steps in the in-progress segment, this one included.
            reward: This step's reward.
            terminated: This step ended the episode in a terminal state.
            truncated: This step ended the episode by truncation (time limit).
            info: This step's ``info`` (``None`` when none was given).

        Returns:
            ``True`` to end the segment after this step. The base class never cuts early.
        """
        return False

    def should_cut_batch(
        self,
        lengths: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        infos: Sequence[Mapping[str, Any] | None],
    ) -> np.ndarray:
        """Vectorised :meth:`should_cut` over the streams of one batch.

        The default calls :meth:`should_cut` once per row when a subclass overrides it, and returns
        all ``False`` otherwise. Override this instead for speed.

        Args:
            lengths: ``[B]`` in-progress segment lengths, this step included.
            rewards: ``[B]`` rewards (float64).
            terminated: ``[B]`` booleans.
            truncated: ``[B]`` booleans.
            infos: ``B`` per-row info mappings (or ``None``); built lazily on access.

        Returns:
            ``[B]`` booleans: cut after this step.
        """
        if type(self).should_cut is CutHooks.should_cut:
            return np.zeros(lengths.shape[0], dtype=bool)
        return np.fromiter(
            (
                bool(
                    self.should_cut(
                        int(lengths[i]), float(rewards[i]), bool(terminated[i]), bool(truncated[i]), infos[i]
                    )
                )
                for i in range(lengths.shape[0])
            ),
            dtype=bool,
            count=lengths.shape[0],
        )

    def overlap_after_cut(self, length: int) -> int:
        """Trailing steps of a segment cut mid-episode (or flushed) that also start the next one.

        Args:
            length: Length of the segment just cut.

        Returns:
            Steps to carry over, in ``[0, length)``. The base class carries none.
        """
        return 0

    def _resolve_cut_hook(self) -> Any:
        """The per-step form of this segmenter's cut hook (resolved once, then cached).

        ``None`` (never cuts early), :meth:`should_cut` (when :meth:`should_cut_batch` is known to be
        its vectorised twin), or a one-row call of :meth:`should_cut_batch`.
        """
        cls = type(self)
        batch, single = cls.should_cut_batch, cls.should_cut
        if batch is CutHooks.should_cut_batch or getattr(batch, "_scalar_twin", None) is single:
            hook = None if single is CutHooks.should_cut else self._cut_single
        else:
            hook = self._cut_one_row
        self._cut_hook = hook
        return hook

    def _cut_single(
        self, length: int, reward: float, terminated: bool, truncated: bool, info: Mapping[str, Any] | None
    ) -> bool:
        return bool(self.should_cut(length, reward, terminated, truncated, info))

    def _cut_one_row(
        self, length: int, reward: float, terminated: bool, truncated: bool, info: Mapping[str, Any] | None
    ) -> bool:
        hook = np.asarray(
            self.should_cut_batch(
                np.array([length], dtype=np.int64),
                np.array([reward], dtype=np.float64),
                np.array([terminated]),
                np.array([truncated]),
                InfoRows([info], 1),
            ),
            dtype=bool,
        )
        if hook.shape != (1,):
            raise ValidationError("should_cut_batch()", "a boolean array of shape (1,)", describe(hook))
        return bool(hook[0])
