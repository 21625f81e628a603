"""The hybrid replay buffer: semantic recall mixed with uniform (or prioritised) replay.

:meth:`HippocampalReplayBuffer.sample` is an RL hot path (one call per gradient step), so it runs on
numpy views of the memory's tensors and wraps the results as tensors at the end (zero-copy): the
arrays it touches are small, and numpy's per-call overhead is several times lower than torch's.
The last query's embedding and, while the memory is unchanged, its retrieval are cached: several
gradient steps per environment step usually share one query.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np
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
        # (encoder version, query features, embedding) and (key, embedding, retrieval) of the last query.
        self._query_cache: tuple[int, np.ndarray, np.ndarray] | None = None
        self._retrieval_cache: tuple[tuple[Any, ...], np.ndarray, tuple[np.ndarray, ...]] | None = None
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
        return torch.from_numpy(self._embed_np(query_state))

    def _embed_np(self, query_state: Any) -> np.ndarray:
        """:meth:`embed_queries` as numpy; returns the cached array itself on a cache hit."""
        self._need()
        feats = self.featurizer.query_np(query_state)
        version = int(self.encoder.version)
        cached = self._query_cache
        if cached is not None and cached[0] == version and cached[1].shape == feats.shape and bool((cached[1] == feats).all()):
            return cached[2]
        emb = self.encoder.encode_keys(torch.from_numpy(feats)).numpy()
        self._query_cache = (version, feats, emb)
        return emb

    def _retrieve_for_sampling(self, query_state: Any, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Retrieved ``slots`` ``[Q, k']``, their softmax weights ``pi`` and its running sum ``cdf``.

        Cached while the query embedding, the memory (:attr:`MemoryStore.mutations`), ``k``, the
        temperature and the search mode are unchanged: the same inputs give the same retrieval.
        """
        emb = self._embed_np(query_state)
        store = self.memory
        key = (store.mutations, store.index, k, self.exact_sampling, self.retrieval_temperature)
        cached = self._retrieval_cache
        if cached is not None and cached[1] is emb and cached[0] == key:
            return cached[2]
        scores, slots = store.search_np(emb, k, exact=self.exact_sampling)
        logits = np.where(slots >= 0, scores.astype(np.float64) / self.retrieval_temperature, -np.inf)
        pi = np.exp(logits - logits.max(axis=1, keepdims=True))
        pi /= pi.sum(axis=1, keepdims=True)
        out = (slots, pi, np.cumsum(pi, axis=1))
        self._retrieval_cache = (key, emb, out)
        return out

    @property
    def is_empty(self) -> bool:
        """Whether no transition is stored yet."""
        return self.featurizer is None or self.memory.num_transitions == 0

    def retrieve(
        self, query_state: Any, top_k: int | None = None, exact: bool = True, record_hits: bool = True
    ) -> RetrievalResult:
        """The ``top_k`` units most similar to each query.

        Args:
            query_state: An encoder input ``[input_dim]``/``[Q, input_dim]`` or an observation
                (batched or not; a dict for Dict spaces).
            top_k: Units per query (default: the buffer's ``top_k``).
            exact: Exact MaxSim search (default, whatever the index). ``False`` takes the index's
                fast path, the one hybrid sampling uses.
            record_hits: Count this retrieval in the units' hit counts (which feed the utility
                eviction policy). Turn off for lookups that are not recall, e.g. per-step
                observation augmentation.
        """
        k = self.top_k if top_k is None else int(top_k)
        scores, slots = self.memory.search(self.embed_queries(query_state), k, exact=exact)
        if record_hits:
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
        base_mode = SampleMode.PRIORITIZED if self.prioritized else SampleMode.UNIFORM
        parts = []
        if n_base:
            if self.sampler is not None:
                parts.append(self.sampler.sample_np(n_base)[0])
            else:
                parts.append(store.sample_rows_np(n_base, self.generator))
        retrieved = None
        if n_sem:
            k = self.top_k if top_k is None else int(top_k)
            slots, pi, cdf = self._retrieve_for_sampling(query_state, k)
            n_q, width = slots.shape
            u = torch.rand(2, n_sem, generator=self.generator, dtype=torch.float64).numpy()
            # Inverse-CDF draw of one retrieved unit per semantic draw (cheaper than multinomial).
            if n_q == 1:
                pick = np.searchsorted(cdf[0], u[0] * cdf[0, -1])
                np.minimum(pick, width - 1, out=pick)
                chosen = slots[0].take(pick)
            else:
                qidx = np.arange(n_sem) % n_q
                c = cdf[qidx]
                pick = np.minimum((c < (u[0] * c[:, -1])[:, None]).sum(1), width - 1)
                chosen = slots[qidx, pick]
            offsets = (u[1] * store._v_length.take(chosen)).astype(np.int64)
            parts.append(store._v_start.take(chosen) + offsets)
            store.record_hits_np(slots[slots >= 0])
            retrieved = (slots, pi)
        rows = parts[0] if len(parts) == 1 else np.concatenate(parts)
        fields = store.gather_np(rows)
        modes = np.full(batch_size, base_mode, dtype=np.int8)
        modes[n_base:] = SampleMode.SEMANTIC
        probs = self._probabilities_np(rows, fields["slots"], ratio, retrieved)
        if self.beta > 0:
            weights = (store.num_transitions * probs) ** -self.beta
            weights = (weights / weights.max()).astype(np.float32)
        else:
            weights = np.ones(batch_size, dtype=np.float32)

        def as_tensor(x: Any) -> Any:
            if isinstance(x, dict):
                return {name: as_tensor(v) for name, v in x.items()}
            return x if isinstance(x, Tensor) else torch.from_numpy(x)

        batch = ReplayBatch(
            as_tensor(fields["observations"]), as_tensor(fields["actions"]), torch.from_numpy(fields["rewards"]),
            as_tensor(fields["next_observations"]), torch.from_numpy(fields["terminated"]),
            torch.from_numpy(fields["truncated"]), torch.from_numpy(rows), torch.from_numpy(fields["episode_ids"]),
            torch.from_numpy(modes), torch.from_numpy(probs.astype(np.float32)), torch.from_numpy(weights),
        )
        target = self.device if device is None else torch.device(device)
        return batch if target.type == "cpu" else batch.to(target)

    def _probabilities(self, rows: Tensor, slots: Tensor, ratio: float, retrieved: tuple[Tensor, Tensor] | None) -> Tensor:
        """Probability of each row under one draw of the mixture (float64)."""
        if retrieved is not None:
            retrieved = (np.asarray(retrieved[0].numpy(), dtype=np.int64), retrieved[1].double().numpy())
        return torch.from_numpy(self._probabilities_np(
            np.asarray(rows.numpy(), dtype=np.int64), np.asarray(slots.numpy(), dtype=np.int64), ratio, retrieved))

    def _probabilities_np(
        self, rows: np.ndarray, slots: np.ndarray, ratio: float, retrieved: tuple[np.ndarray, np.ndarray] | None
    ) -> np.ndarray:
        store = self.memory
        if self.sampler is not None:
            base = self.sampler.probability_np(rows)
        else:
            base = np.full(rows.size, 1.0 / store.num_transitions)
        if retrieved is None:
            return base
        r_slots, pi = retrieved
        # Semantic mass of each retrieved unit: pi / Q summed over queries (repeats add up).
        r_flat = r_slots.reshape(-1)
        w = np.where(r_flat >= 0, pi.reshape(-1), 0.0) / r_slots.shape[0]
        if r_flat.size * rows.size <= 1 << 16:
            per_row = (slots[:, None] == r_flat[None, :]) @ w
        else:
            per_unit = np.zeros(store.num_slots, dtype=np.float64)
            valid = r_flat >= 0
            np.add.at(per_unit, r_flat[valid], w[valid])
            per_row = per_unit.take(slots)
        sem = per_row / store._v_length.take(slots)
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

    def save(self, path: str | os.PathLike[str], *, compression: str | None = None) -> Path:
        """Save the whole buffer to a ``hippo_format`` directory, atomically (see :mod:`hippogym.io`)."""
        from hippogym.io import save_buffer

        return save_buffer(self, path, compression=compression)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, verify: str = "full", device: str | torch.device = "cpu") -> "HippocampalReplayBuffer":
        """Load a buffer saved by :meth:`save`; sampling and consolidation resume exactly."""
        from hippogym.io import load_buffer

        return load_buffer(path, verify=verify, device=device)

    save_pretrained = save
    from_pretrained = load

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> str:
        """Push this memory to the Hugging Face Hub (see :func:`hippogym.integrations.hub.push_memory_to_hub`)."""
        from hippogym.integrations.hub import push_memory_to_hub

        return push_memory_to_hub(self, repo_id, **kwargs)

    save_to_hub = push_to_hub

    @classmethod
    def load_memory_from_hub(cls, repo_id: str, **kwargs: Any) -> "HippocampalReplayBuffer":
        """Load a memory from the Hub or a local path (see :func:`hippogym.integrations.hub.load_memory_from_hub`)."""
        from hippogym.integrations.hub import load_memory_from_hub

        return load_memory_from_hub(repo_id, **kwargs)
