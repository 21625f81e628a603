"""The layering rule of the house, checked on every import of the source tree.

Layers, lowest first (each may import only itself and the layers below it)::

    0  hippo_format
    1  hippogym.errors, hippogym.types, hippogym.returns, hippogym.checks, hippogym.progress, hippogym.observations,
       hippogym.blas, hippogym.episode_checks, hippogym.hubio (the Hub transport of hippo_format directories)
    2  hippogym.episode
    3  hippogym.segmentation | hippogym.encoders | hippogym.memory   (siblings: never each other)
    4  hippogym.consolidation
    5  hippogym.replay
    6  hippogym.wrappers, hippogym.envs
    7  hippogym.io, hippogym.integrations, hippogym.cli, hippogym.demo, hippogym.training,
       hippogym (the package), __main__

Every import counts: top-level, deferred inside functions and under ``if TYPE_CHECKING:``.
``KNOWN_UPWARD`` lists the arrows that break the rule today; it may only shrink (a second test fails
when an entry no longer occurs, so a fixed arrow must be deleted from it).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hippo_format", "hippogym")

#: Module prefix -> (layer, sibling group). Longest prefix wins.
LAYERS: dict[str, tuple[int, str]] = {
    "hippo_format": (0, "hippo_format"),
    "hippogym.errors": (1, "base"),
    "hippogym.types": (1, "base"),
    "hippogym.returns": (1, "base"),
    "hippogym.checks": (1, "base"),
    "hippogym.progress": (1, "base"),
    "hippogym.observations": (1, "base"),
    "hippogym.hubio": (1, "base"),
    "hippogym.blas": (1, "base"),
    "hippogym.episode_checks": (1, "base"),  # the Episode's field checks: below hippogym.episode
    "hippogym.episode": (2, "episode"),
    "hippogym.segmentation": (3, "segmentation"),
    "hippogym.encoders": (3, "encoders"),
    "hippogym.memory": (3, "memory"),
    "hippogym.consolidation": (4, "consolidation"),
    "hippogym.replay": (5, "replay"),
    "hippogym.wrappers": (6, "edge"),
    "hippogym.envs": (6, "edge"),
    "hippogym.io": (7, "top"),
    "hippogym.io_checks": (7, "top"),
    "hippogym.integrations": (7, "top"),
    "hippogym.cli": (7, "top"),
    "hippogym.demo": (7, "top"),
    "hippogym.training": (7, "top"),
    "hippogym.__main__": (7, "top"),
    "hippogym": (7, "top"),  # the package itself (hippogym/__init__.py): only by exact name
}

#: Layer whose groups must not import each other.
SIBLING_LAYER = 3

#: (importer, imported) arrows that break the rule today. SHRINK ONLY: never add an entry.
KNOWN_UPWARD: frozenset[tuple[str, str]] = frozenset({
})


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _targets(name: str, path: Path) -> set[str]:
    """Every module of the two packages that ``name`` imports (anywhere in its source)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.add(full if full in MODULES else base)
    return {t for t in out if t.partition(".")[0] in PACKAGES and t != name}


def layer_of(module: str) -> tuple[int, str]:
    """The (layer, sibling group) of a module name."""
    if module == "hippogym":
        return LAYERS["hippogym"]
    prefixes = [p for p in LAYERS if p != "hippogym" and (module == p or module.startswith(p + "."))]
    best = max(prefixes, key=len, default=None)
    if best is None:
        raise KeyError(module)
    return LAYERS[best]


def _arrows() -> set[tuple[str, str]]:
    return {(name, target) for name, path in MODULES.items() for target in _targets(name, path)}


def violations() -> set[tuple[str, str]]:
    """Arrows that point to a higher layer or between two layer-3 siblings."""
    bad = set()
    for src, dst in _arrows():
        (ls, gs), (ld, gd) = layer_of(src), layer_of(dst)
        if ld > ls or (ls == ld == SIBLING_LAYER and gs != gd):
            bad.add((src, dst))
    return bad


def test_every_module_has_a_layer():
    unmapped = []
    for name in [*MODULES, *(t for s, t in _arrows())]:
        try:
            layer_of(name)
        except KeyError:
            unmapped.append(name)
    assert not unmapped, f"modules without a layer in LAYERS: {sorted(set(unmapped))}"


def test_no_import_points_up_or_across_siblings():
    new = sorted(violations() - KNOWN_UPWARD)
    assert not new, "imports that break the layering (see the module docstring):\n" + "\n".join(
        f"  {src} (layer {layer_of(src)[0]}) -> {dst} (layer {layer_of(dst)[0]})" for src, dst in new
    )


def test_known_upward_only_shrinks():
    gone = sorted(KNOWN_UPWARD - violations())
    assert not gone, f"fixed arrows still listed in KNOWN_UPWARD, delete them: {gone}"


def test_hippo_format_never_imports_hippogym():
    offenders = sorted((s, t) for s, t in _arrows() if s.startswith("hippo_format") and t.startswith("hippogym"))
    assert not offenders


def test_the_walker_sees_deferred_type_checking_and_relative_imports(tmp_path):
    source = (
        "from typing import TYPE_CHECKING\n"
        "import hippogym.io\n"
        "if TYPE_CHECKING:\n    from hippogym.replay import buffer\n"
        "def f():\n    from ..consolidation.consolidator import Consolidator\n"
        "from . import store\n"
    )
    path = tmp_path / "probe.py"
    path.write_text(source)
    found = _targets("hippogym.memory.probe", path)
    expected = {"hippogym.io", "hippogym.replay.buffer", "hippogym.consolidation.consolidator", "hippogym.memory.store"}
    assert found == expected
    assert layer_of("hippogym.memory.samplers.base") == (3, "memory")
    assert layer_of("hippogym.episode_checks") == (1, "base") and layer_of("hippogym.episode") == (2, "episode")
    assert layer_of("hippogym") == (7, "top") and layer_of("hippo_format.torch") == (0, "hippo_format")
    with pytest.raises(KeyError):
        layer_of("hippogym.unknown_module")


def _circles(arrows: set[tuple[str, str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    graph: dict[str, list[str]] = {}
    for src, dst in arrows:
        graph.setdefault(src, []).append(dst)
        graph.setdefault(dst, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_no_import_circle_besides_the_known_upward_arrows():
    circles = _circles(_arrows() - KNOWN_UPWARD)
    assert not circles, f"modules importing each other in a circle: {circles}"


def test_the_circle_finder_finds_circles():
    assert _circles({("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")}) == [["a", "b", "c"]]
    assert _circles({("a", "b"), ("b", "c")}) == []


def test_parts_of_the_memory_never_import_the_store():
    # They read it through the protocols of hippogym/memory/views.py; only the package re-exports it.
    importers = sorted(src for src, dst in _arrows() if dst == "hippogym.memory.store")
    memory_importers = [m for m in importers if m == "hippogym.memory" or m.startswith("hippogym.memory.")]
    assert memory_importers == ["hippogym.memory"], memory_importers
    views = {dst for src, dst in _arrows() if src == "hippogym.memory.views"}
    assert not views, f"hippogym/memory/views.py must import nothing from the two packages, imports {views}"
