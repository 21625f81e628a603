"""The protocols the parts of the memory read the store through (hippogym/memory/views.py).

They exist so that the store's parts do not import the store: checked here on the source, every
import counting (deferred and ``TYPE_CHECKING`` ones too).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

import hippogym.memory as memory
from hippogym import Episode, MemoryStore
from hippogym.memory.views import StoreView, UnitTable

PACKAGE = Path(memory.__file__).resolve().parent


def imports_of(source: str, package: str) -> set[str]:
    """Absolute names of everything ``source`` (a module of ``package``) imports, anywhere in it
    (``from a import b`` gives both ``a`` and ``a.b``)."""
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


def imported_modules(path: Path) -> set[str]:
    """:func:`imports_of` a module file of ``hippogym.memory``."""
    package = ".".join(("hippogym", "memory", *path.relative_to(PACKAGE).parent.parts))
    return imports_of(path.read_text(encoding="utf-8"), package)


def test_the_import_walker_sees_type_checking_deferred_and_relative_imports():
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ..store import MemoryStore\n"
        "def f():\n    import hippogym.io\n"
        "from . import base\n"
    )
    found = imports_of(source, "hippogym.memory.samplers")
    assert {"hippogym.memory.store", "hippogym.io", "hippogym.memory.samplers.base"} <= found


@pytest.mark.parametrize("module", ["eviction.py", "index.py", "sumtree.py", "views.py", "samplers/base.py",
                                    "samplers/uniform.py", "samplers/prioritized.py", "samplers/__init__.py"])
def test_parts_of_the_memory_never_import_the_store(module):
    assert "hippogym.memory.store" not in imported_modules(PACKAGE / module)


def test_only_the_package_imports_the_store_among_memory_modules():
    importers = sorted(
        str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
        if path.name != "store.py" and "hippogym.memory.store" in imported_modules(path)
    )
    assert importers == ["__init__.py"]


def test_views_imports_nothing_from_the_memory():
    assert not {m for m in imported_modules(PACKAGE / "views.py") if m.startswith("hippogym")}


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
