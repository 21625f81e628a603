"""Low-level file helpers: hash-while-writing sinks, fsync, streaming SHA-256."""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import xxhash

_READ_CHUNK = 8 * 1024 * 1024
_CHUNK = 4 * 1024 * 1024

#: Worker threads shared by every file a process writes: one for SHA-256 updates, one for XXH3
#: updates (a single thread each runs a file's chunks in the order they were written) and a few
#: for fsync. Starting three new threads per file made a 100k-transition save about 12% slower on
#: the 2-core reference machine (each start waits until the new thread runs, while the previous
#: file's hashing threads are busy). They are created at the first write, never at import. Loads
#: digest their files on the ``verify`` threads (up to four files at once), shared the same way:
#: a pool started per load cost about 7 ms of a 100k-transition load.
_POOL_SIZES = {"sha256": 1, "xxh3": 1, "fsync": 4, "verify": 4}
_pools: dict[str, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def shared_pool(kind: str) -> ThreadPoolExecutor:
    """The process's shared executor for ``kind`` (``"sha256"``, ``"xxh3"``, ``"fsync"`` or ``"verify"``)."""
    pool = _pools.get(kind)
    if pool is None:
        with _pools_lock:
            pool = _pools.get(kind)
            if pool is None:
                pool = ThreadPoolExecutor(max_workers=_POOL_SIZES[kind], thread_name_prefix=f"hippo-{kind}")
                _pools[kind] = pool
    return pool


def _forget_pools() -> None:
    """In a forked child: the parent's worker threads do not exist there, so start afresh."""
    global _pools_lock
    _pools.clear()
    _pools_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools)


class HashingFile:
    """A write-only file that digests the bytes it is given (SHA-256 and XXH3-128), never re-reading them.

    Hashing runs on background threads shared by all files (one per digest;
    ``hashlib`` and ``xxhash`` release the GIL for large buffers), so it
    overlaps with the writes and the ``fsync`` of this and the following
    files. Buffers handed to :meth:`write` are kept referenced, not copied,
    until they are hashed; callers must not modify them meanwhile.

    The object also quacks like the Python file ``pyarrow.PythonFile`` expects.
    """

    def __init__(self, path: Path) -> None:
        """Create ``path`` (which must not exist) for writing.

        Args:
            path: File to create.
        """
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
        self._hash = hashlib.sha256()
        self._fast = xxhash.xxh3_128()
        self._hasher = shared_pool("sha256")
        self._fast_hasher = shared_pool("xxh3")
        self._queued: list[Future[Any]] = []  # this file's hash updates not known to be done
        self._nbytes = 0
        self.closed = False

    def write(self, data: Any) -> int:
        """Write all of ``data`` (any C-contiguous buffer) and queue it for hashing.

        Args:
            data: Bytes-like object.

        Returns:
            The number of bytes written.
        """
        view = memoryview(data)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        total = len(view)
        # Chunked so that hashing of a chunk starts right after it is written, on another
        # core, while its bytes are still in the CPU cache.
        for lo in range(0, total, _CHUNK):
            chunk = view[lo : lo + _CHUNK]
            done = 0
            while done < len(chunk):
                done += os.write(self._fd, chunk[done:])
            self._queued = [f for f in self._queued if not f.done()]
            self._queued.append(self._hasher.submit(self._hash.update, chunk))
            self._queued.append(self._fast_hasher.submit(self._fast.update, chunk))
        self._nbytes += total
        return total

    def tell(self) -> int:
        """Return the number of bytes written so far."""
        return self._nbytes

    def flush(self) -> None:
        """Do nothing: writes go straight to the OS (``finish`` makes them durable)."""

    def writable(self) -> bool:
        """Return True (the object is a write-only stream)."""
        return True

    def close(self) -> None:
        """Do nothing; pyarrow may call it, :meth:`finish` is what really closes the file."""

    def finish(self) -> PendingFile:
        """Stop writing: start flushing the file to stable storage and finishing its digest.

        Both run in the background so that the caller can write the next file
        meanwhile; :meth:`PendingFile.result` waits for them.

        Returns:
            The pending manifest entry ``{"sha256", "bytes", "xxh3_128"}``.
        """
        self.closed = True
        fd = self._fd
        nbytes = self._nbytes
        digest, fast = self._hash, self._fast
        synced = shared_pool("fsync").submit(_fsync_close, fd)
        # Each executor has one thread, so these run after this file's queued updates. The SHA-256
        # job waits for the XXH3 one, which is on the other thread: no job waits for its own thread.
        fast_done = self._fast_hasher.submit(fast.hexdigest)
        hashed = self._hasher.submit(
            lambda: {"sha256": digest.hexdigest(), "bytes": nbytes, "xxh3_128": fast_done.result()}
        )
        self._queued = []
        return PendingFile(synced, hashed)

    def abort(self) -> None:
        """Close the descriptor without syncing (used on error paths)."""
        if not self.closed:
            self.closed = True
            for queued in self._queued:  # drop this file's hash updates that have not started
                queued.cancel()
            self._queued = []
            try:
                os.close(self._fd)
            except OSError:  # pragma: no cover - best effort on error path
                pass


def _fsync_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PendingFile:
    """A file whose fsync and digest are still running in the background."""

    def __init__(self, synced: Future[None], hashed: Future[dict[str, Any]]) -> None:
        """Wrap the two background jobs."""
        self._synced = synced
        self._hashed = hashed

    def result(self) -> dict[str, Any]:
        """Wait until the file is durable and hashed; return its manifest entry.

        The entry is ``{"sha256": hex, "bytes": size, "xxh3_128": hex}`` (SPEC M7).

        Raises:
            OSError: If the fsync failed.
        """
        self._synced.result()
        return self._hashed.result()


def fsync_dir(path: Path) -> None:
    """``fsync`` a directory so that entries created, renamed or removed in it are durable.

    Args:
        path: The directory.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_file(path: Path) -> tuple[str, int]:
    """Stream a file through SHA-256.

    Args:
        path: File to hash.

    Returns:
        ``(hex digest, number of bytes read)``.
    """
    digest = hashlib.sha256()
    buf = bytearray(_READ_CHUNK)
    view = memoryview(buf)
    total = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            n = f.readinto(view)
            if not n:
                break
            digest.update(view[:n])
            total += n
    return digest.hexdigest(), total


def read_exact_into(path: Path, offset: int, out: memoryview) -> int:
    """Read ``len(out)`` bytes from ``path`` at ``offset`` into ``out``.

    Args:
        path: File to read.
        offset: Byte offset to start at.
        out: Writable byte view to fill.

    Returns:
        The number of bytes actually read (less than ``len(out)`` only at end of file).
    """
    done = 0
    with open(path, "rb", buffering=0) as f:
        f.seek(offset)
        while done < len(out):
            n = f.readinto(out[done:])
            if not n:
                break
            done += n
    return done
