r"""A bounds-checked look at an Arrow IPC file's footer and message headers, before pyarrow decodes anything.

pyarrow decompresses every buffer of a record batch when the batch is read, into
allocations of the sizes the file declares. To bound those allocations by the
file's own size, this module reads the flatbuffer metadata itself (footer, then
each record batch's message header) and reports, per file: the record batches,
their row counts, whether any is compressed, and the decoded bytes the buffers
declare. Nothing here allocates more than a few small Python objects per buffer,
and any inconsistency raises :class:`~hippo_format.errors.CorruptFileError`.

Layout (Arrow columnar format, "IPC File Format"): ``ARROW1\\0\\0``, the stream
of encapsulated messages, the ``Footer`` flatbuffer, its int32 length, ``ARROW1``.
An encapsulated message is ``0xFFFFFFFF``, an int32 metadata length, the
``Message`` flatbuffer (padded), then the body.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hippo_format.errors import CorruptFileError

_MAGIC = b"ARROW1"
_CONTINUATION = 0xFFFFFFFF
_HEADER_RECORD_BATCH = 3
_BLOCK_BYTES = 24  # struct Block { offset: long; metaDataLength: int; (pad); bodyLength: long }
_BUFFER_BYTES = 16  # struct Buffer { offset: long; length: long }


@dataclass(frozen=True)
class IpcLayout:
    """What an Arrow IPC file's metadata declares."""

    batch_rows: tuple[int, ...]
    dictionaries: int
    compressed: bool
    decoded_bytes: int
    body_bytes: int

    @property
    def rows(self) -> int:
        """Total rows over all record batches."""
        return sum(self.batch_rows)


class _Flat:
    """Minimal bounds-checked flatbuffer table access over a byte region."""

    def __init__(self, data: memoryview, where: str) -> None:
        self.data = data
        self.where = where

    def _fail(self, what: str) -> CorruptFileError:
        return CorruptFileError(
            f"{self.where}: cannot read it as an Arrow IPC file (malformed metadata: {what}); the file is corrupt",
            field=self.where,
        )

    def _unpack(self, fmt: str, pos: int) -> int:
        size = struct.calcsize(fmt)
        if pos < 0 or pos + size > len(self.data):
            raise self._fail(f"reference to byte {pos} outside a {len(self.data)}-byte flatbuffer")
        return int(struct.unpack_from(fmt, self.data, pos)[0])

    def root(self) -> int:
        return self._unpack("<I", 0)

    def field(self, table: int, slot: int) -> int | None:
        """Return the absolute position of field ``slot`` of the table at ``table``, or None if absent."""
        vtable = table - self._unpack("<i", table)
        vt_size = self._unpack("<H", vtable)
        if vt_size < 4 or vt_size % 2:
            raise self._fail(f"vtable size {vt_size}")
        if 4 + 2 * slot >= vt_size:
            return None
        offset = self._unpack("<H", vtable + 4 + 2 * slot)
        return table + offset if offset else None

    def scalar(self, table: int, slot: int, fmt: str, default: int = 0) -> int:
        pos = self.field(table, slot)
        return default if pos is None else self._unpack(fmt, pos)

    def table(self, table: int, slot: int) -> int | None:
        pos = self.field(table, slot)
        return None if pos is None else pos + self._unpack("<I", pos)

    def vector(self, table: int, slot: int, item_bytes: int) -> tuple[int, int]:
        """Return ``(start, count)`` of a vector of structs (``(0, 0)`` when absent)."""
        pos = self.table(table, slot)
        if pos is None:
            return 0, 0
        count = self._unpack("<I", pos)
        start = pos + 4
        if start + count * item_bytes > len(self.data):
            raise self._fail(f"vector of {count} items runs past the end of the metadata")
        return start, count

    def struct_at(self, fmt: str, pos: int) -> tuple[int, ...]:
        size = struct.calcsize(fmt)
        if pos < 0 or pos + size > len(self.data):
            raise self._fail("struct outside the metadata")
        return tuple(int(v) for v in struct.unpack_from(fmt, self.data, pos))


def scan_ipc_file(data: memoryview, where: str) -> IpcLayout:
    """Read the footer and every message header of an Arrow IPC file held in ``data``.

    Args:
        data: The whole file (a memory map or a RAM copy), as bytes.
        where: File name for messages.

    Returns:
        The declared layout.

    Raises:
        CorruptFileError: For any malformed or out-of-bounds metadata.
    """
    size = len(data)

    def fail(what: str) -> CorruptFileError:
        return CorruptFileError(
            f"{where}: cannot read it as an Arrow IPC file ({what}); the file is corrupt or truncated — restore it or "
            "re-save the memory",
            field=where,
        )

    if size < 2 * len(_MAGIC) + 6 or bytes(data[: len(_MAGIC)]) != _MAGIC or bytes(data[size - 6 :]) != _MAGIC:
        raise fail("magic 'ARROW1' missing at the start or the end")
    (footer_len,) = struct.unpack_from("<i", data, size - 10)
    footer_start = size - 10 - footer_len
    if footer_len <= 0 or footer_start < 8:
        raise fail(f"footer length {footer_len} does not fit the {size}-byte file")
    footer = _Flat(data[footer_start : size - 10], where)
    root = footer.root()
    dict_start, dict_count = footer.vector(root, 2, _BLOCK_BYTES)
    batch_start, batch_count = footer.vector(root, 3, _BLOCK_BYTES)
    rows: list[int] = []
    compressed = False
    decoded = 0
    body_total = 0
    for i in range(batch_count):
        offset, meta_len, _pad, body_len = footer.struct_at("<qiiq", batch_start + i * _BLOCK_BYTES)
        if offset < 8 or meta_len < 8 or body_len < 0 or offset + meta_len + body_len > footer_start:
            raise fail(f"record batch {i} block [{offset}, +{meta_len}, +{body_len}] lies outside the data section")
        (marker,) = struct.unpack_from("<I", data, offset)
        skip = 8 if marker == _CONTINUATION else 4
        (fb_len,) = struct.unpack_from("<i", data, offset + skip - 4)
        if fb_len <= 0 or skip + fb_len > meta_len:
            raise fail(f"record batch {i} metadata length {fb_len} exceeds its block ({meta_len} bytes)")
        message = _Flat(data[offset + skip : offset + skip + fb_len], where)
        mroot = message.root()
        if message.scalar(mroot, 1, "<B") != _HEADER_RECORD_BATCH:
            raise fail(f"block {i} of the record batch list does not hold a record batch")
        batch = message.table(mroot, 2)
        if batch is None:
            raise fail(f"record batch {i} has no header")
        length = message.scalar(batch, 0, "<q")
        if length < 0:
            raise fail(f"record batch {i} has length {length}")
        rows.append(length)
        is_compressed = message.table(batch, 3) is not None
        compressed = compressed or is_compressed
        buf_start, buf_count = message.vector(batch, 2, _BUFFER_BYTES)
        body = offset + meta_len
        for j in range(buf_count):
            buf_offset, buf_len = message.struct_at("<qq", buf_start + j * _BUFFER_BYTES)
            if buf_offset < 0 or buf_len < 0 or buf_offset + buf_len > body_len:
                raise fail(
                    f"record batch {i} buffer {j} [{buf_offset}, +{buf_len}] lies outside its {body_len}-byte body"
                )
            if is_compressed and buf_len >= 8:
                (declared,) = struct.unpack_from("<q", data, body + buf_offset)
                if declared < -1:
                    raise fail(f"record batch {i} buffer {j} declares {declared} uncompressed bytes")
                decoded += buf_len - 8 if declared == -1 else declared
            else:
                decoded += buf_len
        body_total += body_len
    return IpcLayout(
        batch_rows=tuple(rows),
        dictionaries=dict_count,
        compressed=compressed,
        decoded_bytes=decoded,
        body_bytes=body_total,
    )
