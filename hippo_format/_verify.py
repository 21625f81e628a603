"""Opening the files a manifest lists and checking their sizes and digests."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hippo_format._files import FileHandle, Snapshot
from hippo_format._paths import check_relative_name
from hippo_format._schema import (
    MANIFEST_FILE,
)
from hippo_format.errors import (
    ChecksumMismatchError,
    MissingFileError,
    TruncatedFileError,
)

__all__ = ["check_digests", "check_sizes", "open_files"]


def check_sizes(handles: dict[str, FileHandle], files: dict[str, dict[str, Any]], current: bool) -> None:
    """Raise if a file's size differs from the manifest.

    Args:
        handles: Open files by name.
        files: The manifest's files section.
        current: Use the size now (fstat) rather than the size at open.

    Raises:
        TruncatedFileError: A file is shorter than recorded.
        ChecksumMismatchError: A file is longer than recorded.
    """
    for name, handle in handles.items():
        expected = files[name]["bytes"]
        size = os.fstat(handle.fd).st_size if current else handle.size
        if size < expected:
            raise TruncatedFileError(
                f"{handle.path}: {size} bytes, but {MANIFEST_FILE} records {expected}; the file is "
                "truncated — restore it or re-save the memory",
                field=name,
            )
        if size > expected:
            raise ChecksumMismatchError(
                f"{handle.path}: {size} bytes, but {MANIFEST_FILE} records {expected}; the file was "
                "modified after the memory was saved",
                field=name,
            )


def check_digests(handles: dict[str, FileHandle], files: dict[str, dict[str, Any]]) -> None:
    """Raise if a file's SHA-256 or size differs from the manifest.

    Args:
        handles: Open files by name.
        files: The manifest's files section.

    Raises:
        ChecksumMismatchError: A digest or size differs.
    """
    if not handles:
        return
    names = list(handles)
    with ThreadPoolExecutor(max_workers=min(4, len(names)), thread_name_prefix="hippo-verify") as pool:
        digests = list(pool.map(lambda n: handles[n].sha256(), names))
    for name, (digest, size) in zip(names, digests, strict=True):
        expected = files[name]["sha256"]
        if digest != expected or size != files[name]["bytes"]:
            raise ChecksumMismatchError(
                f"{handles[name].path}: SHA-256 is {digest} ({size} bytes) but {MANIFEST_FILE} records "
                f"{expected} ({files[name]['bytes']} bytes); the file is corrupt or was modified — "
                "restore it or re-save the memory",
                field=name,
            )


def open_files(snapshot: Snapshot, files: dict[str, dict[str, Any]], mode: str) -> dict[str, FileHandle]:
    """Open every listed file once (inside the directory, regular files only) and check it per ``mode``.

    Args:
        snapshot: The directory snapshot to open files in.
        files: The manifest's files section.
        mode: ``"size"``, ``"full"`` or ``"none"``.

    Returns:
        The open handles by name.
    """
    handles: dict[str, FileHandle] = {}
    try:
        for name, entry in files.items():
            where = f"{MANIFEST_FILE}: files entry"
            check_relative_name(name, where)
            try:
                handles[name] = snapshot.open(name, where)
            except MissingFileError:
                raise MissingFileError(
                    f"{snapshot.root / name}: missing, but {MANIFEST_FILE} lists it ({entry['bytes']} bytes); "
                    "the memory is incomplete — restore the file or re-save the memory",
                    field=name,
                ) from None
        if mode != "none":
            check_sizes(handles, files, current=False)
        if mode == "full":
            check_digests(handles, files)
    except BaseException:
        for handle in handles.values():
            handle.close()
        raise
    return handles
