"""Opening memories: cheap validation at open, zero-copy access afterwards."""

from __future__ import annotations

import copy
import logging
import os
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from hippo_format._arrow import ArrowTable
from hippo_format._atomic import save_lock, set_aside_candidates
from hippo_format._files import DirectoryReplacedError, FileHandle, RootMissingError, Snapshot
from hippo_format._manifest import (
    check_self_digest,
    detect_version,
    parse_manifest,
    read_manifest_from,
    validate_files_section,
    validate_manifest,
)
from hippo_format._paths import check_relative_name
from hippo_format._safetensors import SafetensorsFile
from hippo_format._schema import (
    EPISODES_FILE,
    FORMAT_VERSION,
    MANIFEST_FILE,
    REQUIRED_EPISODE_COLUMNS,
    SAFETENSORS_SUFFIX,
    TRANSITIONS_FILE,
    ColumnInfo,
    check_episode_ids,
    check_required_columns,
    check_stem,
    check_success_values,
    check_tiling,
    check_transition_columns,
)
from hippo_format._schema import check_finite as _assert_finite
from hippo_format.errors import (
    ChecksumMismatchError,
    FormatError,
    InconsistentCountsError,
    ManifestError,
    MemoryChangedError,
    MissingFileError,
    SchemaError,
    TruncatedFileError,
    UnsupportedVersionError,
)
from hippo_format.limits import DEFAULT_LIMITS, AllocationBudget, LoadLimits
from hippo_format.migrations import MigrationContext, migrate_manifest

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["MemoryReader", "VerifyMode", "open_memory", "recover_memory"]

logger = logging.getLogger(__name__)

VerifyMode = Literal["size", "full", "none"]
_VERIFY_MODES = ("size", "full", "none")
#: Attempts to open a memory whose directory keeps being replaced by concurrent saves.
_OPEN_ATTEMPTS = 8
#: Attempts (with short sleeps, about 0.1 s in all) to open a path that is missing while saves happen beside it.
_MISSING_ATTEMPTS = 6


def _check_sizes(handles: dict[str, FileHandle], files: dict[str, dict[str, Any]], current: bool) -> None:
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


def _check_digests(handles: dict[str, FileHandle], files: dict[str, dict[str, Any]]) -> None:
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


def _open_files(snapshot: Snapshot, files: dict[str, dict[str, Any]], mode: str) -> dict[str, FileHandle]:
    """Open every listed file once (inside the directory, regular files only) and check it per ``mode``."""
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
            _check_sizes(handles, files, current=False)
        if mode == "full":
            _check_digests(handles, files)
    except BaseException:
        for handle in handles.values():
            handle.close()
        raise
    return handles


def _infos_of(columns: dict[str, np.ndarray]) -> dict[str, ColumnInfo]:
    return {name: ColumnInfo(a.dtype, tuple(a.shape[1:])) for name, a in columns.items()}


class MemoryReader:
    """Read access to one memory directory. Create it with :func:`open_memory`.

    Every file is opened once, when the memory is opened and verified, and all
    later reads go through those open files: a save that replaces the memory
    meanwhile (atomically, SPEC.md section 10) never mixes into what this reader
    returns. Arrow tables and safetensors files are memory-mapped, so opening
    costs the same for any memory size. Arrays from :meth:`column` and
    :meth:`tensor` are read-only views of the mapped files (when the file is
    uncompressed and written as one record batch, the writer's default);
    :meth:`load_all` copies everything into RAM.

    With ``check_finite`` (the default of :func:`open_memory`) every float column,
    episode column and tensor is checked for NaN and infinities the first time it
    is returned (:class:`~hippo_format.errors.NonFiniteValueError` names it).

    Attributes:
        path: The directory the data is read from (a set-aside ``.old-*``
            sibling when the target was missing after an interrupted save).
        format_version_on_disk: Version found on disk, before migrations.
        limits: The :class:`~hippo_format.LoadLimits` the memory was opened with.
        budget: The :class:`~hippo_format.limits.AllocationBudget` for allocations
            that producer sections ask for (see :meth:`check_allocation`).
    """

    def __init__(
        self,
        *,
        path: Path,
        manifest: dict[str, Any],
        format_version_on_disk: int,
        transitions: ArrowTable,
        episodes_table: ArrowTable | None,
        episodes: dict[str, np.ndarray],
        tensor_files: dict[str, SafetensorsFile],
        extra_files: dict[str, FileHandle],
        handles: dict[str, FileHandle] | None = None,
        raw_manifest: bytes | None = None,
        limits: LoadLimits = DEFAULT_LIMITS,
        check_finite: bool = True,
    ) -> None:
        """Store already-validated parts; use :func:`open_memory` instead of calling this."""
        self.path = path
        self._manifest = manifest
        self.format_version_on_disk = format_version_on_disk
        self._transitions = transitions
        self._episodes_table = episodes_table
        self._episodes = episodes
        self._tensor_files = tensor_files
        self._extra_files = extra_files
        self._handles = dict(handles or {})
        self._raw_manifest = raw_manifest
        self.limits = limits
        self.check_finite = bool(check_finite)
        self._finite_columns: set[str] = set()
        self._finite_episodes = False
        self.budget = AllocationBudget(self.total_bytes, limits)

    # ------------------------------------------------------------------ metadata
    @property
    def manifest(self) -> dict[str, Any]:
        """A copy of the manifest (migrated to the current version when needed)."""
        return copy.deepcopy(self._manifest)

    @property
    def num_transitions(self) -> int:
        """Number of transition rows."""
        return self._transitions.num_rows

    @property
    def num_episodes(self) -> int:
        """Number of episode (segment) rows."""
        return len(self._episodes["start"])

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        """The manifest's ``files`` section: name -> ``{"sha256", "bytes"}``."""
        return copy.deepcopy(self._manifest["files"])

    @property
    def total_bytes(self) -> int:
        """Bytes of all the memory's files, as opened (the manifest included)."""
        files = (
            sum(h.size for h in self._handles.values())
            if self._handles
            else sum(int(e["bytes"]) for e in self._manifest["files"].values())
        )
        return int(files + len(self._raw_manifest or b""))

    @property
    def compression(self) -> str | None:
        """Codec the manifest declares for the Arrow files (``None``: uncompressed)."""
        return self._manifest.get("compression")

    def __repr__(self) -> str:
        return (
            f"MemoryReader({str(self.path)!r}, transitions={self.num_transitions}, "
            f"episodes={self.num_episodes}, tensor_files={self.tensor_files})"
        )

    # ------------------------------------------------------------------ bounded allocation
    def check_allocation(self, field: str, nbytes: int, *, backed_by: str | None = None) -> None:
        """Refuse, before it happens, an allocation that a manifest field asks for unless the files back it.

        Call it for every allocation whose size comes from the manifest rather than
        from the files (a preallocated capacity, a number of slots, an encoder built
        from its config). Charges add up over the reader's lifetime.

        Args:
            field: The manifest field, e.g. ``"store.config.capacity"`` (named in the error).
            nbytes: Bytes about to be allocated.
            backed_by: A tensor file stem (``"encoder"``) or file name whose bytes the
                allocation mirrors; it is then bounded by that file's size instead of
                being charged to the shared budget.

        Raises:
            LimitExceededError: If the allocation is over its bound.
            MissingFileError: If ``backed_by`` names no file of the memory.
        """
        if backed_by is None:
            self.budget.charge(field, nbytes)
            return
        if backed_by in self._tensor_files:
            backing = self._tensor_files[backed_by].data_bytes
        elif backed_by in self._handles:
            backing = self._handles[backed_by].size
        else:
            raise MissingFileError(
                f"{field}: backed_by={backed_by!r} names no file of this memory; tensor files: {self.tensor_files}",
                field=field,
            )
        self.budget.charge(field, nbytes, backing_bytes=backing)

    def tensor_nbytes(self, file_stem: str) -> int:
        """Return the bytes of tensor data in ``<file_stem>.safetensors`` (from its validated header)."""
        return self.tensor_file(file_stem).data_bytes

    # ------------------------------------------------------------------ finiteness
    def _finite(self, check: bool | None) -> bool:
        return self.check_finite if check is None else bool(check)

    # ------------------------------------------------------------------ transitions
    @property
    def column_names(self) -> list[str]:
        """Transition column names, in file order."""
        return self._transitions.column_names

    def column_spec(self, name: str) -> tuple[np.dtype[Any], tuple[int, ...]]:
        """Return ``(dtype, per-row shape)`` of a transition column without reading it.

        Raises:
            SchemaError: If there is no such column.
        """
        info = self._transitions.infos.get(name)
        if info is None:
            raise SchemaError(
                f"{TRANSITIONS_FILE}: no column named {name!r}; columns present: {self.column_names}", field=name
            )
        return info.dtype, info.shape

    def column(self, name: str, *, check_finite: bool | None = None) -> np.ndarray:
        """Return a transition column as an array ``[num_transitions, *shape]``.

        The array is a read-only zero-copy view of the memory-mapped file when
        the file is uncompressed and holds one record batch; otherwise (bool
        columns, several batches, compression) it is a fresh copy.

        Args:
            name: Column name.
            check_finite: Refuse NaN/inf in a float column (default: the reader's setting).

        Raises:
            SchemaError: If there is no such column.
            NonFiniteValueError: If the column holds NaN or an infinity (with ``check_finite``).
            CorruptFileError: If the column's data is damaged.
        """
        values = self._transitions.column(name)
        if self._finite(check_finite) and name not in self._finite_columns:
            _assert_finite(values, f"{TRANSITIONS_FILE}: column {name!r}")
            self._finite_columns.add(name)
        return values

    def columns(self, names: Iterable[str] | None = None, *, check_finite: bool | None = None) -> dict[str, np.ndarray]:
        """Return several transition columns (all by default), see :meth:`column`."""
        chosen = self.column_names if names is None else names
        return {name: self.column(name, check_finite=check_finite) for name in chosen}

    @property
    def transitions_table(self) -> pa.Table:
        """The transition table as a pyarrow Table (zero-copy over the map when uncompressed; not checked for NaN)."""
        return self._transitions.table()

    # ------------------------------------------------------------------ episodes
    @property
    def episode_column_names(self) -> list[str]:
        """Episode table column names."""
        return list(self._episodes)

    def episodes(self, *, check_finite: bool | None = None) -> dict[str, np.ndarray]:
        """Return the episode table: ``episode_id``, ``start``, ``length``, ``return``, ``success`` and extras.

        Raises:
            NonFiniteValueError: If a float column (``return``) holds NaN or an
                infinity (with ``check_finite``, default: the reader's setting).
        """
        if self._finite(check_finite) and not self._finite_episodes:
            for name, values in self._episodes.items():
                _assert_finite(values, f"{EPISODES_FILE}: column {name!r}")
            self._finite_episodes = True
        return dict(self._episodes)

    # ------------------------------------------------------------------ tensors
    @property
    def tensor_files(self) -> list[str]:
        """Stems of the safetensors files (``keys`` for ``keys.safetensors``)."""
        return sorted(self._tensor_files)

    def tensor_file(self, stem: str) -> SafetensorsFile:
        """The opened safetensors file ``<stem>.safetensors`` (header and mapped bytes).

        Raises:
            MissingFileError: The memory has no such tensor file.
        """
        try:
            return self._tensor_files[stem]
        except KeyError:
            raise MissingFileError(
                f"{stem}{SAFETENSORS_SUFFIX}: not part of this memory; tensor files: {self.tensor_files}",
                field=f"{stem}{SAFETENSORS_SUFFIX}",
            ) from None

    def tensor_names(self, file_stem: str) -> list[str]:
        """Return the tensor names stored in ``<file_stem>.safetensors``."""
        return self.tensor_file(file_stem).names()

    def tensor_metadata(self, file_stem: str) -> dict[str, str]:
        """Return the ``__metadata__`` string map of ``<file_stem>.safetensors``."""
        return dict(self.tensor_file(file_stem).header.metadata)

    def tensor_spec(self, file_stem: str, name: str) -> tuple[str, tuple[int, ...]]:
        """Return ``(safetensors dtype tag, shape)`` of a tensor without reading it."""
        entry = self.tensor_file(file_stem).entry(name)
        return entry.dtype, entry.shape

    def _checked(self, f: SafetensorsFile, name: str, values: np.ndarray, check: bool | None) -> np.ndarray:
        if self._finite(check) and name not in f.checked_finite:
            _assert_finite(values, f"{f.where}: tensor {name!r}")
            f.checked_finite.add(name)
        return values

    def tensor(self, file_stem: str, name: str, *, check_finite: bool | None = None) -> np.ndarray:
        """Return a tensor as a read-only zero-copy view of the memory-mapped file.

        Args:
            file_stem: Tensor file stem (``"keys"``).
            name: Tensor name.
            check_finite: Refuse NaN/inf in a float tensor (default: the reader's setting).

        Raises:
            MissingFileError: If there is no such tensor file.
            SchemaError: If there is no such tensor, or numpy cannot represent its dtype (BF16, F8).
            NonFiniteValueError: If the tensor holds NaN or an infinity (with ``check_finite``).
        """
        f = self.tensor_file(file_stem)
        return self._checked(f, name, f.view(name), check_finite)

    def read_tensors(self, file_stem: str, *, check_finite: bool | None = None) -> dict[str, np.ndarray]:
        """Return every tensor of ``<file_stem>.safetensors`` as writable arrays in RAM (see :meth:`tensor`)."""
        f = self.tensor_file(file_stem)
        return {name: self._checked(f, name, f.read(name), check_finite) for name in f.names()}

    # ------------------------------------------------------------------ extra files
    @property
    def extra_file_names(self) -> list[str]:
        """Names of the opaque extra files (e.g. ``index.faiss``)."""
        return sorted(self._extra_files)

    def extra_file(self, name: str) -> bytes:
        """Return the bytes of an extra file (read from the file opened with the memory).

        Raises:
            MissingFileError: If the memory has no such extra file.
            ChecksumMismatchError: If its size differs from the manifest's.
        """
        handle = self._extra_files.get(name)
        if handle is None:
            raise MissingFileError(
                f"{name}: not an extra file of this memory; extra files: {self.extra_file_names}", field=name
            )
        data = handle.read()
        expected = self._manifest["files"][name]["bytes"]
        if len(data) != expected:
            raise ChecksumMismatchError(
                f"{handle.path}: {len(data)} bytes, {MANIFEST_FILE} records {expected}", field=name
            )
        return data

    # ------------------------------------------------------------------ whole-memory operations
    def verify(self, full: bool = True) -> None:
        """Check the memory thoroughly; raise on the first problem.

        Always: every listed file still has its recorded size; every column
        decodes, float columns hold no NaN/inf, each transition's ``episode_id``
        matches its episode row. With ``full``: SHA-256 of every file and of the
        manifest itself. Everything is read from the files opened with the memory.

        Raises:
            FormatError: The matching subclass for the first problem found.
        """
        files = {name: self._manifest["files"][name] for name in self._handles if name in self._manifest["files"]}
        handles = {name: self._handles[name] for name in files}
        _check_sizes(handles, files, current=True)
        if full:
            _check_digests(handles, files)
            if self.format_version_on_disk == FORMAT_VERSION and self._raw_manifest is not None:
                check_self_digest(self._raw_manifest, parse_manifest(self._raw_manifest, self.limits))
        for name in self.column_names:
            values = self._transitions.column(name)
            _assert_finite(values, f"{TRANSITIONS_FILE}: column {name!r}")
        for name, values in self._episodes.items():
            _assert_finite(values, f"{EPISODES_FILE}: column {name!r}")
        check_episode_ids(
            self._transitions.column("episode_id"),
            self._episodes["episode_id"],
            self._episodes["length"],
            f"{TRANSITIONS_FILE} vs {EPISODES_FILE}",
        )
        for f in self._tensor_files.values():
            for name in f.names():
                f.view(name, raw=True)

    def load_all(self, *, check_finite: bool | None = None) -> dict[str, Any]:
        """Read the whole memory into RAM.

        Arrow files are read with one ``pread`` each and decoded in place;
        tensors are read straight into fresh arrays. Transition and episode
        arrays are writable views of the per-file buffers (bool columns are
        unpacked copies). Everything comes from the files opened with the memory.

        Args:
            check_finite: Refuse NaN/inf in float columns and tensors (default:
                the reader's setting, True unless opened with ``check_finite=False``).

        Returns:
            ``{"manifest", "transitions", "episodes", "tensors": {stem: {name: array}}, "extra_files": {name: bytes}}``.

        Raises:
            NonFiniteValueError: A float column or tensor holds NaN or an infinity (naming it).
            FormatError: If any file turns out damaged.
        """
        finite = self._finite(check_finite)
        src = self._transitions
        table = ArrowTable(src.handle, src.where, in_memory=True, compressed=src.compressed, limits=self.limits)
        check_transition_columns(table.infos, src.where)
        transitions = table.columns()
        if table.num_rows != self.num_transitions:
            raise InconsistentCountsError(
                f"{TRANSITIONS_FILE}: has {table.num_rows} rows now, {self.num_transitions} when opened"
            )
        if self._episodes_table is not None:
            ep_src = self._episodes_table
            ep_table = ArrowTable(
                ep_src.handle, ep_src.where, in_memory=True, compressed=ep_src.compressed, limits=self.limits
            )
            check_required_columns(ep_table.infos, REQUIRED_EPISODE_COLUMNS, EPISODES_FILE)
            episodes = ep_table.columns()
        else:
            episodes = {k: np.array(v) for k, v in self._episodes.items()}
        check_tiling(episodes["start"], episodes["length"], self.num_transitions, EPISODES_FILE)
        check_episode_ids(
            transitions["episode_id"],
            episodes["episode_id"],
            episodes["length"],
            f"{TRANSITIONS_FILE} vs {EPISODES_FILE}",
        )
        if finite:
            for name, values in transitions.items():
                _assert_finite(values, f"{TRANSITIONS_FILE}: column {name!r}")
            for name, values in episodes.items():
                _assert_finite(values, f"{EPISODES_FILE}: column {name!r}")
        tensors = {stem: self.read_tensors(stem, check_finite=finite) for stem in self.tensor_files}
        extra = {name: self.extra_file(name) for name in self.extra_file_names}
        return {
            "manifest": self.manifest,
            "transitions": transitions,
            "episodes": episodes,
            "tensors": tensors,
            "extra_files": extra,
        }

    def close(self) -> None:
        """Close the files held by the reader (arrays already handed out stay valid)."""
        for handle in self._handles.values():
            handle.close()
        for f in self._tensor_files.values():
            f.close()

    def __enter__(self) -> MemoryReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open(
    root: Path, verify: str, migrate: bool, limits: LoadLimits = DEFAULT_LIMITS, check_finite: bool = True
) -> MemoryReader:
    snapshot = Snapshot(root)
    handles: dict[str, FileHandle] = {}
    try:
        raw = read_manifest_from(snapshot, limits)
        doc = parse_manifest(raw, limits)
        version = detect_version(doc)
        if version == FORMAT_VERSION and verify == "full":
            check_self_digest(raw, doc)
        files = validate_files_section(doc, limits)
        handles = _open_files(snapshot, files, verify)
        reader = _build(root, raw, doc, version, files, handles, migrate, limits, check_finite)
    except BaseException:
        for handle in handles.values():
            handle.close()
        raise
    finally:
        snapshot.close()
    return reader


def _build(
    root: Path,
    raw: bytes,
    doc: dict[str, Any],
    version: int,
    files: dict[str, dict[str, Any]],
    handles: dict[str, FileHandle],
    migrate: bool,
    limits: LoadLimits,
    check_finite: bool,
) -> MemoryReader:
    ctx: MigrationContext | None = None
    if version < FORMAT_VERSION:
        if not migrate:
            raise UnsupportedVersionError(
                f"{root / MANIFEST_FILE}: format version {version}, older than {FORMAT_VERSION}; open it with "
                "migrate=True (the default) to upgrade it in memory, then re-save it to upgrade it on disk"
            )
        doc, ctx = migrate_manifest(doc, version, root, handles=handles, limits=limits)
        validate_manifest(doc, required_present=False)
    else:
        validate_manifest(doc)
    counts = doc["counts"]

    def physical(name: str) -> str | None:
        return ctx.physical(name) if ctx is not None else name

    t_name = physical(TRANSITIONS_FILE)
    if t_name is None or t_name not in handles:
        raise ManifestError(
            f"{MANIFEST_FILE}: 'files' must list the transition table {TRANSITIONS_FILE!r}", field="files"
        )
    compressed = doc.get("compression") is not None
    transitions = ArrowTable(handles[t_name], t_name, compressed=compressed, limits=limits)
    check_transition_columns(transitions.infos, t_name)
    if transitions.num_rows != counts["transitions"]:
        raise InconsistentCountsError(
            f"{t_name}: has {transitions.num_rows} rows but {MANIFEST_FILE} counts.transitions says "
            f"{counts['transitions']}; the memory is inconsistent — re-save it",
            field="counts.transitions",
        )

    episodes_table: ArrowTable | None = None
    if ctx is not None and EPISODES_FILE in ctx.derived:
        episodes = dict(ctx.derived[EPISODES_FILE])
        infos = _infos_of(episodes)
    else:
        e_name = physical(EPISODES_FILE)
        if e_name is None or e_name not in handles:
            raise ManifestError(
                f"{MANIFEST_FILE}: 'files' must list the episode table {EPISODES_FILE!r}", field="files"
            )
        episodes_table = ArrowTable(handles[e_name], e_name, compressed=compressed, limits=limits)
        infos = episodes_table.infos
        check_required_columns(infos, REQUIRED_EPISODE_COLUMNS, e_name)
        episodes = episodes_table.columns()
    check_required_columns(infos, REQUIRED_EPISODE_COLUMNS, EPISODES_FILE)
    n_ep = len(episodes["start"])
    if n_ep != counts["episodes"]:
        raise InconsistentCountsError(
            f"{EPISODES_FILE}: has {n_ep} rows but {MANIFEST_FILE} counts.episodes says {counts['episodes']}; "
            "the memory is inconsistent — re-save it",
            field="counts.episodes",
        )
    check_tiling(episodes["start"], episodes["length"], transitions.num_rows, EPISODES_FILE)
    check_success_values(episodes["success"], EPISODES_FILE)

    table_files = {n for n in (t_name, physical(EPISODES_FILE)) if n is not None}
    tensor_files: dict[str, SafetensorsFile] = {}
    extra: dict[str, FileHandle] = {}
    for name, handle in handles.items():
        if name in table_files:
            continue
        if "/" not in name and name.endswith(SAFETENSORS_SUFFIX):
            stem = check_stem(name[: -len(SAFETENSORS_SUFFIX)], f"{MANIFEST_FILE}: files entry {name!r}")
            tensor_files[stem] = SafetensorsFile(handle, name, limits)
        else:
            extra[name] = handle
    for stem, entries in (doc.get("row_aligned") or {}).items():
        for tensor_name, kind in entries.items():
            entry = tensor_files[stem].entry(tensor_name)
            rows = entry.shape[0] if entry.shape else None
            if rows != counts[kind]:
                raise InconsistentCountsError(
                    f"{stem}{SAFETENSORS_SUFFIX}: tensor {tensor_name!r} has shape {list(entry.shape)}, but "
                    f"{MANIFEST_FILE} declares it row-aligned with the {counts[kind]} {kind}; the leading "
                    "dimension must equal that count",
                    field=f"row_aligned.{stem}.{tensor_name}",
                )
    return MemoryReader(
        path=root,
        manifest=doc,
        format_version_on_disk=version,
        transitions=transitions,
        episodes_table=episodes_table,
        episodes=episodes,
        tensor_files=tensor_files,
        extra_files=extra,
        handles=handles,
        raw_manifest=raw,
        limits=limits,
        check_finite=check_finite,
    )


def _open_retrying(root: Path, verify: str, migrate: bool, limits: LoadLimits, check_finite: bool) -> MemoryReader:
    """Open ``root``, starting again if a concurrent save replaced it midway."""
    for attempt in range(_OPEN_ATTEMPTS):
        try:
            return _open(root, verify, migrate, limits, check_finite)
        except DirectoryReplacedError:
            logger.debug("%s was replaced while being opened (attempt %d); opening it again", root, attempt + 1)
    raise MemoryChangedError(
        f"{root}: replaced by another save on each of {_OPEN_ATTEMPTS} attempts to open it; "
        "wait for the saves to finish and open it again",
        field=str(root),
    )


def open_memory(
    path: str | os.PathLike[str],
    *,
    verify: VerifyMode = "size",
    migrate: bool = True,
    limits: LoadLimits | None = None,
    check_finite: bool = True,
) -> MemoryReader:
    """Open a memory directory for reading.

    Reads and validates ``manifest.json``, opens every listed file once (all
    later reads use these open files, so a concurrent save never mixes two
    versions), checks sizes (and digests), parses the Arrow footers/schemas and
    safetensors headers, bounds every declared size by the files and ``limits``,
    and reads the (small) episode table to check that episodes tile the
    transitions. No transition or tensor data is read.

    If ``path`` does not exist but a complete ``.<name>.old-*`` sibling does
    (a save that used the rename-aside fallback was interrupted), that sibling
    is opened instead and a warning is logged; :func:`recover_memory` moves it back.

    Args:
        path: The memory directory.
        verify: ``"size"`` (default) compares each file's size with the
            manifest; ``"full"`` also checks SHA-256 digests (of the manifest
            too); ``"none"`` only checks that the files exist.
        migrate: Upgrade older format versions in memory; if False, they raise.
        limits: Resource limits (default :data:`hippo_format.limits.DEFAULT_LIMITS`);
            raise them to open a larger memory from a source you trust.
        check_finite: Refuse NaN and infinities in float columns, episode columns
            and tensors when they are read (:class:`NonFiniteValueError` naming the
            column). Pass False to read such data anyway (e.g. to inspect it).

    Returns:
        A :class:`MemoryReader`.

    Raises:
        MissingFileError: The directory, manifest or a listed file is missing.
        ManifestError: The manifest is not valid UTF-8 JSON of the right shape.
        LimitExceededError: A size, count or depth is over ``limits``.
        UnsupportedVersionError: Another format, or a version this library cannot read.
        UnsafePathError: A listed file name escapes the directory.
        ChecksumMismatchError: A size or digest differs from the manifest.
        TruncatedFileError: A file is shorter than recorded or than its own header says.
        CorruptFileError: A file cannot be parsed, or is not a regular file.
        SchemaError: A required column is missing or mistyped.
        InconsistentCountsError: Counts disagree or episodes do not tile transitions.
        MemoryChangedError: Concurrent saves replaced the directory on every attempt.
    """
    if verify not in _VERIFY_MODES:
        raise ValueError(f"verify must be one of {_VERIFY_MODES}, got {verify!r}")
    if limits is None:
        limits = DEFAULT_LIMITS
    elif not isinstance(limits, LoadLimits):
        raise TypeError(f"limits: expected a hippo_format.LoadLimits, got {type(limits).__name__}")
    root = Path(path)
    lock = root.parent / f".{root.name}.lock"
    for attempt in range(_MISSING_ATTEMPTS):
        try:
            return _open_path(root, verify, migrate, limits, check_finite)
        except RootMissingError:
            # A fallback save (no renameat2) leaves the path missing for an instant between its
            # two renames; where saves happen (a lock file exists) look again before giving up.
            if attempt == _MISSING_ATTEMPTS - 1 or not lock.exists():
                raise
            time.sleep(0.002 * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _open_path(root: Path, verify: str, migrate: bool, limits: LoadLimits, check_finite: bool) -> MemoryReader:
    if not os.path.lexists(root):
        for candidate in set_aside_candidates(root):
            try:
                reader = _open_retrying(candidate, verify, migrate, limits, check_finite)
            except FormatError as exc:
                logger.debug("set-aside copy %s is not usable: %s", candidate, exc)
                continue
            logger.warning(
                "%s is missing after an interrupted save; reading the previous memory from %s "
                "(call hippo_format.recover_memory(%r) to move it back)",
                root,
                candidate,
                str(root),
            )
            return reader
        raise RootMissingError(f"{root}: no such memory directory", field=str(root))
    if not root.is_dir():
        raise MissingFileError(
            f"{root}: not a directory; a memory is a directory holding {MANIFEST_FILE}", field=str(root)
        )
    return _open_retrying(root, verify, migrate, limits, check_finite)


def recover_memory(path: str | os.PathLike[str]) -> bool:
    """Move a complete set-aside previous memory back to ``path`` after an interrupted save.

    Only needed where ``renameat2`` is unavailable (the fallback save protocol);
    readers already use the set-aside copy on their own.

    Args:
        path: The memory directory that is missing.

    Returns:
        True if a memory was moved back, False if there was nothing to do.
    """
    root = Path(path)
    if not root.parent.is_dir():
        return False
    with save_lock(root.parent, root.name):
        if os.path.lexists(root):
            return False
        for candidate in set_aside_candidates(root):
            try:
                _open(candidate, "size", True).close()
            except FormatError:
                continue
            os.rename(candidate, root)
            from hippo_format._io import fsync_dir

            fsync_dir(root.parent)
            logger.info("restored %s from %s", root, candidate)
            return True
    return False
