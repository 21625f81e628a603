"""Shared helpers of the memory tests: traceable units and the store's structural invariants."""

from __future__ import annotations

import pytest
import torch

from hippogym import Episode, MemoryStore


def _unit_keys(T: int, d: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(T, d, generator=torch.Generator().manual_seed(seed)), dim=1)


def _tagged(T: int, tag: int, reward: float = 0.0, success: bool | None = None) -> Episode:
    return Episode(
        states=torch.full((T + 1, 2), float(tag)), actions=torch.zeros(T, 1),
        rewards=torch.full((T,), reward / T), success=success, episode_id=tag,
    )


def _check_invariants(store: MemoryStore) -> None:
    seen = torch.zeros(store.capacity, dtype=torch.bool)
    total = 0
    for slot in store.order:
        start, length = int(store.unit_start[slot]), int(store.unit_length[slot])
        assert 0 <= start and start + length <= store.capacity
        assert not seen[start : start + length].any(), "units overlap"
        seen[start : start + length] = True
        assert (store.row_slot[start : start + length] == slot).all()
        tag = int(store.unit_source[slot])
        assert (store.obs["obs"][start : start + length] == tag).all(), "rows do not belong to their unit"
        total += length
    assert total == store.num_transitions <= store.capacity
    assert int((store.row_slot >= 0).sum()) == total


@pytest.fixture
def unit_keys():
    """``unit_keys(T, d=8, seed=0)``: ``[T, d]`` random L2-normalised keys."""
    return _unit_keys


@pytest.fixture
def tagged():
    """``tagged(T, tag, reward=0.0, success=None)``: an episode whose observations all equal ``tag``
    (and ``episode_id=tag``), so its rows can be traced after moves; ``reward`` is its return."""
    return _tagged


@pytest.fixture
def check_invariants():
    """``check_invariants(store)``: units are disjoint, in bounds, own their rows and hold their tag."""
    return _check_invariants


class _Restricted:
    """A view of ``target`` that exposes only the members of ``protocol`` and records which it reads."""

    def __init__(self, target, protocol) -> None:
        members = set()
        for base in protocol.__mro__:
            if base.__module__ in ("typing", "builtins"):
                continue
            members |= {n for n in vars(base) if not n.startswith("_")}
            members |= {n for n in getattr(base, "__annotations__", {}) if not n.startswith("_")}
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_protocol", protocol)
        object.__setattr__(self, "members", frozenset(members))
        object.__setattr__(self, "read", set())

    def __getattr__(self, name):
        if name not in self.members:
            raise AttributeError(f"{name!r} is not a member of {self._protocol.__name__}")
        self.read.add(name)
        return getattr(self._target, name)

    def __setattr__(self, name, value):
        raise AttributeError(f"parts may not set {name!r} on the store")


@pytest.fixture
def restricted():
    """``restricted(store, Protocol)``: the store seen only through ``Protocol`` (others raise
    ``AttributeError``); ``.members`` lists the protocol's members and ``.read`` those read so far."""
    return _Restricted
