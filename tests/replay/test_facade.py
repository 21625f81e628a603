"""The buffer's small constructor: grouped settings, the deprecated flat keywords, from_config."""

from __future__ import annotations

import inspect
import warnings

import pytest
import torch

from hippogym import (
    Episode,
    FeatureConfig,
    HippocampalReplayBuffer,
    MemoryStore,
    PrioritizedSpec,
    RampSchedule,
    SemanticConfig,
    UniformSpec,
)
from hippogym.errors import ValidationError
from hippogym.memory.samplers import PrioritizedSampler

SEED = 3


def _fill(buffer: HippocampalReplayBuffer, n: int = 12, T: int = 8) -> HippocampalReplayBuffer:
    g = torch.Generator().manual_seed(0)
    for _ in range(n):
        buffer.add_episode(Episode(states=torch.randn(T + 1, 3, generator=g), actions=torch.randint(0, 2, (T,), generator=g),
                                   rewards=torch.randn(T, generator=g), truncated=[0] * (T - 1) + [1]))
    return buffer


def _store(**kw) -> MemoryStore:
    return MemoryStore(embed_dim=16, capacity=2000, seed=SEED, **kw)


def _batches(buffer: HippocampalReplayBuffer, consolidate: bool = False) -> list[torch.Tensor]:
    _fill(buffer)
    if consolidate:
        buffer.consolidate(steps=2, batch_size=8)
    q = torch.randn(2, 3, generator=torch.Generator().manual_seed(1))
    out = []
    for _ in range(3):
        b = buffer.sample(16, query_state=q)
        out += [b.indices, b.modes, b.probabilities, b.weights]
    return out


def test_the_constructor_takes_at_most_nine_parameters():
    params = [p for p in inspect.signature(HippocampalReplayBuffer.__init__).parameters.values()
              if p.name != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD]
    assert len(params) <= 9
    assert [p.name for p in params] == [
        "memory", "encoder", "mixture_ratio", "consolidator", "sampler", "semantic", "features", "device", "seed",
    ]


#: (old keyword arguments, the same buffer in the new spelling, words the warning must name)
CASES = [
    ({}, {}, []),
    ({"eviction": "fifo"}, {"memory": _store(eviction="fifo")}, [("eviction", "MemoryStore(eviction")]),
    ({"index": "torch"}, {"memory": _store(index="torch")}, [("index", "MemoryStore(index")]),
    ({"key_dtype": "float16"}, {"memory": _store(key_dtype="float16")}, [("key_dtype", "MemoryStore(key_dtype")]),
    ({"prioritized": True}, {"sampler": "prioritized"}, [("prioritized", "sampler='prioritized'")]),
    ({"prioritized": True, "alpha": 0.8, "beta": 0.3}, {"sampler": PrioritizedSpec(alpha=0.8, beta=0.3)},
     [("alpha", "PrioritizedSpec(alpha"), ("beta", "PrioritizedSpec(beta")]),
    ({"beta": 0.5}, {"sampler": UniformSpec(beta=0.5)}, [("beta", "UniformSpec(beta")]),
    ({"top_k": 2}, {"semantic": SemanticConfig(top_k=2)}, [("top_k", "SemanticConfig(top_k")]),
    ({"retrieval_temperature": 0.5}, {"semantic": {"temperature": 0.5}},
     [("retrieval_temperature", "SemanticConfig(temperature")]),
    ({"exact_sampling": True}, {"semantic": SemanticConfig(exact=True)}, [("exact_sampling", "SemanticConfig(exact")]),
    ({"key_action": True, "num_actions": 2}, {"features": FeatureConfig(num_actions=2, key_action=True)},
     [("key_action", "FeatureConfig(key_action"), ("num_actions", "FeatureConfig(num_actions")]),
    ({"context": 2}, {"features": {"context": 2}}, [("context", "FeatureConfig(context")]),
]


@pytest.mark.parametrize(("old", "new", "named"), CASES, ids=lambda v: "-".join(v) if isinstance(v, dict) else None)
def test_each_old_keyword_warns_and_gives_the_same_batches(old, new, named):
    with pytest.warns(DeprecationWarning) as record:
        legacy = HippocampalReplayBuffer(capacity=2000, embed_dim=16, seed=SEED, **old)
    messages = [str(w.message) for w in record if issubclass(w.category, DeprecationWarning)]
    for name, spelling in [("capacity", "MemoryStore(capacity"), ("embed_dim", "MemoryStore(embed_dim"), *named]:
        assert any(f"({name}=...)" in m and spelling in m for m in messages), (name, messages)
    new = dict(new)
    new.setdefault("memory", _store())
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        modern = HippocampalReplayBuffer(seed=SEED, **new)
    assert legacy.config() == modern.config()
    assert legacy.memory.config() == modern.memory.config()
    for x, y in zip(_batches(legacy), _batches(modern), strict=True):
        assert torch.equal(x, y)
    assert legacy.config() == modern.config()  # featurizer settings too, once built


def test_consolidator_kwargs_become_a_consolidator_dict():
    kwargs = {"temperature": 0.05, "reward_weight": 0.25}
    with pytest.warns(DeprecationWarning, match=r"consolidator_kwargs=.*consolidator=\{\.\.\.\}"):
        legacy = HippocampalReplayBuffer(_store(), seed=SEED, consolidator_kwargs=kwargs)
    modern = HippocampalReplayBuffer(_store(), consolidator=kwargs, seed=SEED)
    assert legacy.consolidator_kwargs == modern.consolidator_kwargs == kwargs and modern.consolidator is None
    for x, y in zip(_batches(legacy, consolidate=True), _batches(modern, consolidate=True), strict=True):
        assert torch.equal(x, y)
    assert modern.consolidator.temperature == 0.05 and modern.consolidator.reward_weight == 0.25


def test_unknown_keywords_and_doubled_settings_are_refused():
    with pytest.raises(TypeError, match="top_kk"):
        HippocampalReplayBuffer(top_kk=3)
    with pytest.raises(TypeError):
        HippocampalReplayBuffer(memory_kwargs={})
    with pytest.raises(ValidationError, match="memory"), pytest.warns(DeprecationWarning):
        HippocampalReplayBuffer(_store(), capacity=10)
    with pytest.raises(ValidationError, match="semantic"), pytest.warns(DeprecationWarning):
        HippocampalReplayBuffer(semantic=SemanticConfig(top_k=2), top_k=3)
    with pytest.raises(ValidationError, match="sampler"), pytest.warns(DeprecationWarning):
        HippocampalReplayBuffer(sampler="prioritized", alpha=0.5)
    with pytest.raises(ValidationError, match="features"), pytest.warns(DeprecationWarning):
        HippocampalReplayBuffer(features={"context": 2}, key_action=True)
    with pytest.raises(ValidationError, match="consolidator_kwargs"), pytest.warns(DeprecationWarning):
        HippocampalReplayBuffer(consolidator={"temperature": 0.1}, consolidator_kwargs={"temperature": 0.2})
    with pytest.raises(ValidationError, match="semantic"):
        HippocampalReplayBuffer(semantic={"top_kk": 2})
    with pytest.raises(ValidationError, match="top_k"):
        HippocampalReplayBuffer(semantic=SemanticConfig(top_k=0))
    with pytest.raises(ValidationError, match="retrieval_temperature"):
        HippocampalReplayBuffer(semantic={"temperature": 0.0})
    with pytest.raises(ValidationError, match="sampler"):
        HippocampalReplayBuffer(sampler="rank")
    with pytest.raises(ValidationError, match="consolidator"):
        HippocampalReplayBuffer(consolidator=[("temperature", 0.1)])


def test_public_attributes_read_as_before():
    buffer = HippocampalReplayBuffer(
        _store(), sampler={"alpha": 0.7, "beta": 0.2}, semantic={"top_k": 4, "temperature": 0.3, "exact": True},
        features={"num_actions": 3, "key_action": True, "context": 2}, consolidator={"temperature": 0.05},
    )
    assert (buffer.top_k, buffer.retrieval_temperature, buffer.exact_sampling) == (4, 0.3, True)
    assert (buffer.prioritized, buffer.alpha, buffer.beta) == (True, 0.7, 0.2)
    assert (buffer.num_actions, buffer.key_action, buffer.context) == (3, True, 2)
    assert buffer.consolidator_kwargs == {"temperature": 0.05}
    assert isinstance(buffer.sampler, PrioritizedSampler) and buffer.sampler.alpha == 0.7
    assert buffer.semantic == SemanticConfig(4, 0.3, True)
    assert buffer.features == FeatureConfig(3, True, 2)
    assert buffer.sampler_spec == PrioritizedSpec(0.7, 0.2)
    plain = HippocampalReplayBuffer()
    assert plain.memory.capacity == 100_000 and plain.memory.embed_dim == 64 and plain.memory.key_dtype == "float16"
    assert plain.sampler is None and plain.prioritized is False and plain.beta == 0.0 and plain.alpha == 0.6
    assert HippocampalReplayBuffer(sampler={"type": "uniform", "beta": 0.3}).sampler_spec == UniformSpec(0.3)


def test_a_prioritized_sampler_instance_is_used_on_its_store():
    store = _store()
    sampler = PrioritizedSampler(store, alpha=0.5, seed=SEED)
    buffer = HippocampalReplayBuffer(sampler=sampler, seed=SEED)
    assert buffer.memory is store and buffer.sampler is sampler and buffer.prioritized and buffer.alpha == 0.5
    same = HippocampalReplayBuffer(store, sampler=sampler)
    assert same.sampler is sampler
    with pytest.raises(ValidationError, match="sampler"):
        HippocampalReplayBuffer(_store(), sampler=PrioritizedSampler(_store()))


CONFIGS = [
    {},
    {"sampler": "prioritized"},
    {"sampler": PrioritizedSpec(alpha=0.3, beta=0.9)},
    {"sampler": UniformSpec(beta=0.25)},
    {"semantic": SemanticConfig(top_k=7, temperature=0.02, exact=True)},
    {"features": FeatureConfig(num_actions=2, key_action=True, context=3)},
    {"mixture_ratio": RampSchedule(0.2, 0.5, 10, 100)},
    {"mixture_ratio": 0.0},
]


@pytest.mark.parametrize("kwargs", CONFIGS)
def test_from_config_round_trips_config(kwargs):
    buffer = HippocampalReplayBuffer(_store(), seed=SEED, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        again = HippocampalReplayBuffer.from_config(buffer.config(), memory=_store(), encoder=None)
    assert again.config() == buffer.config()
    assert again.sampler_spec == buffer.sampler_spec and again.semantic == buffer.semantic


def test_from_config_keeps_old_uniform_alpha_and_a_filled_buffer():
    with pytest.warns(DeprecationWarning):
        odd = HippocampalReplayBuffer(_store(), alpha=0.3)  # alpha without prioritised draws: only in config()
    assert HippocampalReplayBuffer.from_config(odd.config(), memory=_store(), encoder=None).config() == odd.config()
    full = _fill(HippocampalReplayBuffer(_store(), semantic={"top_k": 3}, seed=SEED))
    again = HippocampalReplayBuffer.from_config(full.config(), memory=full.memory, encoder=full.encoder)
    assert again.config() == full.config() and again.config()["featurizer"] is not None
    with pytest.raises(ValidationError, match="config"):
        HippocampalReplayBuffer.from_config([("top_k", 3)], memory=None, encoder=None)


def test_save_and_load_emit_no_deprecation_warning(tmp_path):
    buffer = _fill(HippocampalReplayBuffer(_store(), sampler="prioritized", semantic={"top_k": 3}, seed=SEED))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        buffer.save(tmp_path / "mem")
        loaded = HippocampalReplayBuffer.load(tmp_path / "mem")
    assert {k: v for k, v in loaded.config().items()} == buffer.config()
    q = torch.randn(3)
    assert torch.equal(loaded.sample(8, query_state=q).indices, buffer.sample(8, query_state=q).indices)


def test_sb3_adapter_builds_its_buffer_in_the_new_spelling():
    pytest.importorskip("stable_baselines3")
    import numpy as np
    from gymnasium import spaces

    from hippogym.integrations.sb3 import HippoReplayBuffer

    obs, act = spaces.Box(-1, 1, (2,), np.float32), spaces.Discrete(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        rb = HippoReplayBuffer(300, obs, act, "cpu", top_k=4, prioritized=True, embed_dim=8, seed=1, hippo_kwargs={
            "features": {"key_action": True}, "semantic": {"temperature": 0.5}, "consolidator": {"temperature": 0.05},
        })
    hippo = rb.hippo
    assert (hippo.top_k, hippo.retrieval_temperature, hippo.prioritized) == (4, 0.5, True)
    assert (hippo.key_action, hippo.num_actions, hippo.consolidator_kwargs) == (True, 3, {"temperature": 0.05})
    assert (hippo.memory.capacity, hippo.memory.embed_dim) == (300, 8)
    with pytest.warns(DeprecationWarning, match="key_action"):
        old = HippoReplayBuffer(300, obs, act, "cpu", embed_dim=8, seed=1, hippo_kwargs={"key_action": True, "beta": 0.2})
    assert (old.hippo.key_action, old.hippo.num_actions, old.hippo.beta, old.hippo.prioritized) == (True, 3, 0.2, False)
