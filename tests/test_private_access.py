"""No module reaches into another module's private names.

A part talks to another through its public API: ``obj._name`` is allowed only on ``self``/``cls``
or for a name the same file defines, and ``from hippogym.x import _name`` not at all. Private
attributes of third-party objects that are public in effect are listed in ``ALLOWED``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hippogym", "hippo_format")

#: Private names of other libraries that are their public API in effect (NamedTuple's ``_fields``
#: and ``_replace``, torch's fused ``_foreach_*`` ops, ``nn.Module._parameters``).
ALLOWED = frozenset({"_fields", "_replace", "_asdict", "_foreach_add_", "_foreach_mul_", "_parameters"})


def _defined_names(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def private_uses(path: Path) -> list[str]:
    """Uses in ``path`` of private names defined elsewhere (``"line: expression"``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    own = _defined_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            name = node.attr
            if not name.startswith("_") or name.startswith("__") or name in ALLOWED or name in own:
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").partition(".")[0] in PACKAGES):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{node.lineno}: from {node.module} import {alias.name}")
    return found


def test_no_cross_file_private_access():
    offenders = {
        str(path.relative_to(ROOT)): uses
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if (uses := private_uses(path))
    }
    assert not offenders, "private names used across files (add a public API instead):\n" + "\n".join(
        f"  {file}:{use}" for file, uses in offenders.items() for use in uses
    )


def test_the_checker_sees_private_attributes_and_imports(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from hippogym.memory.store import _view\n"
        "class A:\n    def f(self, store):\n        self._mine = 1\n        return store._v_keys, self._x, store._mine\n"
    )
    uses = private_uses(probe)
    assert sorted(uses) == ["1: from hippogym.memory.store import _view", "5: store._v_keys"]
