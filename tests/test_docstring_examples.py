"""Every ``Example:`` block in a docstring of ``hippogym`` and ``hippo_format`` runs as written.

Each module with at least one example is one test: its examples run with :mod:`doctest` in a
temporary working directory, and any failure prints doctest's report (expected and actual output).
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

PACKAGES = ("hippogym", "hippo_format")


def _module_names() -> list[str]:
    names = []
    for package in PACKAGES:
        root = importlib.import_module(package)
        names.append(package)
        for info in pkgutil.walk_packages(root.__path__, package + "."):
            if not info.name.endswith(".__main__"):  # running it is the command line, not an import
                names.append(info.name)
    return sorted(names)


def _examples(name: str) -> list[doctest.DocTest]:
    """The module's own docstring examples (objects imported from elsewhere are left to their module)."""
    tests = doctest.DocTestFinder(exclude_empty=True).find(importlib.import_module(name), name)
    return [t for t in tests if any(not ex.options.get(doctest.SKIP) for ex in t.examples)]  # not all "+SKIP"


WITH_EXAMPLES = [name for name in _module_names() if _examples(name)]


def test_the_packages_have_docstring_examples_to_run():
    assert len(WITH_EXAMPLES) >= 20, WITH_EXAMPLES  # a finder that found nothing would pass every test below


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    report: list[str] = []
    runner = doctest.DocTestRunner(verbose=False)
    for test in _examples(name):
        runner.run(test, out=report.append)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0
    assert result.failed == 0, "".join(report)
