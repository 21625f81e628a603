"""The hashing and fsync worker threads that every written file shares (``hippo_format._io``)."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest

from hippo_format import _io, open_memory

from .memgen import write_small_memory


def _hippo_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("hippo-")]


def test_saves_reuse_the_same_worker_threads(tmp_path, monkeypatch):
    write_small_memory(tmp_path / "first")  # creates the pools
    started: list[str] = []
    original = threading.Thread.start

    def counting_start(self: threading.Thread) -> None:
        started.append(self.name)
        original(self)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    for i in range(6):
        write_small_memory(tmp_path / f"mem{i}", seed=i)
    monkeypatch.undo()
    # Each save used to start three threads per file (about 20 per save); now the pools are shared.
    # Only the fsync pool may still grow to its size.
    assert len(started) <= _io._POOL_SIZES["fsync"], started
    assert len(_hippo_threads()) <= sum(_io._POOL_SIZES.values())
    for i in range(6):
        with open_memory(tmp_path / f"mem{i}", verify="full") as reader:
            assert reader.manifest["counts"]["transitions"] > 0


def _save_in_child(path: str, queue: multiprocessing.Queue) -> None:
    try:
        write_small_memory(Path(path), seed=3)
        with open_memory(path, verify="full"):
            pass
        queue.put("ok")
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        queue.put(repr(exc))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs os.fork")
def test_a_forked_child_saves_with_its_own_workers(tmp_path):
    write_small_memory(tmp_path / "parent")  # the parent's pools exist before the fork
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_save_in_child, args=(str(tmp_path / "child"), queue))
    child.start()
    child.join(timeout=60)
    if child.is_alive():  # it waited for worker threads that do not exist in a child
        child.kill()
        pytest.fail("the forked child's save hung")
    assert child.exitcode == 0
    assert queue.get(timeout=5) == "ok"


def test_an_aborted_file_cancels_its_queued_updates_only(tmp_path):
    gate = threading.Event()
    blocker = _io.shared_pool("sha256").submit(gate.wait, 30)  # hold the SHA-256 thread
    try:
        kept = _io.HashingFile(tmp_path / "kept.bin")
        dropped = _io.HashingFile(tmp_path / "dropped.bin")
        kept.write(b"a" * 1000)
        dropped.write(b"b" * 1000)
        dropped.abort()
        pending = kept.finish()
    finally:
        gate.set()
    blocker.result(timeout=30)
    entry = pending.result()
    assert entry["bytes"] == 1000
    import hashlib

    assert entry["sha256"] == hashlib.sha256(b"a" * 1000).hexdigest()
    assert (tmp_path / "dropped.bin").stat().st_size == 1000  # written, never finished
