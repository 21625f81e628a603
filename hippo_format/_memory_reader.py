"""The MemoryReader class: zero-copy access to an opened memory."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hippo_format._arrow import ArrowTable
from hippo_format._files import FileHandle
from hippo_format._manifest import (
    check_self_digest,
    parse_manifest,
)
from hippo_format._safetensors import SafetensorsFile
from hippo_format._schema import (
    EPISODES_FILE,
    FORMAT_VERSION,
    MANIFEST_FILE,
    REQUIRED_EPISODE_COLUMNS,
    SAFETENSORS_SUFFIX,
    TRANSITIONS_FILE,
    check_episode_ids,
    check_required_columns,
    check_tiling,
    check_transition_columns,
)
from hippo_format._schema import check_finite as _assert_finite
from hippo_format.errors import (
    ChecksumMismatchError,
    InconsistentCountsError,
    MissingFileError,
    SchemaError,
)
from hippo_format.limits import DEFAULT_LIMITS, AllocationBudget, LoadLimits

if TYPE_CHECKING:
    import pyarrow as pa
from hippo_format._verify import check_digests, check_sizes

__all__ = ["MemoryReader"]


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
    def verify(self, full: bool = True, *, sha256: bool = False) -> None:
        """Check the memory thoroughly; raise on the first problem.

        Always: every listed file still has its recorded size; every column
        decodes, float columns hold no NaN/inf, each transition's ``episode_id``
        matches its episode row. With ``full``: the digest of every file (XXH3-128
        where the manifest records one, SHA-256 otherwise or with ``sha256=True``)
        and the manifest's own SHA-256. Everything is read from the files opened
        with the memory.

        Raises:
            FormatError: The matching subclass for the first problem found.
        """
        files = {name: self._manifest["files"][name] for name in self._handles if name in self._manifest["files"]}
        handles = {name: self._handles[name] for name in files}
        check_sizes(handles, files, current=True)
        if full:
            check_digests(handles, files, prefer_fast=not sha256)
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
