"""Recall-augmented observations: the partial-observability tool.

:class:`RecallObservation` queries the memory with every observation and appends what it recalls,
so a memoryless policy can condition on "where did similar situations lead, and what did they
pay" (pattern completion, e.g. in the ``hippogym/CueRecall-v0`` T-maze).
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from hippogym.errors import ValidationError, describe
from hippogym.types import ObservationWindow
from hippogym.wrappers.record import ingest_pending
from hippogym.wrappers.spaces import SpaceConverter

__all__ = ["FEATURES", "RecallObservation"]

logger = logging.getLogger(__name__)

#: The kinds of recalled features.
FEATURES = ("observation", "embedding")


class RecallObservation(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Adds the ``top_k`` units the memory recalls for the current observation to the observation.

    The new observation is a dict::

        {"observation": <original>,                      # the env's own observation, unchanged
         "recall": float32 [top_k, feat_dim],            # one row per recalled unit, best first
         "recall_scores": float32 [top_k] in [-1, 1]}    # MaxSim scores (omitted if include_scores=False)

    Each step the query of ``buffer.retrieve(query, top_k)`` (exact MaxSim search; the lookup does
    not count as a hit for the utility eviction policy) is the current observation or, with
    ``context > 1``, the agent's own window of its last ``context`` observations of the episode
    (an :class:`~hippogym.ObservationWindow`, oldest first, cleared at every reset): keys over a
    window (``FeatureConfig(context=n)``) then match the agent's history, not only where it is now,
    which is what a partially observable task needs (the T-maze's cue is gone at the junction but
    still in the window). A recalled unit's row is:

    * ``features="observation"``: the unit's **final next observation**, flattened to float32 the
      way the encoder reads it (Dict keys in sorted order, uint8 images scaled to ``[0, 1]``),
      followed by the unit's **return**: where did a similar situation lead and what did it pay.
      ``feat_dim = flattened observation size + 1``. Bounds: the original space's bounds widened
      to include ``0`` (the padding value); the return column is unbounded.
    * ``features="embedding"``: the unit's key centroid (the normalised mean of its transitions'
      keys, the vector retrieval prunes with), ``feat_dim = embed_dim``, bounds ``[-1, 1]``.
      Centroids change when :meth:`~hippogym.HippocampalReplayBuffer.consolidate` retrains the
      encoder.

    While the memory is empty or holds fewer than ``top_k`` units, missing rows are zeros with
    score ``0``. Wrap a :class:`~hippogym.wrappers.RecordEpisodes` (not the other way round) to
    record raw observations and recall from them in the same loop::

        env = RecallObservation(RecordEpisodes(base_env, buffer), buffer)

    The memory must hold observations of this environment's layout (the same spaces). Units that
    a recorder with ``ingest_every > 1`` still holds for this buffer are handed over before each
    recall, so recall never misses a completed unit.

    Args:
        env: The environment (Box, Discrete, MultiDiscrete, MultiBinary or Dict observations).
        buffer: A :class:`~hippogym.HippocampalReplayBuffer` (needs ``retrieve`` and ``memory``).
        top_k: Units recalled per step, ``>= 1``.
        features: ``"observation"`` or ``"embedding"`` (see above).
        include_scores: Add the ``"recall_scores"`` entry.
        context: Observations per query (the agent's recent window). ``None`` (default): the
            buffer's featurizer context (``FeatureConfig(context=...)``, 1 by default).

    Attributes:
        last_recall: The :class:`~hippogym.replay.RetrievalResult` of the latest observation
            (``None`` while the memory is empty).

    Raises:
        ValidationError: Bad ``top_k``/``features``/``buffer``, or an unsupported observation space.
    """

    def __init__(
        self,
        env: gym.Env,
        buffer: Any,
        top_k: int = 3,
        features: str = "observation",
        include_scores: bool = True,
        context: int | None = None,
    ) -> None:
        # Recreating the env from its spec (gymnasium.make(env.spec)) shares the buffer.
        gym.utils.RecordConstructorArgs.__init__(
            self, buffer=buffer, top_k=top_k, features=features, include_scores=include_scores, context=context,
            _disable_deepcopy=True,
        )
        gym.ObservationWrapper.__init__(self, env)
        if not callable(getattr(buffer, "retrieve", None)) or getattr(buffer, "memory", None) is None:
            raise ValidationError("buffer", "a HippocampalReplayBuffer (with retrieve() and memory)", describe(buffer))
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise ValidationError("top_k", "an int >= 1", describe(top_k))
        if features not in FEATURES:
            raise ValidationError("features", f"one of {FEATURES}", repr(features))
        if context is None:
            context = int(getattr(buffer, "context", 1))
        if isinstance(context, bool) or not isinstance(context, (int, np.integer)) or context < 1:
            raise ValidationError("context", "None or an int >= 1", describe(context))
        self.context = int(context)
        self._window: deque[Any] = deque(maxlen=self.context)
        self.buffer = buffer
        self.top_k = int(top_k)
        self.features = features
        self.include_scores = bool(include_scores)
        self._conv = SpaceConverter(env.observation_space, "observation_space")
        if features == "observation":
            low, high = self._conv.flat_bounds()
            low = np.append(np.minimum(low, 0.0), -np.inf)
            high = np.append(np.maximum(high, 0.0), np.inf)
        else:
            width = int(buffer.memory.embed_dim)
            low, high = np.full(width, -1.0), np.full(width, 1.0)
        self.feat_dim = int(low.shape[0])
        self._low = np.tile(low, (self.top_k, 1)).astype(np.float32)
        self._high = np.tile(high, (self.top_k, 1)).astype(np.float32)
        entries: dict[str, spaces.Space] = {
            "observation": env.observation_space,
            "recall": spaces.Box(self._low, self._high, dtype=np.float32),
        }
        if self.include_scores:
            entries["recall_scores"] = spaces.Box(-1.0, 1.0, (self.top_k,), dtype=np.float32)
        self.observation_space = spaces.Dict(entries)
        self.last_recall: Any = None
        self._layout_checked = False

    @property
    def window_length(self) -> int:
        """Observations in the current window (at most :attr:`context`)."""
        return len(self._window)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset the environment and start a new window of recent observations."""
        self._window.clear()
        return super().reset(seed=seed, options=options)

    def observation(self, observation: Any) -> dict[str, Any]:
        """The recall-augmented observation (see the class docstring)."""
        return {"observation": observation, **self.recall(observation)}

    def recall(self, observation: Any) -> dict[str, np.ndarray]:
        """What the memory recalls for one observation of the wrapped environment.

        Args:
            observation: An observation of the wrapped environment's space.

        Returns:
            ``{"recall": [top_k, feat_dim], "recall_scores": [top_k]}`` float32 arrays (scores
            only with ``include_scores``); zero rows for missing units.

        Raises:
            ValidationError: The memory holds observations of another layout.
        """
        # Units a recorder (RecordEpisodes with ingest_every > 1) still holds go in first, so the
        # recall sees every completed unit.
        ingest_pending(self.buffer)
        query = self._conv.single(observation)
        query = (
            {k: torch.from_numpy(v) for k, v in query.items()} if isinstance(query, dict) else torch.from_numpy(query)
        )
        if self.context > 1:  # the window grows every step, recall or not
            self._window.append(query)
            query = ObservationWindow(list(self._window))
        feats = np.zeros((self.top_k, self.feat_dim), dtype=np.float32)
        scores = np.zeros(self.top_k, dtype=np.float32)
        memory = self.buffer.memory
        if self.buffer.is_empty:
            self.last_recall = None
            return self._pack(feats, scores)
        self._check_layout()
        result = self.buffer.retrieve(query, top_k=self.top_k, record_hits=False)
        self.last_recall = result
        slots = result.slots[0]
        valid = slots >= 0
        slots = slots[valid]
        k = int(slots.numel())
        if k:
            if self.features == "observation":
                rows = memory.unit_start.index_select(0, slots) + memory.unit_length.index_select(0, slots) - 1
                final = {name: bank.index_select(0, rows) for name, bank in memory.next_obs.items()}
                values = torch.cat(
                    [memory.layout.flatten(final), memory.unit_return.index_select(0, slots).unsqueeze(1)], dim=1
                )
            else:
                values = memory.centroid.index_select(0, slots)
            feats[:k] = values.numpy()
            np.clip(feats, self._low, self._high, out=feats)
            scores[:k] = result.scores[0][valid].clamp(-1.0, 1.0).numpy()
        return self._pack(feats, scores)

    def _pack(self, feats: np.ndarray, scores: np.ndarray) -> dict[str, np.ndarray]:
        if self.include_scores:
            return {"recall": feats, "recall_scores": scores}
        return {"recall": feats}

    def _check_layout(self) -> None:
        if self._layout_checked:
            return
        stored = tuple((f.name, tuple(f.shape), f.dtype) for f in self.buffer.memory.layout.fields)
        expected = tuple((f.name, tuple(f.shape), f.dtype) for f in self._conv.field_specs)
        if stored != expected:
            raise ValidationError(
                "buffer.memory.layout",
                f"observations of this environment's layout {expected}",
                f"{stored}",
                "Recall from a memory filled from the same environment (e.g. with RecordEpisodes).",
            )
        self._layout_checked = True
