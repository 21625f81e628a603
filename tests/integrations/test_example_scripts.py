"""The SB3 and offline-to-online examples run end to end (tiny settings)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "script, args",
    [
        ("sb3_dqn_hippocampal.py", ["--steps", "400"]),
        ("offline_to_online.py", []),
        ("value_memory.py", ["--steps", "1500", "--length", "8"]),
        ("value_memory.py", ["--steps", "1200", "--length", "8", "--priority", "self_imitation"]),
        ("value_memory.py", ["--task", "bitflip", "--bits", "4", "--steps", "600"]),
    ],
)
def test_example_runs(script, args, tmp_path):
    env = {**os.environ, "MINARI_DATASETS_PATH": str(tmp_path / "minari"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), *args], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
