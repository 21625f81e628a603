"""Opening a memory's files once, safely, and reading them only through those descriptors.

A :class:`Snapshot` opens the memory directory, then every file relative to that
directory descriptor, and keeps the descriptors: every later read (hashing, memory
maps, ``pread``) goes through them, never through a path again. A concurrent save
replaces the directory atomically (SPEC.md section 10) and so never changes what an
open snapshot reads: it sees the old memory or, opened afterwards, the new one,
whole.

Files are opened with ``O_NONBLOCK`` (a FIFO cannot hang the reader) and must be
regular files (checked on the open descriptor). Symbolic links are followed only
where they stay inside the memory directory, or, for a memory stored in a Hugging
Face Hub cache snapshot (``<repo>/snapshots/<revision>/...``), where they point to
a file of that cache's ``<repo>/blobs/`` directory, which is how the Hub cache lays
out every file.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import stat
import threading
import weakref
from pathlib import Path

import xxhash

from hippo_format.errors import (
    CorruptFileError,
    FormatError,
    MissingFileError,
    UnsafePathError,
)

_READ_CHUNK = 8 * 1024 * 1024
_FILE_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)


class DirectoryReplacedError(FormatError):
    """Internal: the directory was replaced while it was being opened; the caller retries."""


class RootMissingError(MissingFileError):
    """The memory directory itself does not exist (perhaps only for an instant, mid-save)."""


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:  # pragma: no cover - already closed
        pass


class FileHandle:
    """One open regular file: positional reads, SHA-256 and a read-only map, all through its descriptor.

    Attributes:
        path: The path it was opened under (for messages only; never reopened).
        where: Name for messages.
        size: Size in bytes when opened.
    """

    def __init__(self, fd: int, path: Path, where: str, size: int) -> None:
        """Take ownership of ``fd`` (closed when the handle is closed or collected)."""
        self._fd = fd
        self.path = path
        self.where = where
        self.size = size
        self._map: mmap.mmap | None = None
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _close_quietly, fd)

    @property
    def fd(self) -> int:
        """The descriptor (valid until :meth:`close`)."""
        if not self._finalizer.alive:
            raise CorruptFileError(f"{self.where}: read after the memory was closed; open it again", field=self.where)
        return self._fd

    def pread_into(self, offset: int, out: memoryview) -> int:
        """Fill ``out`` from byte ``offset``; return the bytes read (fewer only at end of file)."""
        fd = self.fd
        done = 0
        total = len(out)
        while done < total:
            if hasattr(os, "preadv"):
                n = os.preadv(fd, [out[done:]], offset + done)
            else:  # pragma: no cover - non-Linux
                n = self._pread_copy(out, done, offset)
            if not n:
                break
            done += n
        return done

    def _pread_copy(self, out: memoryview, done: int, offset: int) -> int:  # pragma: no cover - non-Linux
        data = os.pread(self.fd, min(len(out) - done, _READ_CHUNK), offset + done)
        out[done : done + len(data)] = data
        return len(data)

    def read(self, offset: int = 0, length: int | None = None) -> bytes:
        """Return ``length`` bytes from ``offset`` (default: to the end of the file as opened)."""
        length = self.size - offset if length is None else length
        buf = bytearray(max(0, min(length, self.size - offset)))
        got = self.pread_into(offset, memoryview(buf))
        return bytes(buf[:got])

    def sha256(self) -> tuple[str, int]:
        """Stream the file through SHA-256; return ``(hex digest, bytes read)``."""
        return self.digest("sha256")

    def digest(self, algorithm: str) -> tuple[str, int]:
        """Stream the file through ``algorithm`` (``"sha256"`` or ``"xxh3_128"``); return ``(hex, bytes read)``."""
        digest = hashlib.sha256() if algorithm == "sha256" else xxhash.xxh3_128()
        buf = bytearray(_READ_CHUNK)
        view = memoryview(buf)
        offset = 0
        fd = self.fd
        while True:
            if hasattr(os, "preadv"):
                n = os.preadv(fd, [view], offset)
            else:  # pragma: no cover - non-Linux
                n = self._pread_copy(view, 0, offset)
            if not n:
                break
            digest.update(view[:n])
            offset += n
        return digest.hexdigest(), offset

    def mapped(self) -> mmap.mmap | None:
        """Return a read-only map of the whole file (``None`` for an empty file), created once."""
        if self.size == 0:
            return None
        with self._lock:
            if self._map is None:
                current = os.fstat(self.fd).st_size
                if current != self.size:
                    raise CorruptFileError(
                        f"{self.where}: changed size from {self.size} to {current} bytes since the memory was opened; "
                        "the file was modified in place (saves never do that) — reopen the memory",
                        field=self.where,
                    )
                self._map = mmap.mmap(self.fd, 0, access=mmap.ACCESS_READ)
        return self._map

    def close(self) -> None:
        """Close the descriptor (maps and arrays already handed out stay valid)."""
        self._map = None
        self._finalizer()


def _hub_blobs_dir(real_root: Path) -> Path | None:
    """Return ``<repo>/blobs`` if ``real_root`` lies in ``<repo>/snapshots/<revision>``, else None."""
    parts = real_root.parts
    for i in range(len(parts) - 2, 0, -1):
        if parts[i] == "snapshots":
            blobs = Path(*parts[:i]) / "blobs"
            return blobs if blobs.is_dir() else None
    return None


class Snapshot:
    """An open memory directory from which files are opened relative to its descriptor.

    Args:
        root: The memory directory.
    """

    def __init__(self, root: Path) -> None:
        """Open ``root``.

        Raises:
            MissingFileError: If it does not exist or is not a directory.
        """
        self.root = root
        try:
            self._dirfd = os.open(root, _DIR_FLAGS)
        except FileNotFoundError:
            raise RootMissingError(f"{root}: no such memory directory", field=str(root)) from None
        except NotADirectoryError:
            raise MissingFileError(
                f"{root}: not a directory; a memory is a directory holding manifest.json", field=str(root)
            ) from None
        except OSError as exc:
            raise MissingFileError(f"{root}: cannot open the memory directory ({exc})", field=str(root)) from None
        self._finalizer = weakref.finalize(self, _close_quietly, self._dirfd)
        st = os.fstat(self._dirfd)
        if not stat.S_ISDIR(st.st_mode):  # pragma: no cover - O_DIRECTORY already refuses
            self.close()
            raise MissingFileError(f"{root}: not a directory", field=str(root))
        self._identity = (st.st_dev, st.st_ino)
        self.real_root = Path(os.path.realpath(root))
        self._blobs = _hub_blobs_dir(self.real_root)

    def replaced(self) -> bool:
        """Return True if ``root`` now names another directory than the one opened."""
        try:
            st = os.stat(self.root)
        except OSError:
            return True
        return (st.st_dev, st.st_ino) != self._identity

    def _allowed_target(self, real: Path) -> bool:
        if real == self.real_root or self.real_root in real.parents:
            return True
        return self._blobs is not None and real.parent == self._blobs

    def open(self, name: str, where: str) -> FileHandle:
        """Open ``name`` (already checked by :func:`check_relative_name`) inside the directory.

        Args:
            name: Relative POSIX name.
            where: Manifest entry or context for messages.

        Returns:
            The open handle.

        Raises:
            MissingFileError: If there is no such file.
            UnsafePathError: If a symbolic link leads outside the directory (and outside the
                Hub cache's blobs, for a Hub snapshot).
            CorruptFileError: If it is not a regular file (directory, FIFO, device, socket).
            DirectoryReplacedError: If the directory was replaced meanwhile (retry the open).
        """
        path = self.root / name
        real = Path(os.path.realpath(path))
        if not self._allowed_target(real):
            raise UnsafePathError(
                f"{where}: {path} resolves to {real}, outside the memory directory {self.real_root} (symbolic "
                "link?); replace the link with the file itself",
                field=name,
            )
        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=self._dirfd)
        except FileNotFoundError:
            if self.replaced():
                raise DirectoryReplacedError(f"{self.root}: replaced while opening {name}") from None
            raise MissingFileError(f"{path}: missing ({where})", field=name) from None
        except IsADirectoryError:
            raise CorruptFileError(
                f"{path}: expected a regular file, found a directory ({where})", field=name
            ) from None
        except OSError as exc:
            raise CorruptFileError(f"{path}: cannot open it ({exc}) ({where})", field=name) from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                kind = (
                    "a FIFO"
                    if stat.S_ISFIFO(st.st_mode)
                    else "a directory"
                    if stat.S_ISDIR(st.st_mode)
                    else "a device or socket"
                )
                raise CorruptFileError(
                    f"{path}: expected a regular file, found {kind} ({where}); a memory holds regular files only",
                    field=name,
                )
            try:
                target = os.stat(real)
            except OSError:
                target = None
            if target is None or (target.st_dev, target.st_ino) != (st.st_dev, st.st_ino):
                if self.replaced():
                    raise DirectoryReplacedError(f"{self.root}: replaced while opening {name}")
                raise UnsafePathError(
                    f"{where}: {path} changed while it was being opened (a symbolic link was swapped?)", field=name
                )
        except BaseException:
            os.close(fd)
            raise
        return FileHandle(fd, path, name, st.st_size)

    def close(self) -> None:
        """Close the directory descriptor (open file handles stay usable)."""
        self._finalizer()


def open_file(path: Path, where: str) -> FileHandle:
    """Open one standalone regular file (not part of a memory directory) without blocking on FIFOs.

    Raises:
        MissingFileError: If it does not exist.
        CorruptFileError: If it is not a regular file or cannot be opened.
    """
    try:
        fd = os.open(path, _FILE_FLAGS)
    except FileNotFoundError:
        raise MissingFileError(f"{path}: no such file", field=where) from None
    except IsADirectoryError:
        raise CorruptFileError(f"{path}: expected a regular file, found a directory", field=where) from None
    except OSError as exc:
        raise CorruptFileError(f"{path}: cannot open it ({exc})", field=where) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise CorruptFileError(f"{path}: expected a regular file, found something else (FIFO, device?)", field=where)
    return FileHandle(fd, path, where, st.st_size)
