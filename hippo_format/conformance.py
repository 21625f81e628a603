"""Mechanical check of a memory directory against the MUST rules of SPEC.md.

Run it on any memory, whoever wrote it::

    from hippo_format import check_conformance
    problems = check_conformance("path/to/memory")   # [] when conformant

Each problem is a string starting with the SPEC.md rule id, e.g.
``"[M7] files['keys.safetensors'].sha256 ..."``. The checker works on the raw
files and reimplements the checks that the reader performs lazily, so it also
catches what a lenient reader would let pass (unlisted files, compressed
buffers in a file declared uncompressed, a manifest digest that is not last).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from hippo_format._arrow import chunk_to_numpy
from hippo_format._files import FileHandle, Snapshot
from hippo_format._ipc import scan_ipc_file
from hippo_format._paths import check_relative_name
from hippo_format._safetensors import read_header
from hippo_format._schema import (
    COMPRESSIONS,
    EPISODES_FILE,
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_FILE,
    REQUIRED_EPISODE_COLUMNS,
    SAFETENSORS_SUFFIX,
    TRANSITIONS_FILE,
    ColumnInfo,
    check_episode_ids,
    check_finite,
    check_required_columns,
    check_stem,
    check_success_values,
    check_tiling,
    check_transition_columns,
    column_info_from_arrow,
    is_sha256_hex,
    is_xxh3_128_hex,
)
from hippo_format.errors import FormatError, LimitExceededError, MissingFileError, UnsafePathError
from hippo_format.limits import DEFAULT_LIMITS, LoadLimits, json_depth

__all__ = ["check_conformance"]

_ARROW_MAGIC = b"ARROW1"
_SECTIONS = ("encoder", "spaces", "segmenter", "sampling", "provenance", "store")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Report:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, rule: str, message: str) -> None:
        self.problems.append(f"[{rule}] {message}")


def _load_manifest(
    root: Path, snapshot: Snapshot, limits: LoadLimits, report: _Report
) -> tuple[dict[str, Any] | None, bytes]:
    try:
        handle = snapshot.open(MANIFEST_FILE, "the manifest")
    except MissingFileError:
        report.add("D1", f"{MANIFEST_FILE} is missing")
        return None, b""
    except FormatError as exc:
        report.add("L2", f"{MANIFEST_FILE}: {exc}")
        return None, b""
    try:
        if handle.size > limits.max_manifest_bytes:
            report.add("L1", f"{MANIFEST_FILE} has {handle.size} bytes, more than {limits.max_manifest_bytes}")
            return None, b""
        raw = handle.read()
    finally:
        handle.close()
    depth = json_depth(raw, stop_above=limits.max_json_depth)
    if depth > limits.max_json_depth:
        report.add("L1", f"{MANIFEST_FILE} nests JSON more than {limits.max_json_depth} levels deep")
        return None, raw
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        report.add("M1", f"{MANIFEST_FILE} is not UTF-8 ({exc})")
        return None, raw
    duplicates: list[str] = []

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                duplicates.append(key)
            seen[key] = value
        return seen

    constants: list[str] = []

    def constant(name: str) -> float:
        constants.append(name)
        return float("nan")

    try:
        doc = json.loads(text, object_pairs_hook=hook, parse_constant=constant)
    except (ValueError, RecursionError) as exc:
        report.add("M1", f"{MANIFEST_FILE} is not valid JSON ({exc})")
        return None, raw
    if duplicates:
        report.add("M1", f"{MANIFEST_FILE} repeats keys {sorted(set(duplicates))}")
    if constants:
        report.add("M1", f"{MANIFEST_FILE} uses non-standard constants {sorted(set(constants))}")
    if not isinstance(doc, dict):
        report.add("M1", f"{MANIFEST_FILE} top level is {type(doc).__name__}, not an object")
        return None, raw
    return doc, raw


def _check_manifest_fields(doc: dict[str, Any], raw: bytes, report: _Report) -> None:
    if doc.get("format") != FORMAT_NAME:
        report.add("M2", f"format is {doc.get('format')!r}, expected {FORMAT_NAME!r}")
    if not _is_int(doc.get("format_version")) or doc.get("format_version") != FORMAT_VERSION:
        report.add("M2", f"format_version is {doc.get('format_version')!r}, expected the integer {FORMAT_VERSION}")
    producer = doc.get("producer")
    if (
        not isinstance(producer, dict)
        or not isinstance(producer.get("name"), str)
        or not isinstance(producer.get("version"), str)
    ):
        report.add("M3", f"producer must be an object with string name and version, found {producer!r:.100}")
    created = doc.get("created")
    try:
        stamp = _dt.datetime.fromisoformat(created) if isinstance(created, str) else None
    except ValueError:
        stamp = None
    if stamp is None or stamp.tzinfo is None:
        report.add("M4", f"created must be an ISO 8601 timestamp with a UTC offset, found {created!r:.60}")
    counts = doc.get("counts")
    if not isinstance(counts, dict) or not all(
        _is_int(counts.get(k)) and counts[k] >= 0 for k in ("transitions", "episodes")
    ):
        report.add("M5", f"counts must hold non-negative integers transitions and episodes, found {counts!r:.100}")
    compression = doc.get("compression", None)
    if "compression" not in doc:
        report.add("M6", "compression member is missing (null for uncompressed Arrow files)")
    elif compression is not None and compression not in COMPRESSIONS:
        report.add("M6", f"compression is {compression!r}, expected null or one of {list(COMPRESSIONS)}")
    if doc.get("embed_dim") is not None and not (_is_int(doc["embed_dim"]) and doc["embed_dim"] >= 0):
        report.add("M10", f"embed_dim must be a non-negative integer or null, found {doc['embed_dim']!r:.60}")
    for key in _SECTIONS:
        if doc.get(key) is not None and not isinstance(doc[key], dict):
            report.add("M10", f"{key} must be an object or null, found {type(doc[key]).__name__}")
    value = doc.get("manifest_sha256")
    if not isinstance(value, str) or not is_sha256_hex(value):
        report.add("M9", f"manifest_sha256 must be 64 lowercase hex digits, found {value!r:.80}")
    else:
        if list(doc)[-1] != "manifest_sha256":
            report.add("M9", "manifest_sha256 must be the last member of the top-level object")
        at = raw.rfind(value.encode("ascii"))
        digest = hashlib.sha256(raw[:at] + b"0" * 64 + raw[at + 64 :]).hexdigest() if at >= 0 else None
        if digest != value:
            report.add("M9", f"manifest_sha256 is {value} but the manifest digests to {digest}")


def _check_files(
    root: Path, snapshot: Snapshot, doc: dict[str, Any], limits: LoadLimits, report: _Report
) -> dict[str, FileHandle]:
    files = doc.get("files")
    if not isinstance(files, dict):
        report.add("M7", f"files must be an object, found {type(files).__name__}")
        return {}
    if len(files) > limits.max_files:
        report.add("L1", f"files lists {len(files)} files, more than {limits.max_files}")
        return {}
    handles: dict[str, FileHandle] = {}
    for name, entry in files.items():
        try:
            check_relative_name(name, "files")
        except FormatError as exc:
            report.add("D4", str(exc))
            continue
        if name == MANIFEST_FILE:
            report.add("M7", "files must not list manifest.json")
            continue
        if not isinstance(entry, dict) or not is_sha256_hex(entry.get("sha256")) or not _is_int(entry.get("bytes")):
            report.add("M7", f"files[{name!r}] must be {{sha256: 64 hex digits, bytes: integer}}, found {entry!r:.100}")
            continue
        try:
            handle = snapshot.open(name, "files")
        except UnsafePathError as exc:
            report.add("D4", str(exc))
            continue
        except MissingFileError:
            report.add("M7", f"files lists {name!r} but there is no such file")
            continue
        except FormatError as exc:
            report.add("L2", str(exc))
            continue
        digest, size = handle.sha256()
        if size != entry["bytes"]:
            report.add("M7", f"files[{name!r}].bytes is {entry['bytes']} but the file has {size}")
        if digest != entry["sha256"]:
            report.add("M7", f"files[{name!r}].sha256 is {entry['sha256']} but the file digests to {digest}")
        if "xxh3_128" in entry:
            fast = entry["xxh3_128"]
            if not is_xxh3_128_hex(fast):
                report.add("M7", f"files[{name!r}].xxh3_128 must be 32 lowercase hex digits, found {fast!r:.80}")
            elif (actual := handle.digest("xxh3_128")[0]) != fast:
                report.add("M7", f"files[{name!r}].xxh3_128 is {fast} but the file digests to {actual}")
        handles[name] = handle
    for required in (TRANSITIONS_FILE, EPISODES_FILE):
        if required not in files:
            report.add("D1", f"files must list {required!r}")
    for dirpath, _dirs, filenames in os.walk(root):
        for fname in filenames:
            rel = Path(dirpath, fname).relative_to(root).as_posix()
            if rel != MANIFEST_FILE and rel not in files:
                report.add("D3", f"{rel!r} is in the directory but not listed in files")
    for name in files:
        if "/" not in name and name.endswith(SAFETENSORS_SUFFIX):
            try:
                check_stem(name[: -len(SAFETENSORS_SUFFIX)], "files")
            except FormatError as exc:
                report.add("D2", str(exc))
    return handles


def _check_arrow(
    handle: FileHandle, name: str, compression: Any, limits: LoadLimits, report: _Report
) -> dict[str, np.ndarray] | None:
    import pyarrow as pa

    mapped = handle.mapped()
    data = memoryview(mapped) if mapped is not None else memoryview(b"")
    if len(data) < 12 or bytes(data[:6]) != _ARROW_MAGIC or bytes(data[-6:]) != _ARROW_MAGIC:
        report.add("A1", f"{name} is not an Arrow IPC file (magic 'ARROW1' missing at start or end)")
        return None
    try:
        layout = scan_ipc_file(data, name)
    except FormatError as exc:
        report.add("A1", str(exc))
        return None
    if layout.dictionaries:
        report.add("A3", f"{name} holds {layout.dictionaries} dictionary batches; the format has no dictionary columns")
        return None
    if layout.compressed and compression is None:
        report.add("A2", f"{name} holds compressed record batches, but manifest compression is null")
        return None
    bound = max(limits.allocation_floor_bytes, int(limits.max_compression_ratio * handle.size))
    if layout.compressed and layout.decoded_bytes > bound:
        report.add("L3", f"{name}: compressed buffers declare {layout.decoded_bytes} decoded bytes, more than {bound}")
        return None
    try:
        buffer = pa.py_buffer(mapped)
        lo, hi = buffer.address, buffer.address + buffer.size
        reader = pa.ipc.open_file(pa.BufferReader(buffer))
        schema = reader.schema
        if not _check_declared_sizes(schema, layout, name, limits, report):
            return None
        table = reader.read_all()
        table.validate(full=True)
    except Exception as exc:  # noqa: BLE001 - any pyarrow failure is a violation to report
        report.add("A1", f"{name} cannot be read as an Arrow IPC file ({type(exc).__name__}: {exc})")
        return None
    try:
        return _check_columns(table, name, compression, lo, hi, report)
    except Exception as exc:  # noqa: BLE001 - lazily decoded metadata (names, types) may still be corrupt
        report.add("A1", f"{name} has undecodable metadata ({type(exc).__name__}: {exc})")
        return None


def _check_declared_sizes(schema: Any, layout: Any, name: str, limits: LoadLimits, report: _Report) -> bool:
    """L3: columns, dimensions and row sizes within limits, declared rows within the buffers (before decoding)."""
    if len(schema) > limits.max_columns:
        report.add("L3", f"{name} has {len(schema)} columns, more than {limits.max_columns}")
        return False
    needed = 0
    for field in schema:
        try:
            info = column_info_from_arrow(field.type, f"{name}: column {field.name!r}")
        except FormatError:
            continue  # reported as A3 once decoded
        row = info.dtype.itemsize * int(np.prod(info.shape, dtype=object))
        if len(info.shape) > limits.max_dims or row > limits.max_row_bytes:
            report.add("L3", f"{name}: column {field.name!r} rows are {info.describe()}, over the row limits")
            return False
        count = layout.rows * int(np.prod(info.shape, dtype=object))
        needed += -(-count // 8) if info.dtype == np.bool_ else count * info.dtype.itemsize
    if needed > layout.decoded_bytes:
        report.add("L3", f"{name}: {layout.rows} rows need {needed} bytes but the buffers hold {layout.decoded_bytes}")
        return False
    return True


def _check_columns(table: Any, name: str, compression: Any, lo: int, hi: int, report: _Report) -> dict[str, np.ndarray]:
    if len(set(table.schema.names)) != len(table.schema.names):
        report.add("A3", f"{name} has duplicate column names")
    columns: dict[str, np.ndarray] = {}
    for field, column in zip(table.schema, table.columns, strict=True):
        where = f"{name}: column {field.name!r}"
        try:
            info = column_info_from_arrow(field.type, where)
        except FormatError as exc:
            report.add("A3", str(exc))
            continue
        if column.null_count:
            report.add("A3", f"{where} has {column.null_count} nulls")
            continue
        if compression is None:
            for chunk in column.chunks:
                for buf in _all_buffers(chunk):
                    if buf is not None and buf.size and not (lo <= buf.address and buf.address + buf.size <= hi):
                        report.add(
                            "A2",
                            f"{where} has buffers that are not stored uncompressed in the file, "
                            "but manifest compression is null",
                        )
                        break
                else:
                    continue
                break
        try:
            parts = [chunk_to_numpy(chunk, info, None, where) for chunk in column.chunks]
        except FormatError as exc:
            report.add("A3", str(exc))
            continue
        values = np.concatenate(parts) if parts else np.empty((0, *info.shape), dtype=info.dtype)
        try:
            check_finite(values, where)
        except FormatError as exc:
            report.add("A4", str(exc))
        columns[field.name] = values
    return columns


def _all_buffers(array: Any) -> list[Any]:
    import pyarrow as pa

    if isinstance(array, pa.ExtensionArray):
        array = array.storage
    return list(array.buffers())


def _check_tables(
    paths: dict[str, FileHandle], doc: dict[str, Any], limits: LoadLimits, report: _Report
) -> tuple[int | None, int | None]:
    compression = doc.get("compression")
    counts: dict[str, Any] = doc["counts"] if isinstance(doc.get("counts"), dict) else {}
    t_cols = e_cols = None
    if TRANSITIONS_FILE in paths:
        t_cols = _check_arrow(paths[TRANSITIONS_FILE], TRANSITIONS_FILE, compression, limits, report)
    if EPISODES_FILE in paths:
        e_cols = _check_arrow(paths[EPISODES_FILE], EPISODES_FILE, compression, limits, report)
    n = e = None
    if t_cols is not None:
        infos = {k: ColumnInfo(v.dtype, tuple(v.shape[1:])) for k, v in t_cols.items()}
        try:
            check_transition_columns(infos, TRANSITIONS_FILE)
        except FormatError as exc:
            report.add("T1", str(exc))
            t_cols = None
        if t_cols is not None:
            n = len(t_cols["episode_id"])
        if t_cols is not None and counts.get("transitions") != n:
            report.add("M5", f"counts.transitions is {counts.get('transitions')!r} but {TRANSITIONS_FILE} has {n} rows")
    if e_cols is not None:
        infos = {k: ColumnInfo(v.dtype, tuple(v.shape[1:])) for k, v in e_cols.items()}
        try:
            check_required_columns(infos, REQUIRED_EPISODE_COLUMNS, EPISODES_FILE)
        except FormatError as exc:
            report.add("E1", str(exc))
            return n, None
        e = len(e_cols["start"])
        if counts.get("episodes") != e:
            report.add("M5", f"counts.episodes is {counts.get('episodes')!r} but {EPISODES_FILE} has {e} rows")
        try:
            check_success_values(e_cols["success"], EPISODES_FILE)
        except FormatError as exc:
            report.add("E1", str(exc))
        if t_cols is not None:
            try:
                check_tiling(e_cols["start"], e_cols["length"], n or 0, EPISODES_FILE)
                check_episode_ids(
                    t_cols["episode_id"], e_cols["episode_id"], e_cols["length"], "transitions vs episodes"
                )
            except FormatError as exc:
                report.add("E2", str(exc))
    return n, e


def _check_safetensors(
    paths: dict[str, FileHandle],
    doc: dict[str, Any],
    counts: dict[str, int | None],
    limits: LoadLimits,
    report: _Report,
) -> None:
    headers = {}
    for name, handle in paths.items():
        if "/" in name or not name.endswith(SAFETENSORS_SUFFIX):
            continue
        path = handle.path
        try:
            header = read_header(handle, name, limits)
        except LimitExceededError as exc:
            report.add("L4", str(exc))
            continue
        except FormatError as exc:
            report.add("S1", str(exc))
            continue
        headers[name[: -len(SAFETENSORS_SUFFIX)]] = header
        try:  # cross-check with the reference implementation (header already validated above)
            from safetensors import safe_open

            with safe_open(str(path), framework="numpy") as f:
                names = set(f.keys())
            if names != set(header.entries):
                report.add(
                    "S1",
                    f"{name}: the safetensors package sees tensors {sorted(names)}, expected {sorted(header.entries)}",
                )
        except ImportError:  # pragma: no cover - safetensors is a dependency
            pass
        except BaseException as exc:  # noqa: BLE001 - the reference reader refusing the file is the violation
            # pyo3 panics surface as PanicException, a BaseException; let real interrupts through.
            if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
                raise
            report.add("S1", f"{name}: the safetensors package rejects the file ({type(exc).__name__}: {exc})")
    row_aligned = doc.get("row_aligned")
    if row_aligned is None:
        return
    if not isinstance(row_aligned, dict):
        report.add("M8", "row_aligned must be an object")
        return
    for stem, entries in row_aligned.items():
        if stem not in headers or not isinstance(entries, dict):
            report.add("M8", f"row_aligned[{stem!r}] names no valid {stem}{SAFETENSORS_SUFFIX}")
            continue
        for tensor, kind in entries.items():
            entry = headers[stem].entries.get(tensor)
            if kind not in ("transitions", "episodes") or entry is None:
                report.add("M8", f"row_aligned[{stem!r}][{tensor!r}] = {kind!r} does not name a tensor and a row kind")
                continue
            expected = counts.get(kind)
            if expected is None:
                continue  # the table could not be read; already reported
            if not entry.shape or entry.shape[0] != expected:
                report.add(
                    "M8", f"{stem}/{tensor} has shape {list(entry.shape)}, first dimension must be {expected} ({kind})"
                )


def _space_problems(value: Any, where: str, limits: LoadLimits, depth: int = 1) -> list[str]:
    """L5: element counts, dimensions and nesting of a space description, computed from its JSON alone."""
    if depth > limits.max_json_depth:
        return [f"{where} nests spaces more than {limits.max_json_depth} levels deep"]
    if not isinstance(value, dict):
        return []
    kind = value.get("type")
    shape: Any = None
    if kind == "Box":
        shape = value.get("shape")
    elif kind == "MultiBinary":
        shape = value.get("n") if isinstance(value.get("n"), list) else [value.get("n")]
    if isinstance(shape, list) and all(_is_int(d) and d >= 0 for d in shape):
        elements = math.prod(shape)
        if len(shape) > limits.max_dims or elements > limits.max_space_elements:
            return [f"{where} has {elements} elements in {len(shape)} dimensions, over the limits"]
    members = value.get("spaces")
    subs = members.items() if isinstance(members, dict) else enumerate(members) if isinstance(members, list) else []
    problems: list[str] = []
    for key, sub in subs:
        problems.extend(_space_problems(sub, f"{where}.spaces[{key!r}]", limits, depth + 1))
    return problems


def check_conformance(path: str | os.PathLike[str], *, limits: LoadLimits | None = None) -> list[str]:
    """Check a memory directory against every mechanically checkable MUST of SPEC.md.

    Files are opened like the reader opens them (without blocking, regular files
    only, each once), and every size is checked against ``limits`` (rules L1-L5)
    before anything is decoded.

    Args:
        path: The memory directory.
        limits: The resource limits to check against (default: SPEC.md's).

    Returns:
        Human-readable violations, each prefixed with its SPEC.md rule id;
        an empty list means the memory conforms.
    """
    limits = limits or DEFAULT_LIMITS
    root = Path(path)
    report = _Report()
    if not root.is_dir():
        report.add("D1", f"{root} is not a directory")
        return report.problems
    try:
        snapshot = Snapshot(root)
    except FormatError as exc:
        report.add("D1", str(exc))
        return report.problems
    handles: dict[str, FileHandle] = {}
    try:
        doc, raw = _load_manifest(root, snapshot, limits, report)
        if doc is None:
            return report.problems
        _check_manifest_fields(doc, raw, report)
        spaces = doc.get("spaces")
        if isinstance(spaces, dict):
            for name, value in spaces.items():
                for problem in _space_problems(value, f"spaces.{name}", limits):
                    report.add("L5", problem)
        handles = _check_files(root, snapshot, doc, limits, report)
        n, e = _check_tables(handles, doc, limits, report)
        _check_safetensors(handles, doc, {"transitions": n, "episodes": e}, limits, report)
    finally:
        for handle in handles.values():
            handle.close()
        snapshot.close()
    return report.problems
