"""Opening memories: cheap validation at open, zero-copy access afterwards."""

from __future__ import annotations

import copy
import logging
import os
import stat
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from hippo_format._arrow import ArrowTable
from hippo_format._atomic import save_lock, set_aside_candidates
from hippo_format._io import sha256_file
from hippo_format._manifest import (
    check_self_digest,
    detect_version,
    parse_manifest,
    read_manifest_bytes,
    validate_files_section,
    validate_manifest,
)
from hippo_format._paths import resolve_inside
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
    check_finite,
    check_required_columns,
    check_stem,
    check_success_values,
    check_tiling,
    check_transition_columns,
)
from hippo_format.errors import (
    ChecksumMismatchError,
    CorruptFileError,
    FormatError,
    InconsistentCountsError,
    ManifestError,
    MissingFileError,
    SchemaError,
    TruncatedFileError,
    UnsupportedVersionError,
)
from hippo_format.migrations import MigrationContext, migrate_manifest

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["MemoryReader", "VerifyMode", "open_memory", "recover_memory"]

logger = logging.getLogger(__name__)

VerifyMode = Literal["size", "full", "none"]
_VERIFY_MODES = ("size", "full", "none")


def _check_files(root: Path, files: dict[str, dict[str, Any]], mode: str) -> dict[str, Path]:
    """Resolve every listed file inside ``root`` and check it per ``mode``; return name -> path."""
    paths: dict[str, Path] = {}
    for name, entry in files.items():
        where = f"{MANIFEST_FILE}: files entry"
        path = resolve_inside(root, name, where)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise MissingFileError(
                f"{path}: missing, but {MANIFEST_FILE} lists it ({entry['bytes']} bytes); "
                "the memory is incomplete — restore the file or re-save the memory"
            ) from None
        except OSError as exc:
            raise CorruptFileError(f"{path}: cannot stat it ({exc})") from None
        if not stat.S_ISREG(st.st_mode):
            raise CorruptFileError(f"{path}: expected a regular file, found something else (directory, device?)")
        if mode != "none":
            expected = entry["bytes"]
            if st.st_size < expected:
                raise TruncatedFileError(
                    f"{path}: {st.st_size} bytes, but {MANIFEST_FILE} records {expected}; the file is "
                    "truncated — restore it or re-save the memory"
                )
            if st.st_size > expected:
                raise ChecksumMismatchError(
                    f"{path}: {st.st_size} bytes, but {MANIFEST_FILE} records {expected}; the file was "
                    "modified after the memory was saved"
                )
        paths[name] = path
    if mode == "full" and paths:
        names = list(paths)
        with ThreadPoolExecutor(max_workers=min(4, len(names)), thread_name_prefix="hippo-verify") as pool:
            digests = list(pool.map(lambda n: sha256_file(paths[n]), names))
        for name, (digest, size) in zip(names, digests, strict=False):
            expected = files[name]["sha256"]
            if digest != expected or size != files[name]["bytes"]:
                raise ChecksumMismatchError(
                    f"{paths[name]}: SHA-256 is {digest} ({size} bytes) but {MANIFEST_FILE} records "
                    f"{expected} ({files[name]['bytes']} bytes); the file is corrupt or was modified — "
                    "restore it or re-save the memory"
                )
    return paths


def _infos_of(columns: dict[str, np.ndarray]) -> dict[str, ColumnInfo]:
    return {name: ColumnInfo(a.dtype, tuple(a.shape[1:])) for name, a in columns.items()}


class MemoryReader:
    """Read access to one memory directory. Create it with :func:`open_memory`.

    Arrow tables are memory-mapped and safetensors files are mapped on first
    use, so opening costs the same for any memory size. Arrays from
    :meth:`column` and :meth:`tensor` are read-only views of the mapped files
    (when the file is uncompressed and written as one record batch, which is
    the writer's default); :meth:`load_all` copies everything into RAM.

    Attributes:
        path: The directory the data is read from (a set-aside ``.old-*``
            sibling when the target was missing after an interrupted save).
        format_version_on_disk: Version found on disk, before migrations.
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
        extra_files: dict[str, Path],
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
    def compression(self) -> str | None:
        """Codec the manifest declares for the Arrow files (``None``: uncompressed)."""
        return self._manifest.get("compression")

    def __repr__(self) -> str:
        return (
            f"MemoryReader({str(self.path)!r}, transitions={self.num_transitions}, "
            f"episodes={self.num_episodes}, tensor_files={self.tensor_files})"
        )

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
            raise SchemaError(f"{TRANSITIONS_FILE}: no column named {name!r}; columns present: {self.column_names}")
        return info.dtype, info.shape

    def column(self, name: str) -> np.ndarray:
        """Return a transition column as an array ``[num_transitions, *shape]``.

        The array is a read-only zero-copy view of the memory-mapped file when
        the file is uncompressed and holds one record batch; otherwise (bool
        columns, several batches, compression) it is a fresh copy.

        Raises:
            SchemaError: If there is no such column.
            CorruptFileError: If the column's data is damaged.
        """
        return self._transitions.column(name)

    def columns(self, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Return several transition columns (all by default), see :meth:`column`."""
        return {name: self.column(name) for name in (self.column_names if names is None else names)}

    @property
    def transitions_table(self) -> pa.Table:
        """The transition table as a pyarrow Table (zero-copy over the memory map when uncompressed)."""
        return self._transitions.table()

    # ------------------------------------------------------------------ episodes
    @property
    def episode_column_names(self) -> list[str]:
        """Episode table column names."""
        return list(self._episodes)

    def episodes(self) -> dict[str, np.ndarray]:
        """Return the episode table: ``episode_id``, ``start``, ``length``, ``return``, ``success`` and extras."""
        return dict(self._episodes)

    # ------------------------------------------------------------------ tensors
    @property
    def tensor_files(self) -> list[str]:
        """Stems of the safetensors files (``keys`` for ``keys.safetensors``)."""
        return sorted(self._tensor_files)

    def _tensor_file(self, stem: str) -> SafetensorsFile:
        try:
            return self._tensor_files[stem]
        except KeyError:
            raise MissingFileError(
                f"{stem}{SAFETENSORS_SUFFIX}: not part of this memory; tensor files: {self.tensor_files}"
            ) from None

    def tensor_names(self, file_stem: str) -> list[str]:
        """Return the tensor names stored in ``<file_stem>.safetensors``."""
        return self._tensor_file(file_stem).names()

    def tensor_metadata(self, file_stem: str) -> dict[str, str]:
        """Return the ``__metadata__`` string map of ``<file_stem>.safetensors``."""
        return dict(self._tensor_file(file_stem).header.metadata)

    def tensor_spec(self, file_stem: str, name: str) -> tuple[str, tuple[int, ...]]:
        """Return ``(safetensors dtype tag, shape)`` of a tensor without reading it."""
        entry = self._tensor_file(file_stem).entry(name)
        return entry.dtype, entry.shape

    def tensor(self, file_stem: str, name: str) -> np.ndarray:
        """Return a tensor as a read-only zero-copy view of the memory-mapped file.

        Raises:
            MissingFileError: If there is no such tensor file.
            SchemaError: If there is no such tensor, or numpy cannot represent its dtype (BF16, F8).
        """
        return self._tensor_file(file_stem).view(name)

    def read_tensors(self, file_stem: str) -> dict[str, np.ndarray]:
        """Return every tensor of ``<file_stem>.safetensors`` as writable arrays in RAM."""
        f = self._tensor_file(file_stem)
        return {name: f.read(name) for name in f.names()}

    # ------------------------------------------------------------------ extra files
    @property
    def extra_file_names(self) -> list[str]:
        """Names of the opaque extra files (e.g. ``index.faiss``)."""
        return sorted(self._extra_files)

    def extra_file(self, name: str) -> bytes:
        """Return the bytes of an extra file.

        Raises:
            MissingFileError: If the memory has no such extra file.
            ChecksumMismatchError: If its size differs from the manifest's.
        """
        path = self._extra_files.get(name)
        if path is None:
            raise MissingFileError(f"{name}: not an extra file of this memory; extra files: {self.extra_file_names}")
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise MissingFileError(f"{path}: disappeared after the memory was opened") from None
        expected = self._manifest["files"][name]["bytes"]
        if len(data) != expected:
            raise ChecksumMismatchError(f"{path}: {len(data)} bytes, {MANIFEST_FILE} records {expected}")
        return data

    # ------------------------------------------------------------------ whole-memory operations
    def verify(self, full: bool = True) -> None:
        """Check the memory thoroughly; raise on the first problem.

        Always: every listed file exists with its recorded size; every column
        decodes, float columns hold no NaN/inf, each transition's ``episode_id``
        matches its episode row. With ``full``: SHA-256 of every file and of the
        manifest itself.

        Raises:
            FormatError: The matching subclass for the first problem found.
        """
        files = self._manifest["files"]
        _check_files(self.path, files, "full" if full else "size")
        if full and self.format_version_on_disk == FORMAT_VERSION:
            raw = read_manifest_bytes(self.path)
            check_self_digest(raw, parse_manifest(raw))
        for name in self.column_names:
            values = self.column(name)
            check_finite(values, f"{TRANSITIONS_FILE}: column {name!r}")
        for name, values in self._episodes.items():
            check_finite(values, f"{EPISODES_FILE}: column {name!r}")
        check_episode_ids(self.column("episode_id"), self._episodes["episode_id"], self._episodes["length"], f"{TRANSITIONS_FILE} vs {EPISODES_FILE}")
        for f in self._tensor_files.values():
            for name in f.names():
                f.view(name, raw=True)

    def load_all(self) -> dict[str, Any]:
        """Read the whole memory into RAM.

        Arrow files are read with one ``read`` each and decoded in place;
        tensors are read straight into fresh arrays. Transition and episode
        arrays are writable views of the per-file buffers (bool columns are
        unpacked copies).

        Returns:
            ``{"manifest", "transitions", "episodes", "tensors": {stem: {name: array}}, "extra_files": {name: bytes}}``.

        Raises:
            FormatError: If any file turns out damaged.
        """
        transitions_path = self._transitions.path
        table = ArrowTable(transitions_path, self._transitions.where, in_memory=True, compressed=self._transitions.compressed)
        check_transition_columns(table.infos, self._transitions.where)
        transitions = table.columns()
        if table.num_rows != self.num_transitions:
            raise InconsistentCountsError(
                f"{TRANSITIONS_FILE}: has {table.num_rows} rows now, {self.num_transitions} when opened"
            )
        if self._episodes_table is not None:
            ep_table = ArrowTable(
                self._episodes_table.path, self._episodes_table.where, in_memory=True, compressed=self._episodes_table.compressed
            )
            check_required_columns(ep_table.infos, REQUIRED_EPISODE_COLUMNS, EPISODES_FILE)
            episodes = ep_table.columns()
        else:
            episodes = {k: np.array(v) for k, v in self._episodes.items()}
        check_tiling(episodes["start"], episodes["length"], self.num_transitions, EPISODES_FILE)
        check_episode_ids(transitions["episode_id"], episodes["episode_id"], episodes["length"], f"{TRANSITIONS_FILE} vs {EPISODES_FILE}")
        tensors = {stem: self.read_tensors(stem) for stem in self.tensor_files}
        extra = {name: self.extra_file(name) for name in self.extra_file_names}
        return {
            "manifest": self.manifest,
            "transitions": transitions,
            "episodes": episodes,
            "tensors": tensors,
            "extra_files": extra,
        }

    def close(self) -> None:
        """Release the file maps held by the reader (arrays already handed out stay valid)."""
        for f in self._tensor_files.values():
            f.close()

    def __enter__(self) -> MemoryReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open(root: Path, verify: str, migrate: bool) -> MemoryReader:
    raw = read_manifest_bytes(root)
    doc = parse_manifest(raw)
    version = detect_version(doc)
    if version == FORMAT_VERSION and verify == "full":
        check_self_digest(raw, doc)
    files = validate_files_section(doc)
    paths = _check_files(root, files, verify)
    ctx: MigrationContext | None = None
    if version < FORMAT_VERSION:
        if not migrate:
            raise UnsupportedVersionError(
                f"{root / MANIFEST_FILE}: format version {version}, older than {FORMAT_VERSION}; open it with "
                "migrate=True (the default) to upgrade it in memory, then re-save it to upgrade it on disk"
            )
        doc, ctx = migrate_manifest(doc, version, root)
        validate_manifest(doc, required_present=False)
    else:
        validate_manifest(doc)
    counts = doc["counts"]

    def physical(name: str) -> str | None:
        return ctx.physical(name) if ctx is not None else name

    t_name = physical(TRANSITIONS_FILE)
    if t_name is None or t_name not in paths:
        raise ManifestError(f"{MANIFEST_FILE}: 'files' must list the transition table {TRANSITIONS_FILE!r}")
    compressed = doc.get("compression") is not None
    transitions = ArrowTable(paths[t_name], t_name, compressed=compressed)
    check_transition_columns(transitions.infos, t_name)
    if transitions.num_rows != counts["transitions"]:
        raise InconsistentCountsError(
            f"{t_name}: has {transitions.num_rows} rows but {MANIFEST_FILE} counts.transitions says "
            f"{counts['transitions']}; the memory is inconsistent — re-save it"
        )

    episodes_table: ArrowTable | None = None
    if ctx is not None and EPISODES_FILE in ctx.derived:
        episodes = dict(ctx.derived[EPISODES_FILE])
        infos = _infos_of(episodes)
    else:
        e_name = physical(EPISODES_FILE)
        if e_name is None or e_name not in paths:
            raise ManifestError(f"{MANIFEST_FILE}: 'files' must list the episode table {EPISODES_FILE!r}")
        episodes_table = ArrowTable(paths[e_name], e_name, compressed=compressed)
        infos = episodes_table.infos
        check_required_columns(infos, REQUIRED_EPISODE_COLUMNS, e_name)
        episodes = episodes_table.columns()
    check_required_columns(infos, REQUIRED_EPISODE_COLUMNS, EPISODES_FILE)
    n_ep = len(episodes["start"])
    if n_ep != counts["episodes"]:
        raise InconsistentCountsError(
            f"{EPISODES_FILE}: has {n_ep} rows but {MANIFEST_FILE} counts.episodes says {counts['episodes']}; "
            "the memory is inconsistent — re-save it"
        )
    check_tiling(episodes["start"], episodes["length"], transitions.num_rows, EPISODES_FILE)
    check_success_values(episodes["success"], EPISODES_FILE)

    table_files = {n for n in (t_name, physical(EPISODES_FILE)) if n is not None}
    tensor_files: dict[str, SafetensorsFile] = {}
    extra: dict[str, Path] = {}
    for name, path in paths.items():
        if name in table_files:
            continue
        if "/" not in name and name.endswith(SAFETENSORS_SUFFIX):
            stem = check_stem(name[: -len(SAFETENSORS_SUFFIX)], f"{MANIFEST_FILE}: files entry {name!r}")
            tensor_files[stem] = SafetensorsFile(path, name)
        else:
            extra[name] = path
    for stem, entries in (doc.get("row_aligned") or {}).items():
        for tensor_name, kind in entries.items():
            entry = tensor_files[stem].entry(tensor_name)
            rows = entry.shape[0] if entry.shape else None
            if rows != counts[kind]:
                raise InconsistentCountsError(
                    f"{stem}{SAFETENSORS_SUFFIX}: tensor {tensor_name!r} has shape {list(entry.shape)}, but "
                    f"{MANIFEST_FILE} declares it row-aligned with the {counts[kind]} {kind}; the leading "
                    "dimension must equal that count"
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
    )


def open_memory(path: str | os.PathLike[str], *, verify: VerifyMode = "size", migrate: bool = True) -> MemoryReader:
    """Open a memory directory for reading.

    Reads and validates ``manifest.json``, checks the listed files, parses the
    Arrow footers/schemas and safetensors headers, and reads the (small) episode
    table to check that episodes tile the transitions. No transition or tensor
    data is read.

    If ``path`` does not exist but a complete ``.<name>.old-*`` sibling does
    (a save that used the rename-aside fallback was interrupted), that sibling
    is opened instead and a warning is logged; :func:`recover_memory` moves it back.

    Args:
        path: The memory directory.
        verify: ``"size"`` (default) compares each file's size with the
            manifest; ``"full"`` also checks SHA-256 digests (of the manifest
            too); ``"none"`` only checks that the files exist.
        migrate: Upgrade older format versions in memory; if False, they raise.

    Returns:
        A :class:`MemoryReader`.

    Raises:
        MissingFileError: The directory, manifest or a listed file is missing.
        ManifestError: The manifest is not valid UTF-8 JSON of the right shape.
        UnsupportedVersionError: Another format, or a version this library cannot read.
        UnsafePathError: A listed file name escapes the directory.
        ChecksumMismatchError: A size or digest differs from the manifest.
        TruncatedFileError: A file is shorter than recorded or than its own header says.
        CorruptFileError: A file cannot be parsed.
        SchemaError: A required column is missing or mistyped.
        InconsistentCountsError: Counts disagree or episodes do not tile transitions.
    """
    if verify not in _VERIFY_MODES:
        raise ValueError(f"verify must be one of {_VERIFY_MODES}, got {verify!r}")
    root = Path(path)
    if not os.path.lexists(root):
        for candidate in set_aside_candidates(root):
            try:
                reader = _open(candidate, verify, migrate)
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
        raise MissingFileError(f"{root}: no such memory directory")
    if not root.is_dir():
        raise MissingFileError(f"{root}: not a directory; a memory is a directory holding {MANIFEST_FILE}")
    return _open(root, verify, migrate)


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
                _open(candidate, "size", True)
            except FormatError:
                continue
            os.rename(candidate, root)
            from hippo_format._io import fsync_dir

            fsync_dir(root.parent)
            logger.info("restored %s from %s", root, candidate)
            return True
    return False
