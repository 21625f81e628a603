"""The protocols the parts of the memory read the store through (hippogym/memory/views.py).

They exist so that the store's parts do not import the store; that is checked on the source, every
import counting, in ``tests/test_layering.py`` (``test_parts_of_the_memory_never_import_the_store``).
"""

from __future__ import annotations

import pytest
import torch

import hippogym.memory as memory
from hippogym import Episode, MemoryStore
from hippogym.memory.views import StoreView, UnitTable


def test_the_store_satisfies_every_protocol_before_and_after_its_first_insert():
    store = MemoryStore(embed_dim=8, capacity=20)
    for protocol in (UnitTable, StoreView):
        assert isinstance(store, protocol)
    assert store.keys_np is None  # documented: no key view before the first insert
    T = 5
    ep = Episode(states=torch.zeros(T + 1, 2), actions=torch.zeros(T, 1), rewards=torch.zeros(T))
    store.add(ep, torch.nn.functional.normalize(torch.ones(T, 8), dim=1))
    for protocol in (UnitTable, StoreView):
        assert isinstance(store, protocol)
    assert store.keys_np.shape == (20, 8)


def test_protocol_members_are_public_members_of_the_store(restricted):
    store = MemoryStore(embed_dim=8, capacity=20)
    for protocol in (UnitTable, StoreView):
        members = restricted(store, protocol).members
        assert members and all(not name.startswith("_") for name in members)
        assert all(hasattr(MemoryStore, name) or hasattr(store, name) for name in members)
    assert {"unit_starts_np", "keys_np", "maxsim", "live_slots"} <= restricted(store, StoreView).members
    assert {"unit_rescues_np", "return_stats", "random_slots_np"} <= restricted(store, UnitTable).members
    assert memory.StoreView is StoreView and memory.UnitTable is UnitTable
