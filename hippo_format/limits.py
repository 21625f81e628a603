"""Resource limits for reading memories from untrusted sources (SPEC.md section 12).

A memory is data from whoever wrote it. Every size a reader would allocate on a
manifest's or a header's word is checked first, against what the files actually
hold and against the limits below, so that a crafted memory costs at most a small
multiple of its own size in memory and time:

* sizes that describe file content (rows x row bytes of an Arrow column,
  safetensors data offsets) must fit in the file (compressed tables: in
  ``max_compression_ratio`` times the file);
* sizes that a producer section asks for (a capacity, a number of slots, the
  widths of an encoder) are charged to the reader's :class:`AllocationBudget`,
  ``max(allocation_floor_bytes, allocation_factor x total file bytes)``, or to the
  bytes of the file that backs them (``backed_by``);
* structure is bounded too: manifest bytes, JSON nesting depth, number of files,
  columns, dimensions, space elements.

The defaults accept every memory hippogym writes with ordinary settings. To open
a larger memory from a trusted source, pass your own limits::

    from hippo_format import LoadLimits, open_memory
    reader = open_memory(path, limits=LoadLimits(allocation_floor_bytes=8 << 30))

Anything over a limit raises :class:`~hippo_format.errors.LimitExceededError`
naming the field, before the allocation.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from hippo_format.errors import LimitExceededError, SchemaError

__all__ = [
    "DEFAULT_LIMITS",
    "AllocationBudget",
    "LoadLimits",
    "check_json_depth",
    "json_depth",
    "numpy_dtype_from_name",
    "shape_nbytes",
]

_MiB = 1024 * 1024


@dataclass(frozen=True)
class LoadLimits:
    """Bounds a reader applies before it allocates anything on a memory's word.

    Attributes:
        max_manifest_bytes: Largest ``manifest.json`` accepted.
        max_json_depth: Deepest nesting of arrays/objects in the manifest, in a
            safetensors header and in a space description.
        max_files: Most entries in the manifest's ``files``.
        max_columns: Most columns in one Arrow table.
        max_dims: Most dimensions of a column row, a tensor or a space shape.
        max_row_bytes: Largest single row of a column (e.g. one image).
        max_header_bytes: Largest safetensors header.
        max_compression_ratio: Most decoded bytes per file byte of a compressed
            Arrow table (beyond ``allocation_floor_bytes``).
        max_space_elements: Most elements in one gymnasium space (``Box`` bounds,
            ``MultiBinary`` shape).
        allocation_floor_bytes: Allocations for producer sections that any memory
            may ask for, however small its files (a fresh buffer with a large
            capacity and few rows).
        allocation_factor: Beyond the floor, allocations may reach this multiple
            of the memory's total file bytes (or of the backing file's bytes).
    """

    max_manifest_bytes: int = 64 * _MiB
    max_json_depth: int = 64
    max_files: int = 10_000
    max_columns: int = 10_000
    max_dims: int = 32
    max_row_bytes: int = 256 * _MiB
    max_header_bytes: int = 100 * _MiB
    max_compression_ratio: float = 64.0
    max_space_elements: int = 1 << 20
    allocation_floor_bytes: int = 256 * _MiB
    allocation_factor: float = 8.0

    def __post_init__(self) -> None:
        """Check that every limit is a positive number."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"LoadLimits.{f.name}: expected a positive number, got {value!r}")

    def allowance(self, backing_bytes: int) -> int:
        """Return the most bytes that may be allocated on the word of ``backing_bytes`` bytes of files."""
        return max(int(self.allocation_floor_bytes), int(self.allocation_factor * max(0, backing_bytes)))


#: The limits used when none are given.
DEFAULT_LIMITS = LoadLimits()


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def shape_nbytes(shape: Iterable[Any], itemsize: int, field: str, limits: LoadLimits = DEFAULT_LIMITS) -> int:
    """Return the bytes an array of ``shape`` would take, checking the shape first.

    Args:
        shape: The dimensions (non-negative integers).
        itemsize: Bytes per element.
        field: Where the shape came from, for messages.
        limits: For ``max_dims``.

    Returns:
        ``prod(shape) * itemsize`` (exact, Python integers never overflow).

    Raises:
        SchemaError: If the shape is not a list of non-negative integers.
        LimitExceededError: If it has more than ``limits.max_dims`` dimensions.
    """
    if isinstance(shape, (str, bytes)) or not isinstance(shape, Iterable):
        raise SchemaError(f"{field}: expected a shape (list of non-negative integers), got {shape!r:.80}", field=field)
    dims = list(shape)
    if len(dims) > limits.max_dims:
        raise LimitExceededError(
            f"{field}: shape has {len(dims)} dimensions, more than the limit of {limits.max_dims}", field=field
        )
    if not all(_is_int(d) and int(d) >= 0 for d in dims):
        raise SchemaError(f"{field}: expected a shape of non-negative integers, got {dims!r:.120}", field=field)
    return math.prod(int(d) for d in dims) * int(itemsize)


class AllocationBudget:
    """What a reader may still allocate on the word of a memory's producer sections.

    One budget belongs to one opened memory (``MemoryReader.budget``); charges add up,
    so a manifest cannot get around it by spreading its demands over several fields.
    """

    def __init__(self, total_file_bytes: int, limits: LoadLimits = DEFAULT_LIMITS) -> None:
        """Start a budget for a memory whose files hold ``total_file_bytes`` bytes."""
        self.limits = limits
        self.total_file_bytes = int(total_file_bytes)
        self.allowance = limits.allowance(self.total_file_bytes)
        self.used = 0

    @property
    def remaining(self) -> int:
        """Bytes still available."""
        return max(0, self.allowance - self.used)

    def charge(self, field: str, nbytes: int, *, backing_bytes: int | None = None) -> None:
        """Account for an allocation of ``nbytes`` that ``field`` asks for, or refuse it.

        Args:
            field: The manifest field (``"store.config.capacity"``), for the message.
            nbytes: Bytes about to be allocated.
            backing_bytes: If the allocation mirrors data that a file holds (encoder
                weights in ``encoder.safetensors``), that file's bytes: the allocation
                is then bounded by ``limits.allowance(backing_bytes)`` instead of being
                charged to the shared budget.

        Raises:
            LimitExceededError: If the allocation is over the bound.
            SchemaError: If ``nbytes`` is not a non-negative integer.
        """
        if not _is_int(nbytes) or int(nbytes) < 0:
            raise SchemaError(
                f"{field}: allocation size must be a non-negative integer, got {nbytes!r:.80}", field=field
            )
        nbytes = int(nbytes)
        if backing_bytes is not None:
            bound = self.limits.allowance(backing_bytes)
            if nbytes > bound:
                raise LimitExceededError(
                    f"{field}: asks for {nbytes:,} bytes, but the file that backs it holds {backing_bytes:,} bytes "
                    f"(limit {bound:,} bytes = max(allocation_floor_bytes, allocation_factor x file bytes)); the "
                    "manifest does not match its files — if you trust this memory, open it with larger LoadLimits",
                    field=field,
                )
            return
        if self.used + nbytes > self.allowance:
            raise LimitExceededError(
                f"{field}: asks for {nbytes:,} bytes; with {self.used:,} already granted that exceeds this memory's "
                f"allocation budget of {self.allowance:,} bytes (max(allocation_floor_bytes, allocation_factor x "
                f"{self.total_file_bytes:,} file bytes)); if you trust this memory, open it with larger LoadLimits",
                field=field,
            )
        self.used += nbytes

    def charge_array(self, field: str, shape: Iterable[Any], itemsize: int) -> int:
        """Charge an array of ``shape`` and ``itemsize`` (see :meth:`charge`); return its bytes."""
        nbytes = shape_nbytes(shape, itemsize, field, self.limits)
        self.charge(field, nbytes)
        return nbytes


def json_depth(raw: bytes, *, stop_above: int | None = None) -> int:
    """Return the deepest nesting of ``[``/``{`` in JSON text, without parsing it.

    Exact for valid JSON; for invalid JSON the value is meaningless but the
    parser rejects the text anyway. Cost: a few passes over the bytes.

    Args:
        raw: UTF-8 JSON text.
        stop_above: Return early once the depth exceeds this.

    Returns:
        The maximum depth (0 for a scalar document).
    """
    # Escapes only occur inside strings. Drop escaped backslashes, then escaped quotes; what
    # is left between unescaped quotes are the strings, every other byte is structure.
    text = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    table = np.zeros(256, dtype=np.int8)
    table[ord("[")] = table[ord("{")] = 1
    table[ord("]")] = table[ord("}")] = -1
    codes = np.frombuffer(text, dtype=np.uint8)
    depth = 0
    deepest = 0
    quotes_before = 0
    step = 1 << 22
    for lo in range(0, len(codes), step):
        chunk = codes[lo : lo + step]
        quote = chunk == 34
        inside = ((np.cumsum(quote, dtype=np.int32) + quotes_before) & 1).astype(bool)
        quotes_before = (quotes_before + int(quote.sum())) & 1
        delta = np.where(inside, 0, table[chunk])
        running = np.cumsum(delta, dtype=np.int64)
        deepest = max(deepest, depth + int(running.max()))
        depth += int(running[-1])
        if stop_above is not None and deepest > stop_above:
            break
    return deepest


def check_json_depth(raw: bytes, where: str, limits: LoadLimits = DEFAULT_LIMITS) -> None:
    """Refuse JSON nested deeper than ``limits.max_json_depth`` before it is parsed.

    Args:
        raw: The JSON text.
        where: File (and field) name for the message.
        limits: For ``max_json_depth``.

    Raises:
        LimitExceededError: If it is nested too deep.
    """
    depth = json_depth(raw, stop_above=limits.max_json_depth)
    if depth > limits.max_json_depth:
        raise LimitExceededError(
            f"{where}: JSON nested more than {limits.max_json_depth} levels deep (found > {limits.max_json_depth}); "
            "a memory's metadata is never that deep — the file is crafted or corrupt",
            field=where,
        )


_NUMPY_NAMES = (
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
)
#: Accepted spellings -> numpy dtype name (plain, ``np.``/``numpy.``, ``torch.`` and torch aliases).
_DTYPE_ALIASES: dict[str, str] = {name: name for name in _NUMPY_NAMES}
_DTYPE_ALIASES.update(
    {
        "bool_": "bool",
        "half": "float16",
        "float": "float32",
        "double": "float64",
        "short": "int16",
        "int": "int32",
        "long": "int64",
    }
)


def numpy_dtype_from_name(name: object, field: str) -> np.dtype[Any]:
    """Turn a dtype name from a manifest into a numpy dtype, from an allow-list only.

    Accepts ``"float32"``, ``"np.float32"``, ``"numpy.float32"``, ``"torch.float32"`` and
    the torch aliases (``"float"``, ``"double"``, ``"half"``, ``"long"``, ``"int"``,
    ``"short"``) of the twelve numeric dtypes the format stores. Never looks a name
    up as an attribute of a module.

    Raises:
        SchemaError: For anything else, naming ``field``.
    """
    if isinstance(name, str):
        bare = name
        for prefix in ("torch.", "numpy.", "np."):
            if bare.startswith(prefix):
                bare = bare[len(prefix) :]
                break
        canonical = _DTYPE_ALIASES.get(bare)
        if canonical is not None:
            return np.dtype(canonical)
    raise SchemaError(
        f"{field}: expected a dtype name from {list(_NUMPY_NAMES)} (optionally prefixed 'torch.' or 'np.'), "
        f"got {name!r:.80}",
        field=field,
    )
