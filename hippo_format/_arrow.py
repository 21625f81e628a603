"""Arrow IPC file writing and zero-copy reading for the transition and episode tables."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hippo_format._files import FileHandle, open_file
from hippo_format._io import HashingFile
from hippo_format._ipc import scan_ipc_file
from hippo_format._schema import (
    ALLOWED_COLUMN_DTYPES,
    ColumnInfo,
    arrow_type_for,
    check_column_name,
    column_info_from_arrow,
)
from hippo_format.errors import (
    CorruptFileError,
    FormatError,
    InconsistentCountsError,
    LimitExceededError,
    SchemaError,
    TruncatedFileError,
)
from hippo_format.limits import DEFAULT_LIMITS, LoadLimits

if TYPE_CHECKING:
    import pyarrow as pa


@contextlib.contextmanager
def arrow_errors(where: str) -> Iterator[None]:
    """Turn any exception escaping pyarrow into a :class:`CorruptFileError` naming the file.

    pyarrow documents no closed set of exception types for malformed input
    (``ArrowInvalid``, ``ArrowIOError``, ``ArrowNotImplementedError``,
    ``ArrowTypeError``, ``ArrowMemoryError``, ``OSError``, ``IndexError`` ...),
    so this boundary converts all of them; our own :class:`FormatError` passes through.

    Args:
        where: File name for messages.
    """
    try:
        yield
    except FormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - boundary to a native library, see docstring
        raise CorruptFileError(
            f"{where}: cannot read it as an Arrow IPC file ({type(exc).__name__}: {exc}); "
            "the file is corrupt or not in Arrow IPC file format — restore it or re-save the memory"
        ) from exc


def normalize_columns(
    arrays: Mapping[str, Any], where: str
) -> tuple[dict[str, np.ndarray], dict[str, ColumnInfo], int]:
    """Check column arrays from the caller and make them C-contiguous little-endian.

    Args:
        arrays: Column name to array of shape ``[rows, *item_shape]``.
        where: Argument name for messages (``transitions`` / ``episodes``).

    Returns:
        ``(arrays, infos, rows)``.

    Raises:
        SchemaError: For a bad name, dtype or shape.
        InconsistentCountsError: If columns have different row counts.
    """
    if not isinstance(arrays, Mapping):
        raise SchemaError(f"{where}: expected a dict of column name -> numpy array, got {type(arrays).__name__}")
    out: dict[str, np.ndarray] = {}
    infos: dict[str, ColumnInfo] = {}
    rows: int | None = None
    first = ""
    for name, value in arrays.items():
        check_column_name(name, f"{where}: column name")
        label = f"{where}[{name!r}]"
        if not isinstance(value, np.ndarray):
            raise SchemaError(f"{label}: expected a numpy.ndarray, got {type(value).__name__}; wrap it with np.asarray")
        dtype = value.dtype
        if dtype.newbyteorder("=") not in ALLOWED_COLUMN_DTYPES:
            raise SchemaError(
                f"{label}: dtype {dtype} is not supported; expected one of {[d.name for d in ALLOWED_COLUMN_DTYPES]}"
            )
        if value.ndim < 1:
            raise SchemaError(f"{label}: expected an array of shape [rows, ...], got a 0-d array")
        if any(s < 1 for s in value.shape[1:]):
            raise SchemaError(
                f"{label}: per-row shape {list(value.shape[1:])} has a zero dimension; "
                "every item dimension must be >= 1"
            )
        if rows is None:
            rows, first = value.shape[0], name
        elif value.shape[0] != rows:
            raise InconsistentCountsError(
                f"{where}: column {name!r} has {value.shape[0]} rows but column {first!r} has {rows}; "
                "all columns of a table must have the same number of rows"
            )
        little = dtype.newbyteorder("<") if dtype.byteorder != "|" else dtype
        value = np.ascontiguousarray(value, dtype=little)
        out[name] = value
        infos[name] = ColumnInfo(np.dtype(dtype.newbyteorder("=")), tuple(int(s) for s in value.shape[1:]))
    return out, infos, rows or 0


def _to_arrow(array: np.ndarray, info: ColumnInfo) -> pa.Array:
    import pyarrow as pa

    value_type = pa.from_numpy_dtype(info.dtype)
    flat = array.reshape(-1)
    if info.dtype == np.bool_:
        child = pa.array(flat, type=pa.bool_())
    else:
        child = pa.Array.from_buffers(value_type, len(flat), [None, pa.py_buffer(flat)])
    if not info.shape:
        return child
    storage = pa.FixedSizeListArray.from_arrays(child, math.prod(info.shape))
    if len(info.shape) == 1:
        return storage
    return pa.ExtensionArray.from_storage(arrow_type_for(info), storage)


def write_table(
    sink: HashingFile,
    arrays: Mapping[str, np.ndarray],
    infos: Mapping[str, ColumnInfo],
    rows: int,
    *,
    compression: str | None,
    batch_rows: int | None,
) -> None:
    """Write columns as an Arrow IPC file.

    Args:
        sink: Destination.
        arrays: Normalized column arrays.
        infos: Their :class:`ColumnInfo`.
        rows: Number of rows.
        compression: ``None``, ``"zstd"`` or ``"lz4"``.
        batch_rows: Rows per record batch; ``None`` writes one batch.
    """
    import pyarrow as pa

    schema = pa.schema([pa.field(name, arrow_type_for(infos[name]), nullable=False) for name in arrays])
    options = pa.ipc.IpcWriteOptions(compression=compression, allow_64bit=True, use_threads=True)
    step = rows if not batch_rows else batch_rows
    with pa.ipc.new_file(pa.PythonFile(sink, mode="w"), schema, options=options) as writer:
        for lo in range(0, rows, max(step, 1)):
            hi = min(rows, lo + step)
            columns = [_to_arrow(arrays[name][lo:hi], infos[name]) for name in arrays]
            writer.write_batch(pa.record_batch(columns, schema=schema))


def _aligned_empty(size: int, alignment: int = 64) -> np.ndarray:
    """Return an uninitialized byte array whose data starts on an ``alignment`` boundary.

    Arrow copies buffers it finds misaligned, which would defeat decoding in place.
    """
    block = np.empty(size + alignment, dtype=np.uint8)
    skip = -block.ctypes.data % alignment
    return block[skip : skip + size]


class _Base:
    """A byte region (memory map or RAM copy) that Arrow buffers may point into."""

    def __init__(self, array: np.ndarray, address: int) -> None:
        self.array = array
        self.address = address

    def view(self, buffer: pa.Buffer, offset: int, nbytes: int) -> np.ndarray | None:
        start = buffer.address - self.address + offset
        if start < 0 or start + nbytes > len(self.array):
            return None
        return self.array[start : start + nbytes]


def _bytes_of(buffer: pa.Buffer | None, offset: int, nbytes: int, base: _Base | None, where: str) -> np.ndarray:
    if buffer is None or offset < 0 or offset + nbytes > buffer.size:
        raise CorruptFileError(
            f"{where}: Arrow buffer too small (need {nbytes} bytes at offset {offset}, "
            f"have {None if buffer is None else buffer.size}); the file is corrupt"
        )
    if base is not None:
        region = base.view(buffer, offset, nbytes)
        if region is not None:
            return region
    return np.frombuffer(buffer, dtype=np.uint8, count=nbytes, offset=offset)


def _primitive_to_numpy(array: pa.Array, dtype: np.dtype[Any], base: _Base | None, where: str) -> np.ndarray:
    n = len(array)
    if array.null_count:
        raise SchemaError(f"{where}: holds {array.null_count} null values; the format allows no nulls")
    if n == 0:
        return np.empty(0, dtype=dtype)
    data = array.buffers()[1]
    if dtype == np.bool_:
        first = array.offset
        nbytes = (first + n + 7) // 8
        bits = _bytes_of(data, 0, nbytes, base, where)
        return np.unpackbits(bits, count=first + n, bitorder="little")[first:].view(np.bool_)
    size = dtype.itemsize
    raw = _bytes_of(data, array.offset * size, n * size, base, where)
    return raw.view(dtype.newbyteorder("<"))


def chunk_to_numpy(array: pa.Array, info: ColumnInfo, base: _Base | None, where: str) -> np.ndarray:
    """Convert one validated Arrow chunk to numpy, as a view into ``base`` when possible.

    Args:
        array: The chunk (primitive, fixed-size list or fixed-shape tensor).
        info: Expected dtype and per-row shape.
        base: Byte region that uncompressed buffers point into, or ``None``.
        where: ``file:column`` for messages.

    Returns:
        Array of shape ``[len(array), *info.shape]``.
    """
    import pyarrow as pa

    n = len(array)
    if isinstance(array, pa.ExtensionArray):
        array = array.storage
    if array.null_count:
        raise SchemaError(f"{where}: holds {array.null_count} null rows; the format allows no nulls")
    if not info.shape:
        return _primitive_to_numpy(array, info.dtype, base, where)
    child = array.flatten()
    flat = _primitive_to_numpy(child, info.dtype, base, where)
    if flat.shape[0] != n * math.prod(info.shape):
        raise CorruptFileError(f"{where}: {n} rows of {list(info.shape)} but {flat.shape[0]} values")
    return flat.reshape((n, *info.shape))


class ArrowTable:
    """An opened Arrow IPC file: metadata bounds-checked, schema checked, rows counted, data untouched.

    Args:
        source: The open file (a :class:`~hippo_format._files.FileHandle`; a path is
            opened here, for standalone use).
        where: Name for messages.
        in_memory: Read the whole file into RAM (one ``pread``) instead of mapping it.
        compressed: Whether the manifest declares compressed buffers. Uncompressed
            files are decoded zero-copy from whole record batches and must not hold
            compressed batches; compressed ones decompress only the requested column
            (Arrow copies on field selection, so it is not used for uncompressed files).
        limits: Bounds on columns, row sizes and decoded bytes (checked before decoding).
    """

    def __init__(
        self,
        source: FileHandle | Path,
        where: str,
        *,
        in_memory: bool = False,
        compressed: bool = False,
        limits: LoadLimits = DEFAULT_LIMITS,
    ) -> None:
        import pyarrow as pa

        handle = source if isinstance(source, FileHandle) else open_file(Path(source), where)
        self.handle = handle
        self.path = handle.path
        self.where = where
        self.compressed = compressed
        self.limits = limits
        size = handle.size
        if in_memory:
            raw = _aligned_empty(size)
            if size and handle.pread_into(0, raw.data) != size:
                raise TruncatedFileError(f"{where}: file got shorter while being read", field=where)
            buffer = pa.py_buffer(raw) if size else pa.py_buffer(b"")
        else:
            region = handle.mapped()
            buffer = pa.py_buffer(region) if region is not None else pa.py_buffer(b"")
            raw = np.frombuffer(buffer, dtype=np.uint8)  # zero-copy view of the map
        view = memoryview(raw).cast("B") if size else memoryview(b"")
        self.layout = scan_ipc_file(view, where)
        self._check_layout(size)
        with arrow_errors(where):
            self._source: Any = buffer
            self._base: _Base | None = _Base(raw, buffer.address) if size else None
            reader = pa.ipc.open_file(pa.BufferReader(buffer))
            self.schema = reader.schema
            if len(self.schema) > limits.max_columns:
                raise LimitExceededError(
                    f"{where}: {len(self.schema)} columns, more than the limit of {limits.max_columns}", field=where
                )
            self.num_batches = reader.num_record_batches
            self.num_rows = int(reader.count_rows())
            if self.num_batches != len(self.layout.batch_rows) or self.num_rows != self.layout.rows:
                raise CorruptFileError(
                    f"{where}: pyarrow sees {self.num_batches} batches / {self.num_rows} rows, the footer declares "
                    f"{len(self.layout.batch_rows)} / {self.layout.rows}; the file is corrupt",
                    field=where,
                )
            # Field names and types are decoded lazily by pyarrow and may still fail here.
            self.infos: dict[str, ColumnInfo] = {}
            for field in self.schema:
                check_column_name(field.name, f"{where}: column name")
                label = f"{where}: column {field.name!r}"
                if field.name in self.infos:
                    raise SchemaError(f"{where}: column {field.name!r} appears twice in the schema", field=label)
                self.infos[field.name] = column_info_from_arrow(field.type, label)
            self._names = list(self.schema.names)
        self._check_sizes()
        self._index = {name: i for i, name in enumerate(self._names)}

    def _check_layout(self, size: int) -> None:
        layout = self.layout
        if layout.dictionaries:
            raise CorruptFileError(
                f"{self.where}: holds {layout.dictionaries} dictionary batches; the format has no dictionary columns",
                field=self.where,
            )
        if layout.compressed and not self.compressed:
            raise CorruptFileError(
                f"{self.where}: holds compressed record batches but the manifest declares compression null (A2); "
                "the file does not match its manifest",
                field=self.where,
            )
        bound = max(self.limits.allocation_floor_bytes, int(self.limits.max_compression_ratio * size))
        if layout.compressed and layout.decoded_bytes > bound:
            raise LimitExceededError(
                f"{self.where}: compressed buffers declare {layout.decoded_bytes:,} decoded bytes from a {size:,}-byte "
                f"file, more than the limit of {bound:,} (max(allocation_floor_bytes, max_compression_ratio x file "
                "bytes)); open it with larger LoadLimits if you trust it",
                field=self.where,
            )

    def _check_sizes(self) -> None:
        """Check that every column's declared rows fit in what the buffers hold, before decoding any."""
        decoded = 0
        for name, info in self.infos.items():
            row = info.dtype.itemsize * math.prod(info.shape)
            if len(info.shape) > self.limits.max_dims or row > self.limits.max_row_bytes:
                raise LimitExceededError(
                    f"{self.where}: column {name!r} rows are {info.describe()} ({row:,} bytes), over the limits "
                    f"({self.limits.max_dims} dimensions, {self.limits.max_row_bytes:,} bytes per row)",
                    field=f"{self.where}:{name}",
                )
            stored = (
                math.ceil(self.num_rows * math.prod(info.shape) / 8) if info.dtype == np.bool_ else self.num_rows * row
            )
            decoded += stored
        if decoded > self.layout.decoded_bytes:
            raise TruncatedFileError(
                f"{self.where}: {self.num_rows} rows of the declared columns need {decoded:,} bytes, but the file's "
                f"buffers hold {self.layout.decoded_bytes:,}; the file is truncated or its schema was altered",
                field=self.where,
            )

    @property
    def column_names(self) -> list[str]:
        """Column names in file order."""
        return list(self._names)

    def _reader(self, fields: list[int] | None = None) -> pa.ipc.RecordBatchFileReader:
        import pyarrow as pa

        options = pa.ipc.IpcReadOptions(included_fields=fields) if fields is not None else None
        return pa.ipc.open_file(pa.BufferReader(self._source), options=options)

    def column(self, name: str) -> np.ndarray:
        """Decode one column, zero-copy when the file holds it in a single uncompressed batch.

        Args:
            name: Column name.

        Returns:
            Array ``[num_rows, *shape]``; read-only when it views a memory map.

        Raises:
            SchemaError: If the column does not exist.
        """
        if name not in self._index:
            raise SchemaError(f"{self.where}: no column named {name!r}; columns present: {self.column_names}")
        info = self.infos[name]
        label = f"{self.where}: column {name!r}"
        index = self._index[name]
        with arrow_errors(self.where):
            reader = self._reader([index] if self.compressed else None)
            position = 0 if self.compressed else index
            chunks = []
            for i in range(reader.num_record_batches):
                batch = reader.get_batch(i)
                if position >= batch.num_columns:
                    raise CorruptFileError(f"{label}: record batch {i} has only {batch.num_columns} columns")
                array = batch.column(position)
                array.validate(full=True)
                if len(array) != batch.num_rows:
                    raise CorruptFileError(
                        f"{label}: record batch {i} column has {len(array)} rows, batch has {batch.num_rows}"
                    )
                chunks.append(chunk_to_numpy(array, info, self._base, label))
        total = sum(len(c) for c in chunks)
        if total != self.num_rows:
            raise InconsistentCountsError(f"{label}: decoded {total} rows, the file footer counts {self.num_rows}")
        if not chunks:
            return np.empty((0, *info.shape), dtype=info.dtype)
        if len(chunks) == 1:
            return chunks[0]
        return np.concatenate(chunks)

    def columns(self) -> dict[str, np.ndarray]:
        """Decode every column (see :meth:`column`).

        Returns:
            Column name to array, in file order.
        """
        return {name: self.column(name) for name in self.column_names}

    def table(self) -> pa.Table:
        """Return the whole file as a pyarrow Table (zero-copy over the memory map when uncompressed)."""
        with arrow_errors(self.where):
            reader = self._reader()
            table = reader.read_all()
            table.validate(full=True)
        return table
