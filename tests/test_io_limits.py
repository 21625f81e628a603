"""Crafted manifests against :func:`hippogym.io.load_buffer`: typed errors naming the field."""

from __future__ import annotations

import json
import time

import pytest
import torch

import hippo_format
from hippo_format._manifest import dump_manifest
from hippogym import Episode, HippocampalReplayBuffer
from hippogym.errors import ValidationError
from hippogym.io import load_buffer
from hippogym.io_checks import manifest_float


def _buffer(seed=0):
    buffer = HippocampalReplayBuffer(capacity=200, embed_dim=8, seed=seed)
    g = torch.Generator().manual_seed(seed)
    for i in range(12):
        T = 6
        buffer.add_episode(Episode(
            states=torch.randn(T + 1, 3, generator=g), actions=torch.randint(0, 3, (T,), generator=g),
            rewards=torch.randn(T, generator=g), terminated=[0] * (T - 1) + [1], truncated=[0] * T, episode_id=i,
        ))
    return buffer


@pytest.fixture()
def saved(tmp_path):
    path = tmp_path / "mem"
    _buffer().save(path)
    return path


def _edit(path, section, key, value):
    doc = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    target = doc
    for part in section:
        target = target[part]
    if value is _DELETE:
        del target[key]
    else:
        target[key] = value
    doc.pop("manifest_sha256", None)
    (path / "manifest.json").write_bytes(dump_manifest(doc))


_DELETE = object()

CASES = [
    (("store", "config"), "capacity", -5, "store.config.capacity"),
    (("store", "config"), "capacity", "200", "store.config.capacity"),
    (("store", "config"), "capacity", True, "store.config.capacity"),
    (("store", "config"), "embed_dim", 0, "store.config.embed_dim"),
    (("store", "config"), "embed_dim", _DELETE, "store.config.embed_dim"),
    (("store", "config"), "key_dtype", "complex128", "store.config.key_dtype"),
    (("store", "config"), "eviction", "fifo", "store.config.eviction"),
    (("store", "config", "eviction"), "type", "bogus", "store.config.eviction.type"),
    (("store", "config", "index"), "type", "os.system", "store.config.index.type"),
    (("sampling",), "top_k", 0, "sampling.top_k"),
    (("sampling",), "top_k", 2.5, "sampling.top_k"),
    (("sampling",), "alpha", -1.0, "sampling.alpha"),
    (("sampling",), "retrieval_temperature", 0.0, "sampling.retrieval_temperature"),
    (("sampling",), "mixture_ratio", 1.5, "sampling.mixture_ratio"),
    (("sampling",), "prioritized", "yes", "sampling.prioritized"),
    (("sampling",), "context", -1, "sampling.context"),
    (("sampling",), "num_actions", "3", "sampling.num_actions"),
]


@pytest.mark.parametrize("section, key, value, field", CASES)
def test_bad_field_is_named(saved, section, key, value, field):
    _edit(saved, section, key, value)
    with pytest.raises(ValidationError) as info:
        load_buffer(saved, verify="none")
    assert info.value.field == field
    assert field in str(info.value)


def test_huge_capacity_is_refused_before_allocation(saved):
    _edit(saved, ("store", "config"), "capacity", 10**13)
    start = time.perf_counter()
    with pytest.raises(hippo_format.LimitExceededError) as info:
        load_buffer(saved, verify="none")
    assert time.perf_counter() - start < 5.0
    assert "store.config.capacity" in str(info.value)


def test_nonfinite_numbers_are_refused():
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValidationError, match="sampling.beta"):
            manifest_float({"beta": bad}, "beta", "sampling.beta")


def test_valid_memory_loads_and_samples_the_same(saved):
    original = _buffer()
    loaded = load_buffer(saved)
    assert len(loaded) == len(original)
    a, b = original.sample(16), loaded.sample(16)
    assert torch.equal(a.rewards, b.rewards)
    assert torch.equal(a.actions, b.actions)
