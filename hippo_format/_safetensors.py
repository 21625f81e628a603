"""A small, defensive safetensors implementation on top of numpy.

The header is validated completely in Python before any byte of tensor data is
touched, so corrupt files raise :class:`~hippo_format.errors.FormatError`
subclasses instead of reaching native code. Files written here are plain
safetensors files that the ``safetensors`` package reads as well.
"""

from __future__ import annotations

import json
import math
import mmap
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hippo_format._files import FileHandle, open_file
from hippo_format._io import HashingFile
from hippo_format.errors import CorruptFileError, SchemaError, TruncatedFileError
from hippo_format.limits import DEFAULT_LIMITS, LoadLimits, check_json_depth

#: safetensors dtype tag -> item size in bytes.
ITEMSIZE: dict[str, int] = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "U16": 2,
    "I16": 2,
    "F16": 2,
    "BF16": 2,
    "U32": 4,
    "I32": 4,
    "F32": 4,
    "U64": 8,
    "I64": 8,
    "F64": 8,
}

#: safetensors dtype tag -> numpy dtype, for tags numpy can represent exactly.
TAG_TO_NUMPY: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype(np.uint8),
    "I8": np.dtype(np.int8),
    "U16": np.dtype(np.uint16),
    "I16": np.dtype(np.int16),
    "F16": np.dtype(np.float16),
    "U32": np.dtype(np.uint32),
    "I32": np.dtype(np.int32),
    "F32": np.dtype(np.float32),
    "U64": np.dtype(np.uint64),
    "I64": np.dtype(np.int64),
    "F64": np.dtype(np.float64),
}
NUMPY_TO_TAG: dict[np.dtype[Any], str] = {v: k for k, v in TAG_TO_NUMPY.items()}

#: Tags whose bits are exposed as this numpy dtype by the raw accessors.
RAW_CARRIER: dict[str, np.dtype[Any]] = {
    **TAG_TO_NUMPY,
    "BF16": np.dtype(np.uint16),
    "F8_E4M3": np.dtype(np.uint8),
    "F8_E5M2": np.dtype(np.uint8),
}

MAX_HEADER_BYTES = 100 * 1024 * 1024
METADATA_KEY = "__metadata__"


@dataclass(frozen=True)
class TensorEntry:
    """One tensor as described by a safetensors header."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


@dataclass(frozen=True)
class Header:
    """A validated safetensors header."""

    data_start: int
    file_size: int
    entries: dict[str, TensorEntry]
    metadata: dict[str, str]


def _no_duplicates(where: str):  # type: ignore[no-untyped-def]
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise CorruptFileError(f"{where}: header JSON repeats the key {key!r}; the file is corrupt")
            out[key] = value
        return out

    return hook


def _reject_constant(value: str) -> Any:
    raise ValueError(f"non-standard JSON constant {value}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_header_bytes(prefix: bytes, file_size: int, where: str, limits: LoadLimits = DEFAULT_LIMITS) -> Header:
    """Validate a safetensors header given the file's first bytes.

    Args:
        prefix: At least the 8-byte length and the header it announces.
        file_size: Size of the whole file.
        where: File name for messages.
        limits: Header size, nesting depth and dimension limits.

    Returns:
        The validated header.

    Raises:
        TruncatedFileError: If the file is shorter than its header or data say.
        CorruptFileError: For any other inconsistency.
    """
    if file_size < 8:
        raise TruncatedFileError(
            f"{where}: {file_size} bytes, too short for a safetensors file (8-byte header length "
            "missing); the file is truncated — restore it from a good copy"
        )
    (header_len,) = struct.unpack("<Q", prefix[:8])
    max_header = min(MAX_HEADER_BYTES, limits.max_header_bytes)
    if header_len > max_header:
        raise CorruptFileError(
            f"{where}: header length field says {header_len} bytes, more than the "
            f"{max_header}-byte limit; the file is corrupt",
            field=where,
        )
    if header_len < 2 or 8 + header_len > file_size:
        raise TruncatedFileError(
            f"{where}: header length field says {header_len} bytes but the file has only "
            f"{file_size - 8} bytes after it; the file is truncated or corrupt"
        )
    raw = prefix[8 : 8 + header_len]
    if len(raw) != header_len:  # pragma: no cover - callers pass enough bytes
        raise TruncatedFileError(f"{where}: could not read the {header_len}-byte header")
    check_json_depth(raw, f"{where}: header", limits)
    try:
        text = raw.decode("utf-8")
        doc = json.loads(text, object_pairs_hook=_no_duplicates(where), parse_constant=_reject_constant)
    except CorruptFileError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CorruptFileError(f"{where}: header is not valid UTF-8 JSON ({exc}); the file is corrupt") from exc
    if not isinstance(doc, dict) or not text.startswith("{"):
        raise CorruptFileError(
            f"{where}: header must be a JSON object starting at its first byte, found "
            f"{type(doc).__name__} starting with {text[:1]!r}"
        )
    metadata = doc.pop(METADATA_KEY, None)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise CorruptFileError(f"{where}: '__metadata__' must map strings to strings")
    data_start = 8 + header_len
    data_len = file_size - data_start
    entries: dict[str, TensorEntry] = {}
    for name, info in doc.items():
        what = f"{where}: tensor {name!r}"
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise CorruptFileError(
                f"{what}: expected an object with exactly dtype, shape, data_offsets, got {info!r:.200}"
            )
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(dtype, str) or dtype not in ITEMSIZE:
            raise CorruptFileError(f"{what}: unknown dtype {dtype!r}; known: {sorted(ITEMSIZE)}")
        if not isinstance(shape, list) or len(shape) > limits.max_dims or not all(_is_int(s) and s >= 0 for s in shape):
            raise CorruptFileError(f"{what}: shape must be a list of non-negative integers, got {shape!r:.200}")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(_is_int(o) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]
        ):
            raise CorruptFileError(
                f"{what}: data_offsets must be [begin, end] with 0 <= begin <= end, got {offsets!r:.200}"
            )
        begin, end = offsets
        nbytes = math.prod(shape) * ITEMSIZE[dtype]
        if end - begin != nbytes:
            raise CorruptFileError(
                f"{what}: shape {shape} of {dtype} needs {nbytes} bytes but data_offsets span {end - begin}"
            )
        if end > data_len:
            raise TruncatedFileError(
                f"{what}: data ends at byte {end} of the data section, which has only {data_len} bytes; "
                "the file is truncated"
            )
        entries[name] = TensorEntry(name, dtype, tuple(shape), begin, end)
    position = 0
    for entry in sorted(entries.values(), key=lambda e: (e.begin, e.end)):
        if entry.begin != position:
            raise CorruptFileError(
                f"{where}: tensor {entry.name!r} starts at data byte {entry.begin}, expected {position}; "
                "tensor data must be contiguous without gaps or overlaps"
            )
        position = entry.end
    if position != data_len:
        raise CorruptFileError(
            f"{where}: tensors cover {position} bytes but the data section has {data_len}; "
            "the file has trailing bytes or is corrupt"
        )
    return Header(data_start=data_start, file_size=file_size, entries=entries, metadata=metadata)


def read_header(source: FileHandle | Path, where: str, limits: LoadLimits = DEFAULT_LIMITS) -> Header:
    """Read and validate the header of a safetensors file.

    Args:
        source: The open file, or its path.
        where: File name for messages.
        limits: Header limits.

    Returns:
        The validated header.
    """
    handle = source if isinstance(source, FileHandle) else open_file(Path(source), where)
    size = handle.size
    head = handle.read(0, 8)
    if len(head) == 8:
        (n,) = struct.unpack("<Q", head)
        if n <= min(MAX_HEADER_BYTES, limits.max_header_bytes) and 8 + n <= size:
            head += handle.read(8, n)
    if handle is not source:
        handle.close()
    return parse_header_bytes(head, size, where, limits)


def write_safetensors(
    sink: HashingFile,
    tensors: Mapping[str, tuple[str, np.ndarray]],
    metadata: Mapping[str, str] | None,
) -> None:
    """Write a safetensors file.

    Tensors are laid out by decreasing item size then name, so every tensor is
    aligned to its item size; the header is padded with spaces to a multiple of
    8 bytes.

    Args:
        sink: Destination.
        tensors: Name to ``(dtype tag, C-contiguous little-endian array)``.
        metadata: Optional ``__metadata__`` string map.
    """
    order = sorted(tensors, key=lambda n: (-ITEMSIZE[tensors[n][0]], n))
    header: dict[str, Any] = {}
    if metadata:
        header[METADATA_KEY] = dict(metadata)
    position = 0
    for name in order:
        tag, array = tensors[name]
        nbytes = array.nbytes
        header[name] = {"dtype": tag, "shape": list(array.shape), "data_offsets": [position, position + nbytes]}
        position += nbytes
    blob = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    blob += b" " * (-(8 + len(blob)) % 8)
    sink.write(struct.pack("<Q", len(blob)) + blob)
    for name in order:
        array = tensors[name][1]
        if array.nbytes:
            sink.write(array.reshape(-1).view(np.uint8))


class SafetensorsFile:
    """Lazy reader over one validated safetensors file.

    Nothing but the header is read at construction; :meth:`view` memory-maps
    the file on first use and returns read-only zero-copy arrays.
    """

    def __init__(self, source: FileHandle | Path, where: str, limits: LoadLimits = DEFAULT_LIMITS) -> None:
        """Validate the header of the file.

        Args:
            source: The open file (every later read goes through it), or a path to open.
            where: File name for messages.
            limits: Header limits.
        """
        self.handle = source if isinstance(source, FileHandle) else open_file(Path(source), where)
        self.path = self.handle.path
        self.where = where
        self.header = read_header(self.handle, where, limits)
        self.checked_finite: set[str] = set()

    def names(self) -> list[str]:
        """Return tensor names in file order."""
        return [e.name for e in sorted(self.header.entries.values(), key=lambda e: e.begin)]

    def entry(self, name: str) -> TensorEntry:
        """Return the header entry for ``name``.

        Raises:
            SchemaError: If there is no such tensor.
        """
        try:
            return self.header.entries[name]
        except KeyError:
            raise SchemaError(
                f"{self.where}: no tensor named {name!r}; tensors present: {sorted(self.header.entries)}"
            ) from None

    def _numpy_dtype(self, entry: TensorEntry, raw: bool) -> np.dtype[Any]:
        table = RAW_CARRIER if raw else TAG_TO_NUMPY
        if entry.dtype not in table:
            raise SchemaError(
                f"{self.where}: tensor {entry.name!r} has dtype {entry.dtype}, which numpy cannot "
                "represent; read it with hippo_format.torch.load_state_dict instead"
            )
        return table[entry.dtype].newbyteorder("<")

    def _mapped(self) -> mmap.mmap:
        mapped = self.handle.mapped()
        if mapped is None:  # pragma: no cover - a valid file has at least its 8-byte length
            raise TruncatedFileError(f"{self.where}: empty file", field=self.where)
        return mapped

    @property
    def data_bytes(self) -> int:
        """Bytes of tensor data in the file (the header excluded)."""
        return self.header.file_size - self.header.data_start

    def view(self, name: str, raw: bool = False) -> np.ndarray:
        """Return a read-only zero-copy array over the memory-mapped tensor.

        Args:
            name: Tensor name.
            raw: Expose BF16/F8 tensors as their uint16/uint8 bit patterns.

        Returns:
            The tensor.
        """
        entry = self.entry(name)
        dtype = self._numpy_dtype(entry, raw)
        count = math.prod(entry.shape)
        if count == 0:
            return np.empty(entry.shape, dtype=dtype)
        array = np.frombuffer(self._mapped(), dtype=dtype, count=count, offset=self.header.data_start + entry.begin)
        return array.reshape(entry.shape)

    def read(self, name: str, raw: bool = False) -> np.ndarray:
        """Return a freshly allocated, writable copy of the tensor, read with plain ``read`` calls.

        Args:
            name: Tensor name.
            raw: Expose BF16/F8 tensors as their uint16/uint8 bit patterns.

        Returns:
            The tensor.

        Raises:
            TruncatedFileError: If the file got shorter since the header was read.
        """
        entry = self.entry(name)
        dtype = self._numpy_dtype(entry, raw)
        out = np.empty(entry.shape, dtype=dtype)
        if out.nbytes:
            got = self.handle.pread_into(self.header.data_start + entry.begin, out.reshape(-1).view(np.uint8).data)
            if got != out.nbytes:
                raise TruncatedFileError(
                    f"{self.where}: tensor {name!r} needs {out.nbytes} bytes, the file ended after {got}"
                )
        return out

    def close(self) -> None:
        """Close the file (arrays handed out keep their memory map alive until they are freed)."""
        self.handle.close()
