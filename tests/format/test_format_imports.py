"""Import hygiene: hippo_format never imports hippogym, and torch only through hippo_format.torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import hippo_format

PACKAGE = Path(hippo_format.__file__).parent


def test_no_hippogym_and_no_torch_outside_torch_module():
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                root = name.split(".")[0]
                assert root != "hippogym", f"{path.name} imports {name}"
                if path.name != "torch.py":
                    assert root != "torch", f"{path.name} imports {name}"
                for banned in ("pickle", "dill", "cloudpickle", "marshal", "shelve"):
                    assert root != banned, f"{path.name} imports {name}"


def test_importing_and_using_the_package_loads_neither_torch_nor_hippogym(tmp_path):
    code = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parents[1])!r})
import hippo_format
assert "pyarrow" not in sys.modules and "safetensors" not in sys.modules, "heavy imports at import time"
from format.memgen import write_small_memory
path = write_small_memory(__import__("pathlib").Path({str(tmp_path)!r}) / "mem")
reader = hippo_format.open_memory(path, verify="full")
reader.load_all()
hippo_format.summarize(reader)
assert "torch" not in sys.modules, "torch was imported"
assert not any(m == "hippogym" or m.startswith("hippogym.") for m in sys.modules), "hippogym was imported"
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
