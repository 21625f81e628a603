"""Crash safety of saves: a save killed at any point leaves a loadable memory behind."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import hippo_format
from hippo_format import _atomic, open_memory

from .memgen import write_small_memory

WORKER = Path(__file__).with_name("save_worker.py")
ROWS = 250_000  # ~300 MB: a save takes roughly 0.5-1 s here
KILLS_PER_MODE = 4


def _spawn(target: Path, generation: int, mode: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(hippo_format.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), str(target), str(generation), str(ROWS), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "ready", (line, proc.stderr.read() if proc.stderr else "")
    return proc


def _check_generation(target: Path, allowed: set[int]) -> int:
    """Open the memory (fully verified) and check that every value encodes one allowed generation."""
    with open_memory(target, verify="full") as reader:
        generation = reader.manifest["store"]["generation"]
        assert generation in allowed, (generation, allowed)
        g = np.float32(generation)
        loaded = reader.load_all()
        assert (loaded["transitions"]["reward"] == g).all()
        assert (loaded["transitions"]["obs"] == g).all()
        assert (loaded["tensors"]["keys"]["embeddings"] == g).all()
        assert loaded["extra_files"]["index.faiss"] == str(generation).encode() * 1000
        reader.verify(full=True)
    return generation


@pytest.mark.parametrize("mode", ["renameat2", "fallback"])
def test_save_killed_at_random_points_leaves_old_or_new_memory(tmp_path, mode):
    target = tmp_path / "mem"
    first = _spawn(target, 0, mode)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    duration = float(out.split()[-1])
    current = 0
    rng = random.Random(1234 if mode == "renameat2" else 4321)
    outcomes = []
    for trial in range(1, KILLS_PER_MODE + 1):
        proc = _spawn(target, trial, mode)
        # spread the kills over the whole save, including the swap at its very end
        time.sleep(rng.uniform(0.0, duration * 1.05))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        found = _check_generation(target, {current, trial})
        outcomes.append((proc.returncode, found))
        current = found
    # leftovers of killed saves never confuse readers, and the next good save removes them
    last = _spawn(target, 99, mode)
    _, err = last.communicate(timeout=120)
    assert last.returncode == 0, err
    assert _check_generation(target, {99}) == 99
    assert sorted(p.name for p in tmp_path.iterdir()) == [".mem.lock", "mem"], outcomes


def test_fallback_interrupted_between_renames_is_recovered(tmp_path, monkeypatch):
    target = tmp_path / "mem"
    write_small_memory(target, seed=1)
    monkeypatch.setattr(_atomic, "USE_RENAMEAT2", False)
    real_rename = os.rename
    calls = []

    def crash_on_second_rename(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated crash between the two renames")
        return real_rename(src, dst)

    monkeypatch.setattr(_atomic.os, "rename", crash_on_second_rename)
    with pytest.raises(KeyboardInterrupt):
        write_small_memory(target, seed=2)
    monkeypatch.setattr(_atomic.os, "rename", real_rename)
    assert not target.exists()
    # readers fall back to the complete set-aside copy
    reader = open_memory(target, verify="full")
    assert reader.manifest["store"] == {"seed": 1}
    assert reader.path.name.startswith(".mem.old-")
    # and recover_memory moves it back
    assert hippo_format.recover_memory(target) is True
    assert open_memory(target).manifest["store"] == {"seed": 1}
    assert hippo_format.recover_memory(target) is False


def test_incomplete_set_aside_copy_is_not_used(tmp_path):
    aside = tmp_path / ".mem.old-1234"
    write_small_memory(aside)
    (aside / "keys.safetensors").unlink()
    with pytest.raises(hippo_format.MissingFileError, match="no such memory directory"):
        open_memory(tmp_path / "mem")


def test_failed_build_leaves_previous_memory_and_no_temp_dir(tmp_path, monkeypatch):
    target = tmp_path / "mem"
    write_small_memory(target, seed=1)

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device (simulated)")

    monkeypatch.setattr("hippo_format.writer.write_table", boom)
    with pytest.raises(OSError, match="No space left"):
        write_small_memory(target, seed=2)
    assert open_memory(target, verify="full").manifest["store"] == {"seed": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".mem.lock", "mem"]


def test_renameat2_exchange_swaps_directories(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a")
    (b / "y").write_text("b")
    if not _atomic.exchange(a, b):
        pytest.skip("renameat2(RENAME_EXCHANGE) is not available on this system")
    assert (a / "y").exists() and (b / "x").exists()
