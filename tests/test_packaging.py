"""What the wheel ships: the two libraries, py.typed and the license, never the test infrastructure."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from setuptools import find_namespace_packages

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _shipped_packages() -> set[str]:
    find = PYPROJECT["tool"]["setuptools"]["packages"]["find"]
    return set(find_namespace_packages(str(ROOT), include=find["include"], exclude=find.get("exclude", ())))


def test_package_discovery_ships_only_the_libraries():
    packages = _shipped_packages()
    assert {"hippogym", "hippogym.segmentation", "hippogym.envs", "hippo_format"} <= packages
    assert {p.split(".")[0] for p in packages} == {"hippogym", "hippo_format"}
    assert not any(p == "hubserver" or p.startswith(("tests", "hubserver.")) for p in packages)
    assert "hippogym.testing" not in packages and not (ROOT / "hippogym" / "testing").exists()


def test_every_library_folder_with_modules_is_a_shipped_package():
    # Namespace discovery would also pick folders without __init__.py: every folder with modules must be found.
    for top in ("hippogym", "hippo_format"):
        for folder in (ROOT / top).rglob("*"):
            if folder.is_dir() and any(folder.glob("*.py")) and "__pycache__" not in folder.parts:
                assert ".".join(folder.relative_to(ROOT).parts) in _shipped_packages(), folder


def test_metadata_declares_the_license_and_typing():
    project = PYPROJECT["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    assert "Apache License" in (ROOT / "LICENSE").read_text(encoding="utf-8")[:200]
    assert "Typing :: Typed" in project["classifiers"] and {"Homepage", "Source", "Issues"} <= set(project["urls"])
    assert PYPROJECT["tool"]["setuptools"]["package-data"]["hippogym"] == ["py.typed"]
    assert (ROOT / "hippogym" / "py.typed").is_file()


def test_built_wheel_contents(tmp_path):
    pytest.importorskip("wheel")
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("hippogym", "hippo_format", "tests"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), src],
        capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Deprecat" not in result.stderr, result.stderr[-3000:]  # e.g. the old `license = {text = ...}` table
    (wheel,) = tmp_path.glob("hippogym-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "hippogym/py.typed" in names and "hippo_format/SPEC.md" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"hippogym", "hippo_format"}
    assert not [n for n in names if "hubserver" in n or "hub_server" in n or n.startswith("tests/")]


def test_minari_extra_brings_what_minari_storage_imports():
    # Minari's storage modules import Pillow without declaring it; `hippogym convert` reads a
    # dataset through them, so the extra must bring it.
    minari = pytest.importorskip("minari")
    storages = Path(minari.__file__).parent / "dataset" / "_storages"
    needs_pil = any("PIL" in f.read_text(encoding="utf-8") for f in storages.glob("*.py"))
    names = [r.split("[")[0].split(">")[0].split("=")[0].strip().lower()
             for r in PYPROJECT["project"]["optional-dependencies"]["minari"]]
    assert not needs_pil or "pillow" in names, names
