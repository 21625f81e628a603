"""Persistence of the replay buffer: its settings, ``state_dict``, ``save``/``load`` and the Hub verbs.

A mixin of :class:`~hippogym.replay.buffer.HippocampalReplayBuffer` (which is the only class that
uses it): the buffer's parts each map their own state to ``hippo_format`` (see
:mod:`hippogym.replay.persist`); this part gathers them and names the verbs. The Hub verbs go
through :mod:`hippogym.hubio`, the buffer-independent transport, so the replay layer never
imports the integrations.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch

from hippogym.consolidation.consolidator import Consolidator, reencode
from hippogym.encoders.dual import DualEncoder
from hippogym.errors import ValidationError, describe
from hippogym.memory.store import MemoryStore
from hippogym.replay.settings import FeatureConfig, PrioritizedSpec, SemanticConfig, UniformSpec

__all__ = ["BufferStateMixin"]

_B = TypeVar("_B", bound="BufferStateMixin")


class _ClassOrInstanceMethod:
    """A method that does one thing called on the class and another called on an instance."""

    def __init__(self, on_class: Any, on_instance: Any) -> None:
        self.on_class, self.on_instance = on_class, on_instance
        self.__doc__ = on_instance.__doc__

    def __get__(self, instance: Any, owner: type) -> Any:
        if instance is None:
            return self.on_class.__get__(None, owner)
        return self.on_instance.__get__(instance, owner)


class BufferStateMixin:
    """The buffer's ``config``/``from_config``, ``state_dict``/``load_state_dict``, ``save``/``load`` and Hub verbs."""

    @classmethod
    def from_config(
        cls: type[_B],
        config: Mapping[str, Any],
        *,
        memory: MemoryStore | None,
        encoder: DualEncoder | None,
        consolidator: Consolidator | Mapping[str, Any] | None = None,
        device: str | torch.device = "cpu",
    ) -> _B:
        """Build a buffer from the settings :meth:`config` saved, without deprecation warnings.

        Reads ``mixture_ratio``, ``top_k``, ``retrieval_temperature``, ``prioritized``, ``alpha``,
        ``beta``, ``num_actions``, ``key_action``, ``context``, ``key_reward`` and ``exact_sampling``
        (missing keys take the constructor's defaults, except ``key_reward``: a config without it
        predates observation-only keys and loads with it on; ``featurizer`` is rebuilt from the memory). Values
        are checked by the constructor; :func:`hippogym.io_checks.sampling_kwargs` checks a
        manifest's section in full first.

        Args:
            config: A :meth:`config` dict (e.g. a manifest's ``sampling`` section).
            memory: The store (``None``: the default one).
            encoder: The encoder (``None``: built from the first episode).
            consolidator: A consolidator, a dict of its settings, or ``None``.
            device: Device of returned batches.

        Returns:
            A buffer whose :meth:`config` equals ``config`` on those keys.
        """
        if not isinstance(config, Mapping):
            raise ValidationError("config", "a mapping (a buffer's config())", describe(config))
        mixture = config.get("mixture_ratio", 0.5)
        if isinstance(mixture, Mapping) and mixture.get("type") == "callable":
            mixture = 0.5  # a callable cannot be saved: the default ratio, as the loader does
        prioritized = bool(config.get("prioritized", False))
        alpha = float(config.get("alpha", 0.6))
        beta = config.get("beta")
        beta = (0.4 if prioritized else 0.0) if beta is None else float(beta)
        buffer = cls(
            memory,
            encoder,
            mixture,
            consolidator,
            sampler=PrioritizedSpec(alpha=alpha, beta=beta) if prioritized else UniformSpec(beta=beta),
            semantic=SemanticConfig(
                top_k=config.get("top_k", 5),
                temperature=config.get("retrieval_temperature", 0.1),
                exact=bool(config.get("exact_sampling", False)),
                rows=str(config.get("semantic_rows", "uniform")),
            ),
            features=FeatureConfig(
                num_actions=config.get("num_actions"),
                key_action=bool(config.get("key_action", False)),
                context=int(config.get("context", 1)),
                # A config without it was saved when keys carried the reward: keep its keys valid.
                key_reward=bool(config.get("key_reward", True)),
            ),
            device=device,
        )
        buffer.alpha = alpha  # also kept for uniform draws, where it only appears in config()
        targets = config.get("value_targets")
        if isinstance(targets, Mapping):
            buffer.use_value_targets(
                gamma=float(targets.get("gamma", 0.99)),
                n_steps=int(targets.get("n_steps", 1)),
                returns=bool(targets.get("returns", True)),
            )
        return buffer

    def config(self) -> dict[str, Any]:
        """JSON description of the buffer's settings."""
        schedule = self.schedule.config() if hasattr(self.schedule, "config") else {"type": "callable"}
        return {
            "mixture_ratio": schedule,
            "top_k": self.top_k,
            "retrieval_temperature": self.retrieval_temperature,
            "prioritized": self.prioritized,
            "alpha": self.alpha,
            "beta": self.beta,
            "num_actions": self.num_actions,
            "key_action": self.key_action,
            "context": self.context,
            "key_reward": self.key_reward,
            "exact_sampling": self.exact_sampling,
            "semantic_rows": self.semantic_rows,
            # Value targets (hindsight relabelling is not saved: it holds the env's compute_reward).
            "value_targets": None if self.targets is None else {
                "gamma": self.targets.gamma, "n_steps": self.targets.n_steps, "returns": self.targets.table is not None,
            },
            "featurizer": None if self.featurizer is None else self.featurizer.config(),
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
        self._query_cache = None  # the encoder version may repeat with other weights
        self.semantic_sampler.load_state_dict(self.semantic_sampler.state_dict())  # drops its cache
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

    def save(
        self, path: str | os.PathLike[str], *, compression: str | None = None, progress: bool | None = None
    ) -> Path:
        """Save the whole buffer to a ``hippo_format`` directory, atomically (see :mod:`hippogym.io`).

        ``progress`` shows a bar over the save's stages (default: for memories of a million
        transitions or more; tqdm, or INFO log lines without a terminal).
        """
        from hippogym.replay.persist import save_buffer

        return save_buffer(self, path, compression=compression, progress=progress)

    @classmethod
    def load(
        cls: type[_B],
        path: str | os.PathLike[str],
        *,
        verify: str = "full",
        device: str | torch.device = "cpu",
        progress: bool | None = None,
    ) -> _B:
        """Load a buffer saved by :meth:`save`; sampling and consolidation resume exactly.

        ``progress`` shows a bar over the load's stages, as in :meth:`save`.
        """
        from hippogym.replay.persist import load_buffer

        return load_buffer(cls, path, verify=verify, device=device, progress=progress)

    save_pretrained = save
    from_pretrained = load

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> str:
        """Push this memory to the Hugging Face Hub as one commit (see :func:`hippogym.hubio.push_to_hub`)."""
        from hippogym.hubio.push import push_to_hub

        return push_to_hub(self, repo_id, **kwargs)

    save_to_hub = push_to_hub

    def replace_memory(self, memory: MemoryStore) -> None:
        """Make ``memory`` this buffer's memory, in place (the seed's ``buffer.memory = loaded``).

        The encoder, consolidator, settings and value targets stay; the parts bound to the old
        store (base sampler, semantic sampler, value table, featurizer, query cache) are rebuilt on
        the new one. The new memory's keys are re-encoded with this buffer's encoder, since keys
        made by another encoder are not comparable with its queries.

        Args:
            memory: The store to use from now on (it is not copied).

        Raises:
            ValidationError: ``memory`` is not a :class:`~hippogym.MemoryStore`.
            DimensionMismatchError: Its ``embed_dim`` differs from the encoder's, or its
                observations do not fit the encoder's ``input_dim``.
        """
        from hippogym.errors import DimensionMismatchError
        from hippogym.memory.samplers.prioritized import PrioritizedSampler
        from hippogym.memory.samplers.semantic import SemanticSampler

        if not isinstance(memory, MemoryStore):
            raise ValidationError("memory", "a hippogym.MemoryStore", describe(memory))
        if self.encoder is not None and memory.embed_dim != self.encoder.embed_dim:
            raise DimensionMismatchError(
                "memory.embed_dim", f"equal to encoder.embed_dim={self.encoder.embed_dim}", str(memory.embed_dim)
            )
        old_featurizer = self.featurizer
        self.featurizer = None
        if memory.allocated:
            try:
                self._make_featurizer(memory.layout, memory.action_shape)
            except Exception:
                self.featurizer = old_featurizer
                raise
        for part in (self.sampler, self.semantic_sampler, self.targets):
            if part is not None:
                part.detach()
        self.memory = memory
        self._query_cache = None
        if self.sampler is not None:
            self.sampler = PrioritizedSampler(memory, self.alpha, seed=self.seed)
        self.semantic_sampler = SemanticSampler(memory, self.retrieval_temperature, self.exact_sampling, self.generator)
        if self.targets is not None:
            t = self.targets
            self.use_value_targets(gamma=t.gamma, n_steps=t.n_steps, returns=t.table is not None, relabeler=t.relabeler)
        if memory.num_transitions:
            reencode(memory, self.encoder, self.featurizer, memory.live_slots())

    def _load_memory_from_hub(
        self, repo_id: str, *, device: str | torch.device | None = None, **kwargs: Any
    ) -> MemoryStore:
        """``buffer.load_memory_from_hub(repo_id)``: replace this buffer's memory in place (seed semantics)."""
        device = self.device if device is None else device
        loaded = type(self)._load_buffer_from_hub(repo_id, device=device, **kwargs)
        for part in (loaded.sampler, loaded.semantic_sampler, loaded.targets):  # the memory changes hands
            if part is not None:
                part.detach()
        self.replace_memory(loaded.memory)
        return self.memory

    @classmethod
    def _load_buffer_from_hub(cls: type[_B], repo_id: str, *, device: str | torch.device = "cpu", **kwargs: Any) -> _B:
        """``HippocampalReplayBuffer.load_memory_from_hub(repo_id)``: a new buffer."""
        from hippogym.hubio.fetch import fetch_memory
        from hippogym.replay.persist import load_saved_memory

        return fetch_memory(
            repo_id, lambda path, verify: load_saved_memory(cls, path, verify=verify, device=device), **kwargs
        )

    #: Load a memory from the Hub, a local directory or a ``file://`` URL (keywords as
    #: :func:`hippogym.integrations.hub.load_memory_from_hub`).
    #:
    #: * On the class, ``HippocampalReplayBuffer.load_memory_from_hub(repo_id)`` returns a new
    #:   buffer, exactly as saved (a memory saved from a bare store gets a fresh encoder).
    #: * On a buffer, ``buffer.load_memory_from_hub(repo_id)`` replaces that buffer's memory in
    #:   place, as hippotorch did, and returns the new :class:`~hippogym.MemoryStore`; the buffer
    #:   keeps its own encoder and settings and re-encodes the keys (see :meth:`replace_memory`).
    load_memory_from_hub = _ClassOrInstanceMethod(_load_buffer_from_hub, _load_memory_from_hub)
