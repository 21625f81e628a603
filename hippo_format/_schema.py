"""Constants and checks shared by the writer, the reader and the conformance checker."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hippo_format.errors import (
    InconsistentCountsError,
    NonFiniteValueError,
    SchemaError,
)

if TYPE_CHECKING:
    import pyarrow as pa

FORMAT_NAME = "hippo-memory"
FORMAT_VERSION = 1

MANIFEST_FILE = "manifest.json"
TRANSITIONS_FILE = "transitions.arrow"
EPISODES_FILE = "episodes.arrow"
SAFETENSORS_SUFFIX = ".safetensors"
ARROW_FILES = (TRANSITIONS_FILE, EPISODES_FILE)

#: Codecs accepted for the Arrow files.
COMPRESSIONS = ("zstd", "lz4")

#: Rows per record batch when none is asked for and the file is compressed.
DEFAULT_COMPRESSED_BATCH_ROWS = 65_536

#: Largest manifest accepted, in bytes (it holds metadata, never data).
MAX_MANIFEST_BYTES = 64 * 1024 * 1024

#: Fixed (dtype, item shape) of the required transition columns.
REQUIRED_TRANSITION_COLUMNS: dict[str, np.dtype[Any]] = {
    "episode_id": np.dtype(np.int64),
    "step": np.dtype(np.int32),
    "reward": np.dtype(np.float32),
    "terminated": np.dtype(np.bool_),
    "truncated": np.dtype(np.bool_),
}

#: Fixed dtypes of the required per-episode columns (all scalar per row).
REQUIRED_EPISODE_COLUMNS: dict[str, np.dtype[Any]] = {
    "episode_id": np.dtype(np.int64),
    "start": np.dtype(np.int64),
    "length": np.dtype(np.int64),
    "return": np.dtype(np.float64),
    "success": np.dtype(np.int8),
}

#: Numpy dtypes a column may have (little-endian on disk).
ALLOWED_COLUMN_DTYPES = tuple(
    np.dtype(t)
    for t in (
        np.bool_,
        np.int8,
        np.int16,
        np.int32,
        np.int64,
        np.uint8,
        np.uint16,
        np.uint32,
        np.uint64,
        np.float16,
        np.float32,
        np.float64,
    )
)

_TENSOR_EXTENSION = "arrow.fixed_shape_tensor"
_STEM_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
_HEX64_RE = re.compile(r"[0-9a-f]{64}\Z")
_HEX32_RE = re.compile(r"[0-9a-f]{32}\Z")


def is_obs_column(name: str) -> bool:
    """Return True for ``obs`` and ``obs.<key>`` column names."""
    return name == "obs" or name.startswith("obs.")


def is_next_obs_column(name: str) -> bool:
    """Return True for ``next_obs`` and ``next_obs.<key>`` column names."""
    return name == "next_obs" or name.startswith("next_obs.")


def is_sha256_hex(value: object) -> bool:
    """Return True when ``value`` is 64 lowercase hexadecimal characters."""
    return isinstance(value, str) and _HEX64_RE.match(value) is not None


def is_xxh3_128_hex(value: object) -> bool:
    """Return True when ``value`` is 32 lowercase hexadecimal characters (an XXH3-128 digest)."""
    return isinstance(value, str) and _HEX32_RE.match(value) is not None


def check_stem(stem: object, what: str) -> str:
    """Validate a safetensors file stem (``keys`` for ``keys.safetensors``).

    Args:
        stem: The candidate stem.
        what: Where it came from, for the error message.

    Returns:
        The stem.

    Raises:
        SchemaError: If the stem is not 1-128 characters of ``[A-Za-z0-9_.-]``
            starting with a letter, digit or underscore.
    """
    if not isinstance(stem, str) or not _STEM_RE.match(stem):
        raise SchemaError(
            f"{what}: expected a file stem of 1-128 characters from [A-Za-z0-9_.-] "
            f"not starting with '.' or '-', got {stem!r}; rename it"
        )
    return stem


def check_column_name(name: object, what: str) -> str:
    """Validate a column or tensor name: a non-empty string without control characters.

    Args:
        name: The candidate name.
        what: Where it came from, for the error message.

    Returns:
        The name.

    Raises:
        SchemaError: If the name is not acceptable.
    """
    if not isinstance(name, str) or not name or len(name) > 1024 or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise SchemaError(
            f"{what}: expected a non-empty name (at most 1024 characters, no control characters), got {name!r}"
        )
    return name


@dataclass(frozen=True)
class ColumnInfo:
    """The numpy view of one Arrow column: element dtype and per-row shape."""

    dtype: np.dtype[Any]
    shape: tuple[int, ...]

    def describe(self) -> str:
        """Return ``dtype[shape]`` for messages."""
        return f"{self.dtype.name}{list(self.shape)}"


def arrow_type_for(info: ColumnInfo) -> pa.DataType:
    """Return the Arrow type the format prescribes for a column.

    Args:
        info: Element dtype and per-row shape.

    Returns:
        A primitive type for scalar rows, ``fixed_size_list`` for 1-D rows, and
        the canonical ``arrow.fixed_shape_tensor`` extension for rows of 2 or
        more dimensions.
    """
    import pyarrow as pa

    value_type = pa.from_numpy_dtype(info.dtype)
    if not info.shape:
        return value_type
    if len(info.shape) == 1:
        return pa.list_(value_type, info.shape[0])
    return pa.fixed_shape_tensor(value_type, list(info.shape))


def _primitive_dtype(arrow_type: pa.DataType) -> np.dtype[Any] | None:
    import pyarrow as pa
    import pyarrow.types as pat

    if not (pat.is_boolean(arrow_type) or pat.is_integer(arrow_type) or pat.is_floating(arrow_type)):
        return None
    try:
        dtype = np.dtype(arrow_type.to_pandas_dtype())
    except (NotImplementedError, TypeError, pa.ArrowException):  # pragma: no cover - defensive
        return None
    return dtype if dtype in ALLOWED_COLUMN_DTYPES else None


def column_info_from_arrow(arrow_type: pa.DataType, where: str) -> ColumnInfo:
    """Map an Arrow column type back to (dtype, per-row shape), refusing anything the format forbids.

    Args:
        arrow_type: The field's type as read from the file.
        where: ``file:column`` for messages.

    Returns:
        The column's :class:`ColumnInfo`.

    Raises:
        SchemaError: If the type is not a primitive number/bool, a fixed-size list
            of one, or a fixed-shape tensor of one.
    """
    import pyarrow as pa

    expected = "a bool/int/uint/float primitive, a fixed_size_list of one, or an arrow.fixed_shape_tensor of one"
    dtype = _primitive_dtype(arrow_type)
    if dtype is not None:
        return ColumnInfo(dtype, ())
    if isinstance(arrow_type, pa.FixedSizeListType):
        child = _primitive_dtype(arrow_type.value_type)
        if child is None or arrow_type.list_size < 1:
            raise SchemaError(f"{where}: expected {expected}, found type {arrow_type}")
        return ColumnInfo(child, (int(arrow_type.list_size),))
    if isinstance(arrow_type, pa.BaseExtensionType) and arrow_type.extension_name == _TENSOR_EXTENSION:
        child = _primitive_dtype(arrow_type.value_type)
        shape = tuple(int(s) for s in arrow_type.shape)
        perm = arrow_type.permutation
        storage = arrow_type.storage_type
        if (
            child is None
            or len(shape) < 2
            or any(s < 1 for s in shape)
            or (perm is not None and list(perm) != list(range(len(shape))))
            or not isinstance(storage, pa.FixedSizeListType)
            or storage.list_size != math.prod(shape)
        ):
            raise SchemaError(
                f"{where}: expected a fixed_shape_tensor of a numeric type with 2+ positive "
                f"dimensions and no permutation, found {arrow_type}"
            )
        return ColumnInfo(child, shape)
    raise SchemaError(f"{where}: expected {expected}, found type {arrow_type}")


def check_required_columns(
    infos: dict[str, ColumnInfo],
    required: dict[str, np.dtype[Any]],
    where: str,
) -> None:
    """Check that every required column exists with its fixed dtype and scalar rows.

    Args:
        infos: Column name to :class:`ColumnInfo` for the table.
        required: Column name to required dtype.
        where: The table's file name, for messages.

    Raises:
        SchemaError: Naming the first missing or mistyped column.
    """
    for name, dtype in required.items():
        if name not in infos:
            raise SchemaError(
                f"{where}: required column {name!r} ({dtype.name}, one value per row) is missing; "
                f"columns present: {sorted(infos)}"
            )
        info = infos[name]
        if info.dtype != dtype or info.shape != ():
            raise SchemaError(
                f"{where}: column {name!r} must be {dtype.name} with one value per row, "
                f"found {info.describe()}; convert it with .astype(np.{dtype.name})"
            )


def check_transition_columns(infos: dict[str, ColumnInfo], where: str) -> None:
    """Check the transition-table column rules (required columns, obs/next_obs pairing).

    Args:
        infos: Column name to :class:`ColumnInfo`.
        where: File name or argument name for messages.

    Raises:
        SchemaError: If a required column is missing or mistyped, if there is no
            ``action`` column or no ``obs``/``next_obs`` column, or if the
            ``obs*`` and ``next_obs*`` columns do not pair up with equal dtype and shape.
    """
    check_required_columns(infos, REQUIRED_TRANSITION_COLUMNS, where)
    if "action" not in infos:
        raise SchemaError(f"{where}: required column 'action' is missing; columns present: {sorted(infos)}")
    obs = {name[len("obs") :]: info for name, info in infos.items() if is_obs_column(name)}
    nxt = {name[len("next_obs") :]: info for name, info in infos.items() if is_next_obs_column(name)}
    if not obs or not nxt:
        raise SchemaError(
            f"{where}: expected at least one 'obs' or 'obs.<key>' column and one 'next_obs' or "
            f"'next_obs.<key>' column, found obs={sorted('obs' + k for k in obs)} "
            f"next_obs={sorted('next_obs' + k for k in nxt)}"
        )
    if set(obs) != set(nxt):
        raise SchemaError(
            f"{where}: obs and next_obs columns must pair up key by key, found "
            f"obs={sorted('obs' + k for k in obs)} next_obs={sorted('next_obs' + k for k in nxt)}"
        )
    for key, info in obs.items():
        if nxt[key] != info:
            raise SchemaError(
                f"{where}: 'obs{key}' is {info.describe()} but 'next_obs{key}' is "
                f"{nxt[key].describe()}; they must have the same dtype and shape"
            )


def check_tiling(starts: np.ndarray, lengths: np.ndarray, num_transitions: int, where: str) -> None:
    """Check that episode ranges ``[start, start+length)`` tile ``[0, num_transitions)`` in order.

    Args:
        starts: int64 start row of each episode, in table order.
        lengths: int64 length of each episode.
        num_transitions: Rows in the transition table.
        where: File name for messages.

    Raises:
        InconsistentCountsError: Naming the first episode row that breaks the tiling.
    """
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    if starts.shape != lengths.shape:  # pragma: no cover - guarded by callers
        raise InconsistentCountsError(f"{where}: 'start' and 'length' have different lengths")
    if len(starts) == 0:
        if num_transitions != 0:
            raise InconsistentCountsError(
                f"{where}: no episodes, but the transition table has {num_transitions} rows; "
                "every transition must belong to exactly one episode row"
            )
        return
    bad = np.flatnonzero(lengths < 1)
    if len(bad):
        i = int(bad[0])
        raise InconsistentCountsError(
            f"{where}: episode row {i} has length {int(lengths[i])}; every episode must have length >= 1"
        )
    expected_starts = np.empty_like(starts)
    expected_starts[0] = 0
    # lengths are >= 1 and bounded by the checks below, so the cumulative sum cannot wrap
    # unless the values are absurd; compare against num_transitions before trusting it.
    if int(lengths.max()) > num_transitions:
        i = int(np.argmax(lengths))
        raise InconsistentCountsError(
            f"{where}: episode row {i} has length {int(lengths[i])}, more than the "
            f"{num_transitions} transitions in the memory"
        )
    np.cumsum(lengths[:-1], out=expected_starts[1:])
    bad = np.flatnonzero(starts != expected_starts)
    if len(bad):
        i = int(bad[0])
        raise InconsistentCountsError(
            f"{where}: episode row {i} starts at transition {int(starts[i])}, expected "
            f"{int(expected_starts[i])}; episode rows must be sorted by 'start' and their "
            "[start, start+length) ranges must tile the transitions without gaps or overlaps"
        )
    end = int(expected_starts[-1]) + int(lengths[-1])
    if end != num_transitions:
        raise InconsistentCountsError(
            f"{where}: episode ranges cover transitions [0, {end}) but the transition table "
            f"has {num_transitions} rows; they must cover it exactly"
        )


def check_episode_ids(
    transition_ids: np.ndarray,
    episode_ids: np.ndarray,
    lengths: np.ndarray,
    where: str,
) -> None:
    """Check that each transition's ``episode_id`` matches its episode row.

    Args:
        transition_ids: ``episode_id`` column of the transition table.
        episode_ids: ``episode_id`` column of the episode table.
        lengths: ``length`` column of the episode table (tiling already checked).
        where: File names for messages.

    Raises:
        InconsistentCountsError: Naming the first transition row that disagrees.
    """
    expected = np.repeat(np.asarray(episode_ids, dtype=np.int64), np.asarray(lengths, dtype=np.int64))
    if expected.shape != transition_ids.shape:
        raise InconsistentCountsError(
            f"{where}: episodes cover {expected.shape[0]} transitions, table has {transition_ids.shape[0]}"
        )
    bad = np.flatnonzero(expected != transition_ids)
    if len(bad):
        row = int(bad[0])
        raise InconsistentCountsError(
            f"{where}: transition row {row} has episode_id {int(transition_ids[row])} but the episode "
            f"row covering it has episode_id {int(expected[row])}; the two tables disagree"
        )


def check_success_values(success: np.ndarray, where: str) -> None:
    """Check that ``success`` only holds -1 (unknown), 0 or 1.

    Raises:
        SchemaError: Naming the first bad row.
    """
    bad = np.flatnonzero((success < -1) | (success > 1))
    if len(bad):
        i = int(bad[0])
        raise SchemaError(
            f"{where}: column 'success' row {i} is {int(success[i])}; allowed values are -1 (unknown), 0 and 1"
        )


#: Bytes checked per step: 1 MiB keeps the temporaries in cache (32 MiB steps ran 2x slower).
_FINITE_CHUNK_BYTES = 1024 * 1024


def check_finite(array: np.ndarray, where: str) -> None:
    """Refuse NaN and infinities in a floating-point array (no-op for other dtypes).

    Works in bounded memory: a chunk whose sum is finite has no NaN/inf (any of
    them makes the sum NaN or infinite); only a chunk with a non-finite sum
    (possibly a harmless overflow) is scanned element by element. float16
    chunks are checked on their bits instead (all exponent bits set means NaN
    or infinity): numpy has no fast float16 arithmetic, and summing them took
    most of a load of 16-bit keys.

    Args:
        array: The array to check.
        where: ``file:column`` or argument path for messages.

    Raises:
        NonFiniteValueError: Naming the first offending row.
    """
    if array.dtype.kind != "f" or array.size == 0:
        return
    rows = array.shape[0] if array.ndim else 1
    flat = array.reshape(rows, -1) if array.ndim else array.reshape(1, 1)
    per_row = max(1, flat.shape[1] * flat.dtype.itemsize)
    step = max(1, _FINITE_CHUNK_BYTES // per_row)
    acc = np.float32 if array.dtype == np.float16 else None
    bits = flat.view(np.uint16) if array.dtype == np.float16 and flat.flags.c_contiguous else None
    with np.errstate(all="ignore"):
        for lo in range(0, rows, step):
            chunk = flat[lo : lo + step]
            if bits is not None:
                if not (np.bitwise_and(bits[lo : lo + step], 0x7C00) == 0x7C00).any():
                    continue
            elif np.isfinite(chunk.sum(dtype=acc)):
                continue
            finite = np.isfinite(chunk)
            if finite.all():
                continue  # the sum overflowed, the values are fine
            bad_row = lo + int(np.flatnonzero(~finite.all(axis=1))[0])
            value = flat[bad_row][~np.isfinite(flat[bad_row])][0]
            raise NonFiniteValueError(
                f"{where}: row {bad_row} holds {value!r}; NaN and infinities are not allowed in "
                "floating-point data — clean or mask them before saving",
                field=where,
            )
