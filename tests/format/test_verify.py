"""Tests for hippo_format._verify: size and digest checks of listed files."""

from __future__ import annotations

import hashlib

import pytest

from hippo_format._files import Snapshot
from hippo_format._verify import check_digests, check_sizes, open_files
from hippo_format.errors import ChecksumMismatchError, MissingFileError, TruncatedFileError


def _entry(data: bytes) -> dict:
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_open_files_checks_sizes_and_digests(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"hello")
    snap = Snapshot(tmp_path)
    try:
        handles = open_files(snap, {"a.bin": _entry(b"hello")}, "full")
        assert list(handles) == ["a.bin"]
        check_sizes(handles, {"a.bin": _entry(b"hello")}, current=True)
        check_digests(handles, {"a.bin": _entry(b"hello")})
        with pytest.raises(TruncatedFileError):
            check_sizes(handles, {"a.bin": _entry(b"hello!")}, current=False)
        with pytest.raises(ChecksumMismatchError):
            check_sizes(handles, {"a.bin": _entry(b"hell")}, current=False)
        with pytest.raises(ChecksumMismatchError):
            check_digests(handles, {"a.bin": _entry(b"jello")})
        for h in handles.values():
            h.close()
        with pytest.raises(MissingFileError, match="missing"):
            open_files(snap, {"b.bin": _entry(b"x")}, "size")
    finally:
        snap.close()
