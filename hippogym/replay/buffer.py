"""The hybrid replay buffer: semantic recall mixed with uniform (or prioritised) replay.

:meth:`HippocampalReplayBuffer.sample` is an RL hot path (one call per gradient step), so it runs on
numpy views of the memory's tensors and wraps the results as tensors at the end (zero-copy): the
arrays it touches are small, and numpy's per-call overhead is several times lower than torch's.
The last query's embedding and, while the memory is unchanged, its retrieval are cached: several
gradient steps per environment step usually share one query.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, NamedTuple

import numpy as np
import torch
from torch import Tensor

from hippogym.blas import blas_limited
from hippogym.consolidation.consolidator import Consolidator
from hippogym.encoders.dual import DualEncoder
from hippogym.encoders.features import TransitionFeaturizer
from hippogym.episode import Episode
from hippogym.errors import DimensionMismatchError, HippoError, ValidationError, describe
from hippogym.memory.samplers import PrioritizedSampler
from hippogym.memory.samplers.semantic import Recall, SemanticSampler
from hippogym.memory.store import MemoryStore
from hippogym.replay import checks
from hippogym.replay.batch import ReplayBatch, SampleMode
from hippogym.replay.buffer_state import BufferStateMixin
from hippogym.replay.buffer_writes import BufferWriteMixin
from hippogym.replay.defaults import build_default_consolidator
from hippogym.replay.hindsight import HindsightRelabeler
from hippogym.replay.schedules import MixtureSchedule, make_schedule
from hippogym.replay.settings import (
    LEGACY_KWARGS,
    FeatureConfig,
    PrioritizedSpec,
    SamplerSpec,
    SemanticConfig,
    UniformSpec,
    coerce_features,
    coerce_sampler_spec,
    coerce_semantic,
    legacy_sampler_spec,
    pop_legacy,
)
from hippogym.replay.stats import buffer_stats
from hippogym.replay.targets import ValueTargets
from hippogym.replay.value import EpisodicValues, memory_episodic_values
from hippogym.replay.windows import WindowBatch, sample_windows
from hippogym.returns import RETURNS_GAMMA
from hippogym.types import DEFAULT_EMBED_DIM

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


def _as_tensor(x: Any) -> Any:
    """numpy arrays (or a dict of them) as tensors, zero-copy; tensors pass through."""
    if isinstance(x, dict):
        return {name: _as_tensor(v) for name, v in x.items()}
    return x if isinstance(x, Tensor) else torch.from_numpy(x)


class HippocampalReplayBuffer(BufferWriteMixin, BufferStateMixin):
    """A replay buffer backed by a learnable episodic memory.

    ``sample`` mixes two kinds of draws. **Semantic** draws (a share ``mixture_ratio`` of the batch,
    when a query is given): the query is embedded by the key encoder, the ``top_k`` best units are
    retrieved, a unit is picked with probability ``softmax(score / temperature)``, then a
    transition uniformly inside it (or by priority, ``SemanticConfig(rows="priority")``). **Base**
    draws (the rest): uniform over all stored transitions, or prioritised by TD error with
    ``sampler="prioritized"``.

    Args:
        memory: The store (default: ``MemoryStore(embed_dim=64, capacity=100_000, seed=seed)``,
            with the encoder's ``embed_dim`` when an encoder is given).
        encoder: The encoder (default: an MLP ``DualEncoder`` sized from the first episode).
        mixture_ratio: Share of semantic draws: a float, a schedule such as
            :class:`~hippogym.replay.schedules.RampSchedule` (0.2 ramping to 0.5), or a callable of
            the number of transitions added so far. Default 0.5.
        consolidator: Trains the encoder in :meth:`consolidate`: a :class:`Consolidator`, or a
            dict of settings of the one the buffer creates on first use (e.g.
            ``{"temperature": 0.05, "reward_weight": 0.5, "reward_mode": "rank"}``; default: none,
            the default consolidator is created on first use).
        sampler: The base draws: ``None``/``"uniform"``, ``"prioritized"``, a
            :class:`~hippogym.replay.settings.PrioritizedSpec` (``alpha``, ``beta``) or
            :class:`~hippogym.replay.settings.UniformSpec` (``beta``), a dict of a spec's fields
            (with ``"type"``: ``"prioritized"``, the default, or ``"uniform"``), or a
            :class:`~hippogym.memory.samplers.PrioritizedSampler` built on ``memory``.
        semantic: Semantic-draw settings: a :class:`~hippogym.replay.settings.SemanticConfig`
            (``top_k``, ``temperature``, ``exact``) or a dict of its fields. By default sampling
            takes the index's fast path (``exact=False``: centroids, then an exact re-rank of a
            few candidates); :meth:`retrieve` is exact with the default torch index either way.
        features: Featurizer settings: a :class:`~hippogym.replay.settings.FeatureConfig`
            (``num_actions``, ``key_action``, ``context``, ``key_reward``) or a dict of its fields.
            Keys, and queries through the same function, see the observation only by default.
        device: Device of returned batches.
        seed: Seed of the sampling generator (and of the default memory, encoder, sampler and
            consolidator): the same seed gives the same batches.
        **deprecated: The old flat keyword arguments, accepted for one release with a
            :class:`DeprecationWarning` naming the new spelling: ``capacity``, ``embed_dim``,
            ``eviction``, ``index``, ``key_dtype`` (the default ``memory``),
            ``consolidator_kwargs`` (``consolidator``), ``prioritized``, ``alpha``, ``beta``
            (``sampler``), ``top_k``, ``retrieval_temperature``, ``exact_sampling``
            (``semantic``), ``num_actions``, ``key_action``, ``context`` (``features``).

    Raises:
        TypeError: An unknown keyword argument.
        ValidationError: A bad setting, or an old keyword argument given together with the
            argument that replaces it.

    Example:
        >>> from hippogym import MemoryStore
        >>> from hippogym.replay.settings import PrioritizedSpec, SemanticConfig
        >>> buffer = HippocampalReplayBuffer(MemoryStore(embed_dim=16, capacity=1_000, seed=0),
        ...                                  sampler=PrioritizedSpec(alpha=0.6, beta=0.4),
        ...                                  semantic=SemanticConfig(top_k=3), seed=0)
        >>> buffer.top_k, buffer.prioritized
        (3, True)
    """

    def __init__(
        self,
        memory: MemoryStore | None = None,
        encoder: DualEncoder | None = None,
        mixture_ratio: MixtureSchedule = 0.5,
        consolidator: Consolidator | Mapping[str, Any] | None = None,
        *,
        sampler: Any = None,
        semantic: SemanticConfig | Mapping[str, Any] | None = None,
        features: FeatureConfig | Mapping[str, Any] | None = None,
        device: str | torch.device = "cpu",
        seed: int | None = None,
        **deprecated: Any,
    ) -> None:
        unknown = [name for name in deprecated if name not in LEGACY_KWARGS]
        if unknown:
            raise TypeError(f"HippocampalReplayBuffer.__init__() got an unexpected keyword argument {unknown[0]!r}")
        given = {"memory": memory, "consolidator": None, "sampler": sampler, "semantic": semantic, "features": features}
        legacy: dict[str, dict[str, Any]] = {}
        for group in given:  # a loop, not a comprehension: the warnings point at the caller's line
            legacy[group] = pop_legacy(deprecated, group)
        for group, values in legacy.items():
            if values and given[group] is not None:
                old = sorted(
                    name for name, (g, _) in LEGACY_KWARGS.items() if g == group and LEGACY_KWARGS[name][1] in values
                )
                raise ValidationError(group, f"given without the old {old} it replaces", f"also {old}")
        if memory is not None and not isinstance(memory, MemoryStore):
            raise ValidationError("memory", "a hippogym.MemoryStore", describe(memory))
        if encoder is not None and not isinstance(encoder, DualEncoder):
            raise ValidationError("encoder", "a hippogym.DualEncoder", describe(encoder))
        if memory is not None and encoder is not None and memory.embed_dim != encoder.embed_dim:
            raise DimensionMismatchError(
                "memory.embed_dim", f"equal to encoder.embed_dim={encoder.embed_dim}", str(memory.embed_dim)
            )
        consolidator_kwargs = legacy["consolidator"].get("")
        if consolidator is not None and not isinstance(consolidator, (Consolidator, Mapping)):
            raise ValidationError(
                "consolidator", "a Consolidator, a dict of its settings or None", describe(consolidator)
            )
        if isinstance(consolidator, Mapping):
            if consolidator_kwargs:
                raise ValidationError(
                    "consolidator_kwargs", "None when consolidator= is given", repr(dict(consolidator_kwargs))
                )
            consolidator, consolidator_kwargs = None, consolidator
        if consolidator is not None and encoder is not None and consolidator.encoder is not encoder:
            raise ValidationError("consolidator", "built on the same encoder as the buffer", "a different encoder")
        if consolidator is not None and consolidator_kwargs:
            raise ValidationError(
                "consolidator_kwargs", "None when a consolidator is given", repr(dict(consolidator_kwargs))
            )
        sem = coerce_semantic(legacy["semantic"] or semantic)
        feats = coerce_features(legacy["features"] or features)
        instance = sampler if isinstance(sampler, PrioritizedSampler) else None
        if instance is not None:
            if memory is None and isinstance(instance.store, MemoryStore):
                memory = instance.store
            if instance.store is not memory:
                raise ValidationError(
                    "sampler", "a PrioritizedSampler built on the buffer's memory", "one on another store"
                )
            spec: SamplerSpec = PrioritizedSpec(alpha=instance.alpha)
        elif legacy["sampler"]:
            spec = legacy_sampler_spec(legacy["sampler"])
        else:
            spec = coerce_sampler_spec(sampler)
        if memory is None:
            store = {"embed_dim": DEFAULT_EMBED_DIM, "capacity": 100_000, **legacy["memory"]}
            if encoder is not None:
                store["embed_dim"] = encoder.embed_dim
            memory = MemoryStore(**store, seed=seed)
        self.memory = memory
        self.encoder = encoder
        self.consolidator = consolidator
        self.schedule = make_schedule(mixture_ratio)
        self.top_k, self.retrieval_temperature = sem.top_k, float(sem.temperature)
        self.prioritized = isinstance(spec, PrioritizedSpec)
        #: Priority exponent (meaningful with prioritised draws; kept for :meth:`config`).
        self.alpha = float(spec.alpha if isinstance(spec, PrioritizedSpec) else legacy["sampler"].get("alpha", 0.6))
        self.beta = float(spec.beta)
        self.num_actions, self.key_action, self.context = feats.num_actions, bool(feats.key_action), int(feats.context)
        self.key_reward = bool(feats.key_reward)
        self.device = torch.device(device)
        self.exact_sampling = bool(sem.exact)
        self.semantic_rows = sem.rows
        if self.semantic_rows == "priority" and not self.prioritized:
            raise ValidationError(
                "semantic.rows", "'uniform' unless base draws are prioritised (sampler='prioritized')", "'priority'"
            )
        self.seed = seed
        self.consolidator_kwargs = dict(consolidator_kwargs or {})
        #: Where the memory came from (env id, Minari dataset, ...); saved in the manifest.
        self.provenance: dict[str, Any] = {}
        #: Gymnasium spaces of the recorded data, when known; saved in the manifest as JSON.
        self.spaces: dict[str, Any] = {}
        #: How units were segmented, when known; saved in the manifest.
        self.segmenter_config: dict[str, Any] = {}
        self.generator = torch.Generator().manual_seed(torch.Generator().seed() if seed is None else int(seed))
        if instance is not None:
            self.sampler: PrioritizedSampler | None = instance
        else:
            self.sampler = PrioritizedSampler(self.memory, self.alpha, seed=seed) if self.prioritized else None
        #: Learning targets applied to every sampled batch (see :meth:`use_value_targets`).
        self.targets: ValueTargets | None = None
        self.featurizer: TransitionFeaturizer | None = None
        # (encoder version, query features, embedding) and (key, embedding, retrieval) of the last query.
        self._query_cache: tuple[int, np.ndarray, np.ndarray] | None = None
        # A consolidation training on a worker thread (consolidate(background=True)), until applied.
        self._background: Any = None
        #: Semantic draws (retrieval, unit softmax, row probabilities); shares the generator.
        self.semantic_sampler = SemanticSampler(
            self.memory, self.retrieval_temperature, self.exact_sampling, self.generator
        )
        if self.memory.allocated:
            self._make_featurizer(self.memory.layout, self.memory.action_shape)

    @property
    def semantic(self) -> SemanticConfig:
        """The semantic-draw settings (``top_k``, ``retrieval_temperature``, ``exact_sampling``)."""
        return SemanticConfig(
            top_k=self.top_k, temperature=self.retrieval_temperature, exact=self.exact_sampling, rows=self.semantic_rows
        )

    @property
    def features(self) -> FeatureConfig:
        """The featurizer settings (``num_actions``, ``key_action``, ``context``, ``key_reward``)."""
        return FeatureConfig(
            num_actions=self.num_actions, key_action=self.key_action, context=self.context, key_reward=self.key_reward
        )

    @property
    def sampler_spec(self) -> SamplerSpec:
        """The base-draw settings as a spec (``alpha``/``beta``, or ``beta`` for uniform draws)."""
        return PrioritizedSpec(alpha=self.alpha, beta=self.beta) if self.prioritized else UniformSpec(beta=self.beta)

    # ------------------------------------------------------------------ setup

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

    @blas_limited
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
        if (
            cached is not None
            and cached[0] == version
            and cached[1].shape == feats.shape
            and bool((cached[1] == feats).all())
        ):
            return cached[2]
        emb = self.encoder.encode_keys_np(feats)
        self._query_cache = (version, feats, emb)
        return emb

    def _recall(self, query_state: Any, k: int) -> Recall:
        """Retrieval for semantic draws (cached by the semantic sampler while nothing changed)."""
        emb = self._embed_np(query_state)
        return self.semantic_sampler.recall(emb, k, self.retrieval_temperature, self.exact_sampling)

    @property
    def is_empty(self) -> bool:
        """Whether no transition is stored yet."""
        return self.featurizer is None or self.memory.num_transitions == 0

    @blas_limited
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
        k = self.top_k if top_k is None else checks.check_top_k(top_k)
        scores, slots = self.memory.search(self.embed_queries(query_state), k, exact=exact)
        if record_hits:
            self.memory.record_hits(slots[slots >= 0])
        return RetrievalResult(scores, self.memory.unit_id[slots.clamp(min=0)].masked_fill(slots < 0, -1), slots)

    @blas_limited
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
        batch_size, top_k = checks.check_batch_size(batch_size), checks.check_top_k(top_k)
        store = self.memory
        ratio = self.mixture_ratio if query_state is not None else 0.0
        n_sem = int(round(ratio * batch_size)) if query_state is not None else 0
        n_base = batch_size - n_sem
        base_mode = SampleMode.PRIORITIZED if self.prioritized else SampleMode.UNIFORM
        recall = None
        base_probs: np.ndarray | None = None
        if n_sem:
            recall = self._recall(query_state, self.top_k if top_k is None else int(top_k))
        # One generator call for all uniform numbers when the ring has no holes (the usual case).
        if n_base and self.sampler is None and store.num_transitions == store.high_water:
            u = torch.rand(n_base + 2 * n_sem, generator=self.generator, dtype=torch.float64).numpy()
            base = (u[:n_base] * store.high_water).astype(np.int64)
            u = u[n_base:]
        else:
            base = None
            if n_base:
                if self.sampler is not None:
                    base, base_probs = self.sampler.sample_np(n_base)
                else:
                    base = store.sample_rows_np(n_base, self.generator)
            if n_sem:
                u = torch.rand(2 * n_sem, generator=self.generator, dtype=torch.float64).numpy()
        rows = base
        if recall is not None:
            semantic = self.semantic_sampler.draw_np(recall, u[: 2 * n_sem], self._row_weights())
            rows = semantic if base is None else np.concatenate((base, semantic))
            self.semantic_sampler.record_hits(recall)
        fields = store.gather_np(rows)
        modes = np.full(batch_size, base_mode, dtype=np.int8)
        modes[n_base:] = SampleMode.SEMANTIC
        if recall is None and base_probs is not None:
            probs = base_probs  # the sampler's own probabilities of its draws (no semantic share to mix in)
        else:
            probs = self._mixture_probabilities(rows, fields["slots"], ratio, recall)
        if self.beta > 0:
            weights = (store.num_transitions * probs) ** -self.beta
            weights = (weights / weights.max()).astype(np.float32)
        else:
            weights = np.ones(batch_size, dtype=np.float32)

        batch = ReplayBatch(
            _as_tensor(fields["observations"]),
            _as_tensor(fields["actions"]),
            torch.from_numpy(fields["rewards"]),
            _as_tensor(fields["next_observations"]),
            torch.from_numpy(fields["terminated"]),
            torch.from_numpy(fields["truncated"]),
            torch.from_numpy(rows),
            torch.from_numpy(fields["episode_ids"]),
            torch.from_numpy(modes),
            torch.from_numpy(probs.astype(np.float32)),
            torch.from_numpy(weights),
        )
        if self.targets is not None:
            batch = self.targets.apply(batch)
        target = self.device if device is None else torch.device(device)
        return batch if target.type == "cpu" else batch.to(target)

    def use_value_targets(
        self,
        gamma: float = 0.99,
        n_steps: int = 1,
        returns: bool = True,
        relabeler: HindsightRelabeler | None = None,
    ) -> ValueTargets:
        """Make every sampled batch carry value targets from the stored units.

        Batches then hold ``n_steps``-step ``rewards``/``next_observations``/``terminated`` with
        their ``discounts`` (Stable-Baselines3's ``NStepReplayBuffer`` semantics), the rows'
        discounted ``returns``-to-go with ``return_discounts``/``tail_observations`` to complete
        a partial one, and, with a ``relabeler``, hindsight goals (see
        :class:`~hippogym.replay.targets.ValueTargets`). Calling it again replaces the targets.

        Args:
            gamma: Discount in ``[0, 1]``.
            n_steps: Rewards summed per TD target (1 = the stored transition).
            returns: Keep returns-to-go (a per-row table updated as units come and go).
            relabeler: A :class:`~hippogym.replay.hindsight.HindsightRelabeler`, or ``None``.

        Returns:
            The targets part (also :attr:`targets`).

        Example:
            >>> from hippogym import MemoryStore
            >>> buffer = HippocampalReplayBuffer(MemoryStore(capacity=1_000, seed=0), seed=0)
            >>> targets = buffer.use_value_targets(gamma=0.99, n_steps=3)
            >>> targets.n_steps
            3
        """
        if self.targets is not None:
            self.targets.detach()
        self.targets = ValueTargets(self.memory, gamma=gamma, n_steps=n_steps, returns=returns, relabeler=relabeler)
        return self.targets

    @blas_limited
    def episodic_values(
        self, query_state: Any, k: int = 8, *, mode: str = "max", actions: Any = None, gamma: float | None = None
    ) -> EpisodicValues:
        """What the memory says states are worth: returns-to-go of their ``k`` nearest stored transitions.

        The MFEC / NEC / EMDQN estimate (see :mod:`hippogym.replay.value`): queries are embedded
        like any query (observations, batched or not, or :class:`~hippogym.ObservationWindow`),
        the search is exact over every stored key, and ``mode`` reduces the neighbours' returns
        (``"max"``: the best return collected from similar states, a lower bound of the optimal
        value; ``"mean"``; ``"kernel"``).

        Args:
            query_state: The states to value.
            k: Neighbours per query.
            mode: ``"max"``, ``"mean"`` or ``"kernel"``.
            actions: ``[B]`` integer actions: only transitions that took them count (``Q(s, a)``).
            gamma: Discount (default: the value targets', else 0.99); the value targets' table is
                reused when the discounts agree.

        Returns:
            An :class:`~hippogym.replay.value.EpisodicValues` (``values`` ``[B]``, ``nan`` where a
            query has no eligible neighbour; ``rows`` are stored rows).
        """
        self._need()
        table = None if self.targets is None else self.targets.table
        if gamma is None:
            gamma = RETURNS_GAMMA if self.targets is None else self.targets.gamma
        returns = table.table if table is not None and table.gamma == float(gamma) else None
        query_actions = None if actions is None else torch.as_tensor(actions).reshape(-1).long()
        return memory_episodic_values(
            self.memory, self.embed_queries(query_state), float(gamma), k, mode=mode,
            query_actions=query_actions, returns=returns,
        )

    def _mixture_probabilities(
        self, rows: np.ndarray, slots: np.ndarray, ratio: float, recall: Recall | None
    ) -> np.ndarray:
        """Probability of drawing each row in one draw of the mixture (what ``sample`` reports)."""
        store = self.memory
        if self.sampler is not None:
            base_p = self.sampler.probability_np(rows)
        else:
            base_p = np.full(rows.size, 1.0 / store.num_transitions)
        if recall is None:
            return base_p
        weights = self._row_weights()
        if weights is None:
            probs = self.semantic_sampler.row_mass_table(recall).take(slots)
        else:
            probs = self.semantic_sampler.weighted_probability_np(recall, rows, slots, weights)
        probs *= ratio
        probs += (1.0 - ratio) * base_p
        return probs

    def _row_weights(self) -> Any:
        """The sum tree semantic draws weight rows by (``semantic.rows == "priority"``), else ``None``."""
        return self.sampler.tree if self.semantic_rows == "priority" and self.sampler is not None else None

    @blas_limited
    def update_priorities(self, indices: Tensor, priorities: Tensor) -> None:
        """Set priorities (e.g. ``|TD error|``) of sampled transitions (``batch.indices``).

        Raises:
            HippoError: The buffer was built without prioritised draws (``sampler="prioritized"``).
        """
        if self.sampler is None:
            raise HippoError("update_priorities needs a buffer built with prioritized draws (sampler='prioritized').")
        self.sampler.update(indices, priorities)

    def episode(self, episode_id: int) -> Episode:
        """Rebuild a stored unit by id (e.g. one returned by :meth:`retrieve`).

        Raises:
            KeyError: No unit with that id is in memory (never stored, or evicted).
        """
        match = (self.memory.unit_id[: self.memory.num_slots] == int(episode_id)) & self.memory.unit_alive[
            : self.memory.num_slots
        ]
        hits = match.nonzero()
        if hits.numel() == 0:
            raise KeyError(f"No unit with id {episode_id} is in memory (it was never stored or was evicted).")
        return self.memory.unit_episode(int(hits[0]))

    # ------------------------------------------------------------------ consolidation
    @blas_limited
    def consolidate(
        self,
        steps: int = 50,
        batch_size: int = 64,
        report_quality: bool = False,
        progress: bool = False,
        *,
        tb_writer: Any = None,
        tb_log_every: int = 10,
        background: bool = False,
    ) -> Any:
        """Train the encoder on the memory ("sleep"), then refresh stored keys.

        See :meth:`Consolidator.consolidate` for the metrics returned; ``progress=True`` shows a
        progress bar over the steps (tqdm, or INFO log lines without it); a ``tb_writer``
        (``SummaryWriter``) receives the losses every ``tb_log_every`` steps and the call's metrics.

        With ``background=True`` the call returns at once with a
        :class:`~hippogym.consolidation.background.BackgroundConsolidation`: the batches are drawn
        now, a copy of the encoder trains on a worker thread, and :meth:`apply_consolidation`
        installs the result and refreshes keys (see that module). The next ``consolidate`` call
        applies a pending one first.
        """
        self._need()
        if self.consolidator is None:
            self.consolidator = build_default_consolidator(self.encoder, self.seed, self.consolidator_kwargs)
        if self._background is not None:
            self.apply_consolidation(wait=True)
        if background:
            from hippogym.consolidation.background import BackgroundConsolidation

            self._background = BackgroundConsolidation(
                self.consolidator, self.memory, self.featurizer, steps, batch_size, report_quality
            )
            return self._background
        return self.consolidator.consolidate(
            self.memory, self.featurizer, steps, batch_size, report_quality, progress,
            tb_writer=tb_writer, tb_log_every=tb_log_every,
        )

    @property
    def consolidation_pending(self) -> bool:
        """Whether a background consolidation has not been applied yet."""
        return self._background is not None

    def apply_consolidation(self, wait: bool = False) -> dict[str, Any] | None:
        """Install a background consolidation's result once its training is done.

        Args:
            wait: Block until training finishes (otherwise return ``None`` while it runs).

        Returns:
            Its metrics once applied; ``None`` if nothing is pending or it is still training.
        """
        job = self._background
        if job is None or (not wait and not job.done()):
            return None
        self._background = None
        self._query_cache = None
        return job.apply()

    # ------------------------------------------------------------------ seed parity (small helpers)
    def _set_mixture_ratio(self, value: MixtureSchedule) -> None:
        self.schedule = make_schedule(value)

    #: Share of semantic draws now; assigning a float or a schedule replaces :attr:`schedule`
    #: (``buffer.mixture_ratio = 0.2`` to ramp it by hand, as the seed did).
    mixture_ratio = mixture_ratio.setter(_set_mixture_ratio)

    def stats(self) -> dict[str, Any]:
        """Sizes, units, returns and outcomes of the memory (see :func:`hippogym.replay.stats.buffer_stats`)."""
        return buffer_stats(self)

    @blas_limited
    def sample_windows(self, batch_size: int, length: int, *, strict: bool = True) -> WindowBatch:
        """Windows of ``length`` consecutive steps inside units (see :func:`hippogym.replay.windows.sample_windows`)."""
        return sample_windows(self.memory, batch_size, length, generator=self.generator, strict=strict)
