"""Runs the hypothesis fuzz cases (fuzz_cases.py) in a subprocess, so that a native crash fails the test.

CI size by default (a few seconds). Long campaign, see docs/reliability.md::

    HIPPO_FUZZ_EXAMPLES=10000 HIPPO_FUZZ_STATS=/tmp/fuzz.jsonl pytest tests/format/test_format_fuzz.py

(``N`` examples of raw damage to an uncompressed memory and ``N // 4`` to a
compressed one, ``N`` re-sealed manifest mutations and ``N // 2`` re-sealed data
damages; ``HIPPO_FUZZ_STATS`` collects one JSON line per case.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
REPO = HERE.parents[1]
_EXAMPLES = int(os.environ.get("HIPPO_FUZZ_EXAMPLES") or 0)
TIMEOUT = max(180, _EXAMPLES // 4)


@pytest.mark.timeout(TIMEOUT + 60)
def test_fuzz_corrupted_memories_never_crash(tmp_path):
    env = dict(os.environ, HYPOTHESIS_STORAGE_DIRECTORY=str(tmp_path / "hypothesis"))
    cmd = [
        sys.executable,
        "-X",
        "faulthandler",
        "-m",
        "pytest",
        str(HERE / "fuzz_cases.py"),
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        "-o",
        "timeout=0",
        "-q",
        "-x",
        "--hypothesis-show-statistics",
    ]
    try:
        result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"fuzz run hung (> {TIMEOUT} s); output so far:\n{exc.stdout}\n{exc.stderr}")
    output = result.stdout[-8000:] + "\n" + result.stderr[-8000:]
    if result.returncode < 0:
        pytest.fail(f"fuzz subprocess died from signal {signal.Signals(-result.returncode).name}:\n{output}")
    assert result.returncode == 0, output
    assert " passed" in result.stdout, output
