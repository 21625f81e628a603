"""Snapshot-consistent reads: a reader sees the memory it opened, whole, while other processes save over it.

``HIPPO_CONCURRENCY_TRIES=100 pytest tests/format/test_format_concurrency.py`` runs the long
version of the load-during-save test (the default keeps CI under a few seconds).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import hippo_format
from hippo_format import open_memory

from .save_worker import build

WORKER = Path(__file__).with_name("save_worker.py")
TRIES = int(os.environ.get("HIPPO_CONCURRENCY_TRIES") or 12)
ROWS = 3_000


def _markers(loaded: dict) -> set[float]:
    """Every generation marker found in a loaded memory (one value when it is whole)."""
    found = {float(loaded["manifest"]["store"]["generation"])}
    for name in ("reward", "obs", "next_obs", "action"):
        found.update(np.unique(loaded["transitions"][name]).tolist())
    found.update(np.unique(loaded["tensors"]["keys"]["embeddings"]).tolist())
    found.update((np.unique(loaded["episodes"]["return"]) / 100).tolist())
    found.add(float(loaded["extra_files"]["index.faiss"][: len(loaded["extra_files"]["index.faiss"]) // 1000]))
    return found


def test_reader_keeps_reading_the_memory_it_opened(tmp_path):
    target = tmp_path / "mem"
    hippo_format.write_memory(target, **build(1, 500))
    reader = open_memory(target, verify="full")
    view = reader.column("obs")
    hippo_format.write_memory(target, **build(2, 700))  # replaces the directory while the reader is open
    loaded = reader.load_all()
    assert _markers(loaded) == {1.0}
    assert reader.num_transitions == 500 and loaded["transitions"]["obs"].shape == (500, 8)
    assert (view == 1.0).all() and (reader.tensor("keys", "embeddings") == 1.0).all()
    reader.verify(full=True)  # hashes the files it opened, not the ones now at the path
    assert reader.extra_file("index.faiss") == b"1" * 1000
    reopened = open_memory(target, verify="full")
    assert _markers(reopened.load_all()) == {2.0}


def test_reader_refuses_use_after_close(tmp_path):
    target = hippo_format.write_memory(tmp_path / "mem", **build(3, 200))
    reader = open_memory(target)
    reader.close()
    with pytest.raises(hippo_format.FormatError, match="after the memory was closed"):
        reader.extra_file("index.faiss")


@pytest.mark.parametrize("mode", ["renameat2", "fallback"])
def test_load_during_concurrent_saves_is_never_mixed(tmp_path, mode):
    target = tmp_path / "mem"
    hippo_format.write_memory(target, **build(0, ROWS))
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(Path(hippo_format.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]),
    )
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), str(target), "1", str(ROWS), mode, "loop"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    seen: list[float] = []
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60
        # Load until TRIES loads have been checked AND they overlapped at least one save (two
        # generations seen): on a busy machine the writer may need longer than TRIES loads to
        # finish its next save, and a fixed count would then fail for a reason unrelated to atomicity.
        while (len(seen) < TRIES or len(set(seen)) < 2) and time.monotonic() < deadline:
            with open_memory(target, verify="full") as reader:
                markers = _markers(reader.load_all())
                reader.verify(full=True)
            assert len(markers) == 1, f"load {len(seen)} mixed generations {sorted(markers)}"
            seen.append(markers.pop())
    finally:
        (tmp_path / "mem.stop").touch()
        proc.terminate()
        proc.communicate(timeout=60)
    assert len(seen) >= TRIES, f"only {len(seen)} loads in 60 s"
    # the loads really overlapped the saves: they saw several generations
    assert len(set(seen)) >= 2, seen
