"""The single errors module: every exception class lives in hippogym.errors, old import paths still work."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import hippogym.errors as errors

PACKAGE = Path(errors.__file__).resolve().parent


def _exception_classes(path: Path) -> list[str]:
    """Names of classes in ``path`` that derive (directly, by name) from an exception class."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        bases = [ast.unparse(base).rsplit(".", 1)[-1] for base in node.bases]
        if any(base.endswith(("Error", "Exception")) for base in bases):
            found.append(node.name)
    return found


def test_every_exception_class_is_defined_in_errors_module():
    outside = {
        str(path.relative_to(PACKAGE)): names
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "errors.py" and (names := _exception_classes(path))
    }
    assert outside == {}, f"exception classes outside hippogym/errors.py: {outside}"


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("hippogym.cli", ["CommandError"]),
        ("hippogym.integrations.hub", ["HubError", "HubNotFoundError", "HubAuthError", "HubPushError"]),
        ("hippogym.integrations.minari", ["MinariDatasetNotFoundError"]),
    ],
)
def test_moved_errors_are_re_exported_at_their_old_place(module, names):
    mod = importlib.import_module(module)
    for name in names:
        assert getattr(mod, name) is getattr(errors, name)
        assert name in errors.__all__


def test_error_hierarchy_keeps_builtin_bases():
    assert issubclass(errors.HubNotFoundError, errors.HubError) and issubclass(errors.HubNotFoundError, LookupError)
    assert issubclass(errors.HubAuthError, PermissionError) and issubclass(errors.HubPushError, RuntimeError)
    assert issubclass(errors.MinariDatasetNotFoundError, FileNotFoundError)
    assert issubclass(errors.ResetNeededError, RuntimeError)
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type):
            assert issubclass(obj, errors.HippoError), name


def test_hub_error_carries_context_and_formats_its_message():
    err = errors.HubAuthError("token rejected for alice/demo", repo_id="alice/demo", revision="main", status=401)
    assert (err.repo_id, err.revision, err.status) == ("alice/demo", "main", 401)
    assert str(err) == "token rejected for alice/demo"  # not the OSError "(401, ...)" tuple form
