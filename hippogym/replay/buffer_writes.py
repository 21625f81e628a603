"""How episodes enter the replay buffer: one encoder pass per batch of finished units.

A mixin of :class:`~hippogym.replay.buffer.HippocampalReplayBuffer`: ``add_episode`` and
``add_episodes`` check the episodes against the memory's layout, build the featurizer on the first
episode, embed every unit of the batch in one pass of the key encoder and hand rows and keys to
:meth:`hippogym.MemoryStore.add`. The recorders, the SB3 adapter and the Minari loaders reach this
through :class:`hippogym.replay.ingest.EpisodeIngestor`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch

from hippogym.blas import blas_limited
from hippogym.encoders.dual import DualEncoder
from hippogym.encoders.features import ObservationLayout, TransitionFeaturizer
from hippogym.episode import Episode
from hippogym.errors import DimensionMismatchError, EmptyMemoryError
from hippogym.replay import checks

__all__ = ["BufferWriteMixin"]


class BufferWriteMixin:
    """``add_episode``/``add_episodes`` and the featurizer they build on first use."""

    def _make_featurizer(self, layout: ObservationLayout, action_shape: Sequence[int]) -> None:
        feat = TransitionFeaturizer(
            layout, tuple(action_shape), self.num_actions, self.key_action, self.context, self.key_reward
        )
        if self.encoder is None:
            # The buffer's seed also fixes the initial weights of an encoder it creates itself,
            # so two buffers with the same seed give the same batches.
            with torch.random.fork_rng(devices=[]):
                if self.seed is not None:
                    torch.manual_seed(self.seed)
                self.encoder = DualEncoder(input_dim=feat.dim, embed_dim=self.memory.embed_dim)
        if self.encoder.input_dim != feat.dim:
            raise DimensionMismatchError(
                "encoder.input_dim",
                f"{feat.dim} = observation {feat.obs_dim} + action {feat.action_dim} + reward 1"
                + (f", times context {self.context}" if self.context > 1 else ""),
                str(self.encoder.input_dim),
                "Build the DualEncoder with that input_dim.",
            )
        if self.encoder.embed_dim != self.memory.embed_dim:
            raise DimensionMismatchError(
                "encoder.embed_dim", f"memory.embed_dim={self.memory.embed_dim}", str(self.encoder.embed_dim)
            )
        self.featurizer = feat

    def _need(self) -> None:
        if self.featurizer is None or self.memory.num_transitions == 0:
            raise EmptyMemoryError("The buffer is empty: add episodes first (add_episode).")

    # ------------------------------------------------------------------ write
    @blas_limited
    def add_episode(self, episode: Episode) -> int:
        """Encode and store one unit (a whole episode or a segment).

        Returns:
            The unit's id.

        Raises:
            ValidationError: The episode does not match the memory's layout or the encoder.
            CapacityError: It is longer than the memory's capacity.
        """
        checks.check_episode_values(episode)
        self.memory.check_episode(episode)
        if self.featurizer is None:
            self._make_featurizer(ObservationLayout.infer(episode.states), tuple(episode.actions.shape[1:]))
        feats = self.featurizer.episode_features(episode.states, episode.actions, episode.rewards)
        keys = self.encoder.encode_keys(feats)
        return self.memory.add(episode, keys, int(self.encoder.version))

    @blas_limited
    def add_episodes(self, episodes: Sequence[Episode]) -> list[int]:
        """Store several units, in order; returns their ids.

        The same as calling :meth:`add_episode` for each unit (same ids, same memory state), but
        faster: the keys of about 1024 transitions at a time come from one encoder pass instead
        of one pass per unit (the encoder's per-call overhead dominates for short units; larger
        passes gain nothing more and leave the CPU cache). Keys agree with :meth:`add_episode`'s
        to float32 rounding. If a unit is rejected, the units before it are stored and the error
        is raised, as with the loop.

        Raises:
            ValidationError: A unit does not match the memory's layout or the encoder.
            CapacityError: A unit is longer than the memory's capacity.
        """
        episodes = list(episodes)
        ids: list[int] = []
        start = 0
        while start < len(episodes) and (self.featurizer is None or not self.memory.allocated):
            ids.append(self.add_episode(episodes[start]))  # the first unit fixes the layout
            start += 1
        error: Exception | None = None
        group: list[Episode] = []
        rows = 0
        for episode in itertools.chain(episodes[start:], [None]):
            if episode is not None and error is None:
                try:
                    self.memory.check_episode(episode)
                except Exception as exc:  # noqa: BLE001 - raised once the units before it are stored
                    error = exc
                else:
                    group.append(episode)
                    rows += len(episode)
                    if rows < 1024:
                        continue
            if group:
                feats = [self.featurizer.episode_features(ep.states, ep.actions, ep.rewards) for ep in group]
                keys = self.encoder.encode_keys(torch.cat(feats) if len(feats) > 1 else feats[0])
                version = int(self.encoder.version)
                offset = 0
                for ep in group:
                    ids.append(self.memory.add(ep, keys[offset : offset + len(ep)], version))
                    offset += len(ep)
                group, rows = [], 0
            if error is not None:
                raise error
        return ids
