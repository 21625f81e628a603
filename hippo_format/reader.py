"""Opening memories: cheap validation at open, zero-copy access afterwards."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Literal

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
from hippo_format._memory_reader import MemoryReader
from hippo_format._safetensors import SafetensorsFile
from hippo_format._schema import (
    EPISODES_FILE,
    FORMAT_VERSION,
    MANIFEST_FILE,
    REQUIRED_EPISODE_COLUMNS,
    SAFETENSORS_SUFFIX,
    TRANSITIONS_FILE,
    ColumnInfo,
    check_required_columns,
    check_stem,
    check_success_values,
    check_tiling,
    check_transition_columns,
)
from hippo_format._verify import open_files
from hippo_format.errors import (
    FormatError,
    InconsistentCountsError,
    ManifestError,
    MemoryChangedError,
    MissingFileError,
    UnsupportedVersionError,
)
from hippo_format.limits import DEFAULT_LIMITS, LoadLimits
from hippo_format.migrations import MigrationContext, migrate_manifest

__all__ = ["MemoryReader", "VerifyMode", "open_memory", "recover_memory"]

logger = logging.getLogger(__name__)

VerifyMode = Literal["size", "full", "sha256", "none"]
_VERIFY_MODES = ("size", "full", "sha256", "none")
#: Attempts to open a memory whose directory keeps being replaced by concurrent saves.
_OPEN_ATTEMPTS = 8
#: Attempts (with short sleeps, about 0.1 s in all) to open a path that is missing while saves happen beside it.
_MISSING_ATTEMPTS = 6


def _infos_of(columns: dict[str, np.ndarray]) -> dict[str, ColumnInfo]:
    return {name: ColumnInfo(a.dtype, tuple(a.shape[1:])) for name, a in columns.items()}


def _open(
    root: Path, verify: str, migrate: bool, limits: LoadLimits = DEFAULT_LIMITS, check_finite: bool = True
) -> MemoryReader:
    snapshot = Snapshot(root)
    handles: dict[str, FileHandle] = {}
    try:
        raw = read_manifest_from(snapshot, limits)
        doc = parse_manifest(raw, limits)
        version = detect_version(doc)
        if version == FORMAT_VERSION and verify in ("full", "sha256"):
            check_self_digest(raw, doc)
        files = validate_files_section(doc, limits)
        handles = open_files(snapshot, files, verify)
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
            manifest; ``"full"`` also checks every file's digest (XXH3-128 where
            the manifest records one, else SHA-256) and the manifest's own
            SHA-256; ``"sha256"`` is ``"full"`` with SHA-256 for every file (for
            digests compared against a trusted source); ``"none"`` only checks
            that the files exist.
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
