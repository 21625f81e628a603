"""Writing memories: validate everything first, then save atomically."""

from __future__ import annotations

import datetime as _dt
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from hippo_format._arrow import normalize_columns, write_table
from hippo_format._atomic import atomic_replace_dir
from hippo_format._io import HashingFile, PendingFile, fsync_dir
from hippo_format._manifest import (
    RESERVED_KEYS,
    ROW_KINDS,
    SECTION_TYPES,
    check_section_serializable,
    dump_manifest,
)
from hippo_format._paths import check_relative_name
from hippo_format._safetensors import METADATA_KEY, NUMPY_TO_TAG, write_safetensors
from hippo_format._schema import (
    COMPRESSIONS,
    DEFAULT_COMPRESSED_BATCH_ROWS,
    EPISODES_FILE,
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_FILE,
    REQUIRED_EPISODE_COLUMNS,
    SAFETENSORS_SUFFIX,
    TRANSITIONS_FILE,
    check_episode_ids,
    check_finite,
    check_required_columns,
    check_stem,
    check_success_values,
    check_tiling,
    check_transition_columns,
)
from hippo_format._version import __version__
from hippo_format.errors import (
    FormatError,
    InconsistentCountsError,
    ManifestError,
    SchemaError,
    UnsafePathError,
)

__all__ = ["write_memory"]

logger = logging.getLogger(__name__)


def _normalize_tensors(
    tensors: Mapping[str, Mapping[str, np.ndarray]] | None, check_values: bool
) -> dict[str, dict[str, tuple[str, np.ndarray]]]:
    if tensors is None:
        return {}
    if not isinstance(tensors, Mapping):
        raise SchemaError(f"tensors: expected a dict of file stem -> {{name: array}}, got {type(tensors).__name__}")
    out: dict[str, dict[str, tuple[str, np.ndarray]]] = {}
    for stem, arrays in tensors.items():
        check_stem(stem, "tensors: file stem")
        if not isinstance(arrays, Mapping):
            raise SchemaError(
                f"tensors[{stem!r}]: expected a dict of tensor name -> numpy array, got {type(arrays).__name__}"
            )
        entry: dict[str, tuple[str, np.ndarray]] = {}
        for name, array in arrays.items():
            label = f"tensors[{stem!r}][{name!r}]"
            if not isinstance(name, str) or not name or name == METADATA_KEY:
                raise SchemaError(f"{label}: tensor names must be non-empty strings other than {METADATA_KEY!r}")
            if not isinstance(array, np.ndarray):
                raise SchemaError(f"{label}: expected a numpy.ndarray, got {type(array).__name__}")
            native = array.dtype.newbyteorder("=")
            if native not in NUMPY_TO_TAG:
                raise SchemaError(
                    f"{label}: dtype {array.dtype} cannot be stored; expected one of "
                    f"{sorted(d.name for d in NUMPY_TO_TAG)} (use hippo_format.torch for bfloat16)"
                )
            if check_values:
                check_finite(array, label)
            little = array.dtype.newbyteorder("<") if array.dtype.byteorder != "|" else array.dtype
            # np.require keeps 0-d scalars 0-d (np.ascontiguousarray would make them 1-d).
            entry[name] = (NUMPY_TO_TAG[native], np.require(array, dtype=little, requirements="C"))
        out[stem] = entry
    return out


def _check_tensor_metadata(
    metadata: Mapping[str, Mapping[str, str]] | None, stems: Mapping[str, Any]
) -> dict[str, dict[str, str]]:
    if metadata is None:
        return {}
    out: dict[str, dict[str, str]] = {}
    for stem, entries in metadata.items():
        if stem not in stems:
            raise SchemaError(f"tensor_metadata[{stem!r}]: no such tensor file in 'tensors' (stems: {sorted(stems)})")
        if not isinstance(entries, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in entries.items()
        ):
            raise SchemaError(
                f"tensor_metadata[{stem!r}]: expected a dict of str -> str (safetensors metadata is strings only)"
            )
        out[stem] = dict(entries)
    return out


def _check_row_aligned(
    row_aligned: Mapping[str, Mapping[str, str]] | None,
    tensors: Mapping[str, Mapping[str, tuple[str, np.ndarray]]],
    counts: Mapping[str, int],
) -> dict[str, dict[str, str]]:
    if not row_aligned:
        return {}
    out: dict[str, dict[str, str]] = {}
    for stem, entries in row_aligned.items():
        if stem not in tensors:
            raise SchemaError(f"row_aligned[{stem!r}]: no such tensor file in 'tensors' (stems: {sorted(tensors)})")
        out[stem] = {}
        for name, kind in entries.items():
            if name not in tensors[stem]:
                raise SchemaError(f"row_aligned[{stem!r}][{name!r}]: no such tensor (tensors: {sorted(tensors[stem])})")
            if kind not in ROW_KINDS:
                raise SchemaError(f"row_aligned[{stem!r}][{name!r}]: expected one of {list(ROW_KINDS)}, got {kind!r}")
            shape = tensors[stem][name][1].shape
            if not shape or shape[0] != counts[kind]:
                raise InconsistentCountsError(
                    f"tensors[{stem!r}][{name!r}]: shape {list(shape)} but it is declared row-aligned with "
                    f"the {counts[kind]} {kind}; its first dimension must be {counts[kind]}"
                )
            out[stem][name] = kind
    return out


def _check_extra_files(extra: Mapping[str, bytes] | None, reserved: set[str]) -> dict[str, memoryview]:
    if not extra:
        return {}
    out: dict[str, memoryview] = {}
    for name, data in extra.items():
        check_relative_name(name, "extra_files")
        if name in reserved or name == MANIFEST_FILE or ("/" not in name and name.endswith(SAFETENSORS_SUFFIX)):
            raise UnsafePathError(
                f"extra_files[{name!r}]: the name is reserved for a file the format writes itself; rename it"
            )
        try:
            out[name] = memoryview(data).cast("B")
        except TypeError:
            raise SchemaError(f"extra_files[{name!r}]: expected bytes, got {type(data).__name__}") from None
    names = set(out) | reserved
    for name in out:
        parts = name.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in names:
                raise UnsafePathError(
                    f"extra_files[{name!r}]: {'/'.join(parts[:i])!r} is also a file; a file cannot be a directory"
                )
    return out


def _producer(producer: tuple[str, str] | None, manifest: Mapping[str, Any]) -> dict[str, str]:
    if producer is not None:
        if (
            not isinstance(producer, tuple | list)
            or len(producer) != 2
            or not all(isinstance(p, str) for p in producer)
        ):
            raise ManifestError(f"producer: expected a (name, version) tuple of strings, got {producer!r}")
        return {"name": producer[0], "version": producer[1]}
    given = manifest.get("producer")
    if isinstance(given, Mapping) and isinstance(given.get("name"), str) and isinstance(given.get("version"), str):
        return {"name": given["name"], "version": given["version"]}
    return {"name": "hippo_format", "version": __version__}


def write_memory(
    path: str | os.PathLike[str],
    *,
    manifest: Mapping[str, Any],
    transitions: Mapping[str, np.ndarray],
    episodes: Mapping[str, np.ndarray],
    tensors: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    tensor_metadata: Mapping[str, Mapping[str, str]] | None = None,
    row_aligned: Mapping[str, Mapping[str, str]] | None = None,
    extra_files: Mapping[str, bytes] | None = None,
    compression: str | None = None,
    producer: tuple[str, str] | None = None,
    batch_rows: int | None = None,
    allow_nonfinite_tensors: bool = False,
) -> Path:
    """Validate a memory and save it atomically as a directory at ``path``.

    Everything is validated before anything is written. The memory is written
    to a temp directory beside ``path`` (files fsynced, SHA-256 computed while
    writing), then swapped into place atomically; an existing memory at
    ``path`` is replaced. A crash at any point leaves the previous memory at
    ``path`` loadable.

    Args:
        path: Target directory.
        manifest: Producer sections (``embed_dim``, ``encoder``, ``spaces``,
            ``segmenter``, ``sampling``, ``provenance``, ``store``, or any other
            JSON). Format-owned keys (``format``, ``format_version``,
            ``producer``, ``created``, ``counts``, ``compression``, ``files``,
            ``row_aligned``, ``manifest_sha256``) are filled in by the writer
            and replaced if present, so a manifest read from a memory can be
            passed back unchanged.
        transitions: Column name -> array ``[N, *shape]``. Required:
            ``episode_id`` int64, ``step`` int32, ``reward`` float32,
            ``terminated`` bool, ``truncated`` bool, ``action``, and paired
            ``obs``/``next_obs`` (or ``obs.<key>``/``next_obs.<key>``) columns.
        episodes: Column name -> array ``[E, ...]``. Required: ``episode_id``
            int64, ``start`` int64, ``length`` int64, ``return`` float64,
            ``success`` int8 (-1 unknown, 0, 1); rows sorted by ``start`` and
            tiling ``[0, N)``.
        tensors: File stem -> {tensor name -> array}; each stem becomes
            ``<stem>.safetensors``.
        tensor_metadata: File stem -> safetensors ``__metadata__`` (str -> str).
        row_aligned: File stem -> {tensor name -> ``"transitions"`` or
            ``"episodes"``}: tensors whose first dimension must equal that count
            (checked now and on every open).
        extra_files: Relative name -> bytes of opaque files (e.g. ``index.faiss``).
        compression: ``None`` (default; Arrow files can be memory-mapped
            zero-copy), ``"zstd"`` or ``"lz4"``.
        producer: ``(name, version)`` of the software writing the memory;
            defaults to ``manifest["producer"]`` or hippo_format itself.
        batch_rows: Rows per Arrow record batch. Default: one batch when
            uncompressed (so columns open as zero-copy views), 65 536 rows when
            compressed.
        allow_nonfinite_tensors: Accept NaN/inf in float tensors (never in columns).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        SchemaError: A column or tensor has a wrong dtype or shape, or a required column is missing.
        NonFiniteValueError: A float column (or tensor) holds NaN or inf.
        InconsistentCountsError: Row counts disagree or episodes do not tile the transitions.
        ManifestError: A manifest section cannot be stored as JSON or has the wrong type.
        UnsafePathError: An extra file name is not a safe relative path.
        TargetExistsError: ``path`` exists and is not a memory directory.
        OSError: Writing failed (the previous memory is left in place).
    """
    target = Path(os.path.abspath(os.fspath(path)))
    if compression is not None and compression not in COMPRESSIONS:
        raise FormatError(f"compression: expected None or one of {list(COMPRESSIONS)}, got {compression!r}")
    if batch_rows is not None and (not isinstance(batch_rows, int) or isinstance(batch_rows, bool) or batch_rows < 1):
        raise FormatError(f"batch_rows: expected None or a positive integer, got {batch_rows!r}")
    if not isinstance(manifest, Mapping):
        raise ManifestError(f"manifest: expected a dict of producer sections, got {type(manifest).__name__}")
    if batch_rows is None and compression is not None:
        batch_rows = DEFAULT_COMPRESSED_BATCH_ROWS

    t_arrays, t_infos, n = normalize_columns(transitions, "transitions")
    check_transition_columns(t_infos, "transitions")
    for name, array in t_arrays.items():
        check_finite(array, f"transitions[{name!r}]")
    e_arrays, e_infos, n_ep = normalize_columns(episodes, "episodes")
    check_required_columns(e_infos, REQUIRED_EPISODE_COLUMNS, "episodes")
    for name, array in e_arrays.items():
        check_finite(array, f"episodes[{name!r}]")
    check_success_values(e_arrays["success"], "episodes")
    check_tiling(e_arrays["start"], e_arrays["length"], n, "episodes")
    check_episode_ids(t_arrays["episode_id"], e_arrays["episode_id"], e_arrays["length"], "transitions vs episodes")
    counts = {"transitions": n, "episodes": n_ep}

    st = _normalize_tensors(tensors, check_values=not allow_nonfinite_tensors)
    st_meta = _check_tensor_metadata(tensor_metadata, st)
    aligned = _check_row_aligned(row_aligned, st, counts)
    reserved = {TRANSITIONS_FILE, EPISODES_FILE} | {f"{s}{SAFETENSORS_SUFFIX}" for s in st}
    extras = _check_extra_files(extra_files, reserved)

    doc: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "producer": _producer(producer, manifest),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds"),
        "counts": counts,
        "compression": compression,
        "files": {},
    }
    if aligned:
        doc["row_aligned"] = aligned
    for key, value in manifest.items():
        if not isinstance(key, str):
            raise ManifestError(f"manifest: keys must be strings, got {key!r}")
        if key in RESERVED_KEYS or key == "migrated_from":
            logger.debug("manifest key %r is owned by the format; the writer replaces it", key)
            continue
        check_section_serializable(key, value)
        kind = SECTION_TYPES.get(key)
        if value is not None and kind is not None:
            if kind is int and not (isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= 0):
                raise ManifestError(f"manifest[{key!r}]: expected a non-negative integer or None, got {value!r}")
            if kind is dict and not isinstance(value, Mapping):
                raise ManifestError(
                    f"manifest[{key!r}]: expected a dict (JSON object) or None, got {type(value).__name__}"
                )
        doc[key] = value

    def build(tmp: Path) -> None:
        pending: dict[str, PendingFile] = {}
        open_files: list[HashingFile] = []

        def new_file(name: str) -> HashingFile:
            f = HashingFile(tmp / name)
            open_files.append(f)
            return f

        try:
            # Largest files first so that hashing starts as early as possible.
            for stem in sorted(st, key=lambda s: -sum(a.nbytes for _, a in st[s].values())):
                name = f"{stem}{SAFETENSORS_SUFFIX}"
                f = new_file(name)
                write_safetensors(f, st[stem], st_meta.get(stem))
                pending[name] = f.finish()
            f = new_file(TRANSITIONS_FILE)
            write_table(f, t_arrays, t_infos, n, compression=compression, batch_rows=batch_rows)
            pending[TRANSITIONS_FILE] = f.finish()
            f = new_file(EPISODES_FILE)
            write_table(f, e_arrays, e_infos, n_ep, compression=compression, batch_rows=batch_rows)
            pending[EPISODES_FILE] = f.finish()
            subdirs: set[Path] = set()
            for name, data in extras.items():
                if "/" in name:
                    parent = tmp / name.rsplit("/", 1)[0]
                    parent.mkdir(parents=True, exist_ok=True)
                    subdirs.update(p for p in [parent, *parent.parents] if tmp in p.parents)
                f = new_file(name)
                f.write(data)
                pending[name] = f.finish()
            for sub in sorted(subdirs, key=lambda p: -len(p.parts)):
                fsync_dir(sub)
        except BaseException:
            for f in open_files:
                f.abort()
            for job in pending.values():  # let background fsyncs finish before the temp dir is removed
                try:
                    job.result()
                except OSError:
                    pass
            raise
        files = {}
        for name in sorted(pending):
            files[name] = pending[name].result()
        doc["files"] = files
        raw = dump_manifest(doc)
        fd = os.open(tmp / MANIFEST_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(raw)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)

    atomic_replace_dir(target, build)
    logger.info("saved memory %s (%d transitions, %d episodes)", target, n, n_ep)
    return target
