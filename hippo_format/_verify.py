"""Opening the files a manifest lists and checking their sizes and digests."""

from __future__ import annotations

import os
from typing import Any

from hippo_format._files import FileHandle, Snapshot
from hippo_format._io import shared_pool
from hippo_format._paths import check_relative_name
from hippo_format._schema import (
    MANIFEST_FILE,
)
from hippo_format.errors import (
    ChecksumMismatchError,
    MissingFileError,
    TruncatedFileError,
)

__all__ = ["check_digests", "check_sizes", "digest_algorithm", "open_files"]


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


def digest_algorithm(entry: dict[str, Any], prefer_fast: bool = True) -> str:
    """The digest a full check compares for one manifest entry (SPEC I2).

    ``"xxh3_128"`` when the entry records one and ``prefer_fast``, else ``"sha256"``.
    """
    return "xxh3_128" if prefer_fast and "xxh3_128" in entry else "sha256"


def check_digests(
    handles: dict[str, FileHandle], files: dict[str, dict[str, Any]], prefer_fast: bool = True
) -> None:
    """Raise if a file's digest or size differs from the manifest.

    Args:
        handles: Open files by name.
        files: The manifest's files section.
        prefer_fast: Compare the XXH3-128 digest where the manifest records one (about 6x faster
            than SHA-256); ``False`` compares SHA-256 for every file.

    Raises:
        ChecksumMismatchError: A digest or size differs.
    """
    if not handles:
        return
    names = list(handles)
    algorithms = {name: digest_algorithm(files[name], prefer_fast) for name in names}
    digests = list(shared_pool("verify").map(lambda n: handles[n].digest(algorithms[n]), names))
    for name, (digest, size) in zip(names, digests, strict=True):
        algorithm = algorithms[name]
        expected = files[name][algorithm]
        if digest != expected or size != files[name]["bytes"]:
            label = "SHA-256" if algorithm == "sha256" else "XXH3-128"
            raise ChecksumMismatchError(
                f"{handles[name].path}: {label} is {digest} ({size} bytes) but {MANIFEST_FILE} records "
                f"{expected} ({files[name]['bytes']} bytes); the file is corrupt or was modified — "
                "restore it or re-save the memory",
                field=name,
            )


def open_files(snapshot: Snapshot, files: dict[str, dict[str, Any]], mode: str) -> dict[str, FileHandle]:
    """Open every listed file once (inside the directory, regular files only) and check it per ``mode``.

    Args:
        snapshot: The directory snapshot to open files in.
        files: The manifest's files section.
        mode: ``"size"``, ``"full"`` (digests, the fast one where recorded), ``"sha256"`` (SHA-256
            digests) or ``"none"``.

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
        if mode in ("full", "sha256"):
            check_digests(handles, files, prefer_fast=mode == "full")
    except BaseException:
        for handle in handles.values():
            handle.close()
        raise
    return handles
