"""The hybrid replay buffer: semantic recall mixed with uniform (or prioritised) replay."""

from __future__ import annotations

import logging
from typing import Any, Mapping, NamedTuple, Sequence

import torch
from torch import Tensor

from hippogym.consolidation.consolidator import Consolidator
from hippogym.encoders.dual import DualEncoder
from hippogym.encoders.features import ObservationLayout, TransitionFeaturizer
from hippogym.episode import Episode
from hippogym.errors import DimensionMismatchError, EmptyMemoryError, HippoError, ValidationError, describe
from hippogym.memory.samplers import PrioritizedSampler
from hippogym.memory.store import MemoryStore
from hippogym.replay.batch import ReplayBatch, SampleMode
from hippogym.replay.schedules import MixtureSchedule, make_schedule

__all__ = ["HippocampalReplayBuffer", "RetrievalResult"]

logger = logging.getLogger(__name__)


class RetrievalResult(NamedTuple):
    """Units retrieved for each query, best first.

    Attributes:
        scores: ``[Q, k]`` MaxSim scores (cosine, in [-1, 1]).
        episode_ids: ``[Q, k]`` ids of the retrieved units.
        slots: ``[Q, k]`` internal slots (for :meth:`MemoryStore` calls).
    """

    scores: Tensor
    episode_ids: Tensor
    slots: Tensor


class HippocampalReplayBuffer:
    """A replay buffer backed by a learnable episodic memory.

    ``sample`` mixes two kinds of draws. **Semantic** draws (a share ``mixture_ratio`` of the batch,
    when a query is given): the query is embedded by the key encoder, the ``top_k`` best units are
    retrieved, a unit is picked with probability ``softmax(score / retrieval_temperature)``, then a
    transition uniformly inside it. **Base** draws (the rest): uniform over all stored transitions,
    or prioritised by TD error when ``prioritized=True``.

    Args:
        memory: The store (default: ``MemoryStore(embed_dim, capacity)``).
        encoder: The encoder (default: an MLP ``DualEncoder`` sized from the first episode).
        mixture_ratio: Share of semantic draws: a float, a schedule such as
            :class:`~hippogym.replay.schedules.RampSchedule` (0.2 ramping to 0.5), or a callable of
            the number of transitions added so far. Default 0.5.
        consolidator: Trains the encoder in :meth:`consolidate` (default: created on first use).
        capacity: Transitions held when ``memory`` is not given.
        embed_dim: Key width when ``memory``/``encoder`` are not given.
        top_k: Units retrieved per query.
        retrieval_temperature: Softmax temperature over retrieved scores.
        prioritized: Use prioritised replay for the base draws.
        alpha: Priority exponent.
        beta: Importance-weight exponent (default 0.4 with ``prioritized``, else 0).
        num_actions: One-hot encode discrete actions of this many values (only with ``key_action``).
        key_action: Put actions in keys (see :mod:`hippogym.encoders.features`).
        context: Steps per encoder input (for sequence backbones).
        device: Device of returned batches.
        seed: Seed of the sampling generator: the same seed gives the same batches.
        eviction: Eviction policy when ``memory`` is not given.
        index: Retrieval index when ``memory`` is not given.
        exact_sampling: Use exact MaxSim retrieval for semantic draws too. By default sampling
            takes the index's fast path (centroids, then an exact re-rank of a few candidates),
            whose recall against exact search the memory benchmark reports; :meth:`retrieve` is
            exact with the default torch index either way.
    """

    def __init__(
        self,
        memory: MemoryStore | None = None,
        encoder: DualEncoder | None = None,
        mixture_ratio: MixtureSchedule = 0.5,
        consolidator: Consolidator | None = None,
        *,
        capacity: int = 100_000,
        embed_dim: int = 128,
        top_k: int = 5,
        retrieval_temperature: float = 0.1,
        prioritized: bool = False,
        alpha: float = 0.6,
        beta: float | None = None,
        num_actions: int | None = None,
        key_action: bool = False,
        context: int = 1,
        device: str | torch.device = "cpu",
        seed: int | None = None,
        eviction: Any = "utility",
        index: Any = "torch",
        exact_sampling: bool = False,
    ) -> None:
        if memory is not None and not isinstance(memory, MemoryStore):
            raise ValidationError("memory", "a hippogym.MemoryStore", describe(memory))
        if encoder is not None and not isinstance(encoder, DualEncoder):
            raise ValidationError("encoder", "a hippogym.DualEncoder", describe(encoder))
        if memory is not None and encoder is not None and memory.embed_dim != encoder.embed_dim:
            raise DimensionMismatchError(
                "memory.embed_dim", f"equal to encoder.embed_dim={encoder.embed_dim}", str(memory.embed_dim)
            )
        if consolidator is not None and encoder is not None and consolidator.encoder is not encoder:
            raise ValidationError("consolidator", "built on the same encoder as the buffer", "a different encoder")
        if not isinstance(top_k, int) or top_k < 1:
            raise ValidationError("top_k", "an int >= 1", describe(top_k))
        if not retrieval_temperature > 0:
            raise ValidationError("retrieval_temperature", "a float > 0", repr(retrieval_temperature))
        if memory is None:
            width = encoder.embed_dim if encoder is not None else embed_dim
            memory = MemoryStore(embed_dim=width, capacity=capacity, eviction=eviction, index=index, seed=seed)
        self.memory = memory
        self.encoder = encoder
        self.consolidator = consolidator
        self.schedule = make_schedule(mixture_ratio)
        self.top_k, self.retrieval_temperature = top_k, float(retrieval_temperature)
        self.prioritized, self.alpha = bool(prioritized), float(alpha)
        self.beta = (0.4 if prioritized else 0.0) if beta is None else float(beta)
        self.num_actions, self.key_action, self.context = num_actions, bool(key_action), int(context)
        self.device = torch.device(device)
        self.exact_sampling = bool(exact_sampling)
        self.seed = seed
        self.generator = torch.Generator().manual_seed(torch.seed() if seed is None else int(seed))
        self.sampler = PrioritizedSampler(self.memory, alpha, seed=seed) if prioritized else None
        self.featurizer: TransitionFeaturizer | None = None
        self._query_cache: tuple[int, Tensor, Tensor] | None = None
        if self.memory.allocated:
            self._make_featurizer(self.memory.layout, self.memory.action_shape)

    # ------------------------------------------------------------------ setup
    def _make_featurizer(self, layout: ObservationLayout, action_shape: Sequence[int]) -> None:
        feat = TransitionFeaturizer(layout, tuple(action_shape), self.num_actions, self.key_action, self.context)
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
            raise DimensionMismatchError("encoder.embed_dim", f"memory.embed_dim={self.memory.embed_dim}", str(self.encoder.embed_dim))
        self.featurizer = feat

    def _need(self) -> None:
        if self.featurizer is None or self.memory.num_transitions == 0:
            raise EmptyMemoryError("The buffer is empty: add episodes first (add_episode).")

    # ------------------------------------------------------------------ write
    def add_episode(self, episode: Episode) -> int:
        """Encode and store one unit (a whole episode or a segment).

        Returns:
            The unit's id.

        Raises:
            ValidationError: The episode does not match the memory's layout or the encoder.
            CapacityError: It is longer than the memory's capacity.
        """
        self.memory.check_episode(episode)
        if self.featurizer is None:
            self._make_featurizer(ObservationLayout.infer(episode.states), tuple(episode.actions.shape[1:]))
        feats = self.featurizer.episode_features(episode.states, episode.actions, episode.rewards)
        keys = self.encoder.encode_keys(feats)
        return self.memory.add(episode, keys, int(self.encoder.version))

    def add_episodes(self, episodes: Sequence[Episode]) -> list[int]:
        """Store several units; returns their ids."""
        return [self.add_episode(ep) for ep in episodes]

    # ------------------------------------------------------------------ read
    @property
    def mixture_ratio(self) -> float:
        """Share of semantic draws at the current step (transitions added so far)."""
        return float(self.schedule(self.memory.total_added))

    def __len__(self) -> int:
        return self.memory.num_transitions

    @property
    def num_episodes(self) -> int:
        """Units (episodes/segments) in memory."""
        return self.memory.num_units

    def embed_queries(self, query_state: Any) -> Tensor:
        """Key-space embeddings ``[Q, embed_dim]`` of queries (encoder inputs or observations).

        The last result is cached while the query and the encoder version stay the same (several
        gradient steps per env step query with the same observation).
        """
        self._need()
        feats = self.featurizer.query(query_state)
        version = int(self.encoder.version)
        cached = self._query_cache
        if cached is not None and cached[0] == version and cached[1].shape == feats.shape and torch.equal(cached[1], feats):
            return cached[2]
        emb = self.encoder.encode_keys(feats)
        self._query_cache = (version, feats, emb)
        return emb

    def retrieve(self, query_state: Any, top_k: int | None = None, exact: bool = True) -> RetrievalResult:
        """The ``top_k`` units most similar to each query.

        Args:
            query_state: An encoder input ``[input_dim]``/``[Q, input_dim]`` or an observation
                (batched or not; a dict for Dict spaces).
            top_k: Units per query (default: the buffer's ``top_k``).
            exact: Exact MaxSim search (default, whatever the index). ``False`` takes the index's
                fast path, the one hybrid sampling uses.
        """
        k = self.top_k if top_k is None else int(top_k)
        scores, slots = self.memory.search(self.embed_queries(query_state), k, exact=exact)
        self.memory.record_hits(slots[slots >= 0])
        return RetrievalResult(scores, self.memory.unit_id[slots.clamp(min=0)].masked_fill(slots < 0, -1), slots)

    def sample(
        self,
        batch_size: int,
        query_state: Any = None,
        top_k: int | None = None,
        device: str | torch.device | None = None,
    ) -> ReplayBatch:
        """Draw a hybrid batch.

        Args:
            batch_size: Transitions in the batch.
            query_state: What to recall around (see :meth:`retrieve`). ``None`` = base draws only.
            top_k: Units retrieved per query.
            device: Device of the batch (default: the buffer's).

        Raises:
            EmptyMemoryError: Nothing stored yet.
            ValidationError: Bad batch size or query.
        """
        self._need()
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValidationError("batch_size", "an int >= 1", describe(batch_size))
        store = self.memory
        ratio = self.mixture_ratio if query_state is not None else 0.0
        n_sem = int(round(ratio * batch_size)) if query_state is not None else 0
        n_base = batch_size - n_sem
        parts, modes = [], []
        base_mode = SampleMode.PRIORITIZED if self.prioritized else SampleMode.UNIFORM
        if n_base:
            rows = self.sampler.sample(n_base)[0] if self.sampler is not None else store.sample_rows(n_base, self.generator)
            parts.append(rows)
        retrieved = None
        if n_sem:
            k = self.top_k if top_k is None else int(top_k)
            scores, slots = store.search(self.embed_queries(query_state), k, exact=self.exact_sampling)
            valid = slots >= 0
            pi = torch.softmax((scores / self.retrieval_temperature).masked_fill(~valid, -torch.inf), dim=1)
            qidx = torch.arange(n_sem) % slots.shape[0]
            # Inverse-CDF draw of one retrieved unit per semantic draw (cheaper than multinomial).
            cdf = torch.cumsum(pi, dim=1)
            u = torch.rand(n_sem, 1, generator=self.generator) * cdf[qidx, -1:]
            pick = torch.searchsorted(cdf[qidx], u).squeeze(1).clamp_(max=slots.shape[1] - 1)
            chosen = slots[qidx, pick]
            offsets = (torch.rand(n_sem, generator=self.generator) * store.unit_length[chosen]).long()
            parts.append(store.unit_start[chosen] + offsets)
            store.record_hits(slots[valid])
            retrieved = (slots, pi)
        rows = parts[0] if len(parts) == 1 else torch.cat(parts)
        fields = store.gather(rows)
        modes = torch.full((batch_size,), base_mode, dtype=torch.int8)
        modes[n_base:] = SampleMode.SEMANTIC
        probs = self._probabilities(rows, fields["slots"], ratio, retrieved)
        if self.beta > 0:
            weights = (store.num_transitions * probs).pow(-self.beta)
            weights = (weights / weights.max()).float()
        else:
            weights = torch.ones(batch_size)
        batch = ReplayBatch(
            fields["observations"], fields["actions"], fields["rewards"], fields["next_observations"],
            fields["terminated"], fields["truncated"], rows, fields["episode_ids"], modes, probs.float(), weights,
        )
        target = self.device if device is None else torch.device(device)
        return batch if target.type == "cpu" else batch.to(target)

    def _probabilities(self, rows: Tensor, slots: Tensor, ratio: float, retrieved: tuple[Tensor, Tensor] | None) -> Tensor:
        store = self.memory
        if self.sampler is not None:
            base = self.sampler.probability(rows).double()
        else:
            base = torch.full((rows.numel(),), 1.0 / store.num_transitions, dtype=torch.float64)
        if retrieved is None:
            return base
        r_slots, pi = retrieved
        valid = r_slots >= 0
        per_unit = torch.zeros(store.num_slots, dtype=torch.float64)
        per_unit.index_add_(0, r_slots[valid], pi[valid].double() / r_slots.shape[0])
        sem = per_unit.index_select(0, slots) / store.unit_length.index_select(0, slots).double()
        return (1.0 - ratio) * base + ratio * sem

    def update_priorities(self, indices: Tensor, priorities: Tensor) -> None:
        """Set priorities (e.g. ``|TD error|``) of sampled transitions (``batch.indices``).

        Raises:
            HippoError: The buffer was built without ``prioritized=True``.
        """
        if self.sampler is None:
            raise HippoError("update_priorities needs a buffer built with prioritized=True.")
        self.sampler.update(indices, priorities)

    def episode(self, episode_id: int) -> Episode:
        """Rebuild a stored unit by id (e.g. one returned by :meth:`retrieve`).

        Raises:
            KeyError: No unit with that id is in memory (never stored, or evicted).
        """
        match = (self.memory.unit_id[: self.memory.num_slots] == int(episode_id)) & self.memory.unit_alive[: self.memory.num_slots]
        hits = match.nonzero()
        if hits.numel() == 0:
            raise KeyError(f"No unit with id {episode_id} is in memory (it was never stored or was evicted).")
        return self.memory.unit_episode(int(hits[0]))

    # ------------------------------------------------------------------ consolidation
    def consolidate(self, steps: int = 50, batch_size: int = 64, report_quality: bool = False) -> dict[str, Any]:
        """Train the encoder on the memory ("sleep"), then refresh stored keys.

        See :meth:`Consolidator.consolidate` for the metrics returned.
        """
        self._need()
        if self.consolidator is None:
            self.consolidator = Consolidator(self.encoder)
        return self.consolidator.consolidate(self.memory, self.featurizer, steps, batch_size, report_quality)

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict[str, Any]:
        """JSON description of the buffer's settings."""
        schedule = self.schedule.config() if hasattr(self.schedule, "config") else {"type": "callable"}
        return {
            "mixture_ratio": schedule, "top_k": self.top_k, "retrieval_temperature": self.retrieval_temperature,
            "prioritized": self.prioritized, "alpha": self.alpha, "beta": self.beta,
            "num_actions": self.num_actions, "key_action": self.key_action, "context": self.context,
            "exact_sampling": self.exact_sampling, "featurizer": None if self.featurizer is None else self.featurizer.config(),
        }

    def state_dict(self) -> dict[str, Any]:
        """State of every part: memory, encoder, consolidator, sampler and generator."""
        return {
            "config": self.config(),
            "memory": self.memory.state_dict(),
            "encoder": None if self.encoder is None else self.encoder.state_dict(),
            "encoder_config": None if self.encoder is None else self.encoder.config(),
            "consolidator": None if self.consolidator is None else self.consolidator.state_dict(),
            "consolidator_config": None if self.consolidator is None else self.consolidator.config(),
            "sampler": None if self.sampler is None else self.sampler.state_dict(),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` into a buffer built with the same configuration."""
        self.memory.load_state_dict(state["memory"])
        if state.get("encoder") is not None:
            if self.encoder is None:
                self.encoder = DualEncoder.from_config(state["encoder_config"])
            self.encoder.load_state_dict(state["encoder"])
        if self.memory.allocated:
            self.featurizer = None
            self._make_featurizer(self.memory.layout, self.memory.action_shape)
        if state.get("consolidator") is not None:
            if self.consolidator is None:
                self.consolidator = Consolidator.from_config(self.encoder, state["consolidator_config"])
            self.consolidator.load_state_dict(state["consolidator"])
        if self.sampler is not None and state.get("sampler") is not None:
            self.sampler.load_state_dict(state["sampler"])
        self.generator.set_state(torch.as_tensor(state["generator"], dtype=torch.uint8))
