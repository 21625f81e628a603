"""Upgrading older memories to the current format version, in memory and read-only.

A migration upgrades a manifest from version ``v`` to ``v + 1``. It may also
tell the reader that a file the current layout expects lives under another
name (:meth:`MigrationContext.rename_file`) or has to be computed from other
files (:meth:`MigrationContext.derive_table`). The reader applies the chain of
migrations from the version on disk up to :data:`hippo_format.FORMAT_VERSION`
every time it opens the memory; nothing on disk is rewritten. Saving the
memory again (``write_memory``) writes the current version.

Register a migration with::

    @register_migration(1)
    def _v1_to_v2(manifest: dict, ctx: MigrationContext) -> dict:
        new = dict(manifest, format_version=2)
        ...
        return new

Version 0 (pre-release) is the worked example shipped here:

* the manifest had ``"version": 0`` instead of ``"format_version"`` and a
  top-level ``"num_transitions"`` instead of ``"counts"``;
* the transition table was stored as ``episodes.arrow``;
* there was no per-episode table: episodes are the runs of equal consecutive
  ``episode_id`` values in the transition table.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from hippo_format._files import FileHandle
from hippo_format._schema import EPISODES_FILE, FORMAT_VERSION, MANIFEST_FILE, TRANSITIONS_FILE
from hippo_format.errors import ManifestError, MissingFileError, SchemaError, UnsupportedVersionError
from hippo_format.limits import DEFAULT_LIMITS, LoadLimits

__all__ = ["MigrationContext", "Migration", "migrate_manifest", "register_migration", "registered_migrations"]

logger = logging.getLogger(__name__)

Migration = Callable[[dict[str, Any], "MigrationContext"], dict[str, Any]]

_REGISTRY: dict[int, Migration] = {}


class MigrationContext:
    """What migrations may use besides the manifest: read-only file access and layout remapping.

    Attributes:
        root: The memory directory.
        renames: Current-layout file name -> file name on disk (``None``: no file).
        derived: Current-layout file name -> columns computed in memory.
    """

    def __init__(
        self, root: Path, *, handles: Mapping[str, FileHandle] | None = None, limits: LoadLimits | None = None
    ) -> None:
        """Start with the identity layout for ``root``.

        Args:
            root: The memory directory.
            handles: The memory's files as opened by the reader (read through them,
                never reopened by path, so a concurrent save cannot mix in).
            limits: Resource limits for the tables read.
        """
        self.root = root
        self.renames: dict[str, str | None] = {}
        self.derived: dict[str, dict[str, np.ndarray]] = {}
        self._handles = dict(handles or {})
        self._limits = limits or DEFAULT_LIMITS

    def physical(self, name: str) -> str | None:
        """Return the on-disk name of a file of the current layout (``None`` if it has none)."""
        return self.renames.get(name, name)

    def rename_file(self, new_name: str, old_name: str) -> None:
        """Declare that the file the newer layout calls ``new_name`` is the older layout's ``old_name``.

        After the call ``old_name`` no longer resolves to a file unless it is
        renamed or derived again.
        """
        self.renames[new_name] = self.physical(old_name)
        self.renames[old_name] = None
        self.derived.pop(new_name, None)

    def derive_table(self, name: str, columns: dict[str, np.ndarray]) -> None:
        """Provide the content of table ``name`` (an Arrow file of the newer layout) from memory."""
        self.derived[name] = columns
        self.renames[name] = None

    def read_columns(self, name: str, columns: list[str]) -> dict[str, np.ndarray]:
        """Read columns of an Arrow table of the current (partially migrated) layout.

        Args:
            name: Table file name in the layout the migration is producing.
            columns: Columns to read.

        Returns:
            Column name to array (memory-mapped where possible).

        Raises:
            MissingFileError: If the table has no file.
            SchemaError: If a column is missing.
        """
        from hippo_format._arrow import ArrowTable

        if name in self.derived:
            data = self.derived[name]
            missing = [c for c in columns if c not in data]
            if missing:
                raise SchemaError(f"{name} (derived by a migration): no column(s) {missing}")
            return {c: data[c] for c in columns}
        physical = self.physical(name)
        if physical is None:
            raise MissingFileError(f"{name}: the migrated layout has no such file", field=name)
        handle = self._handles.get(physical)
        if handle is None:
            raise MissingFileError(
                f"{physical}: the manifest does not list it, so the migration cannot read it", field=physical
            )
        table = ArrowTable(handle, physical, limits=self._limits)
        missing = [c for c in columns if c not in table.infos]
        if missing:
            raise SchemaError(
                f"{physical}: no column(s) {missing}; columns present: {table.column_names}", field=physical
            )
        return {c: table.column(c) for c in columns}


def register_migration(from_version: int) -> Callable[[Migration], Migration]:
    """Decorator registering a migration from ``from_version`` to ``from_version + 1``.

    Args:
        from_version: The version the function upgrades from.

    Returns:
        The decorator (it returns the function unchanged).

    Raises:
        ValueError: If a migration from that version is already registered.
    """

    def decorator(fn: Migration) -> Migration:
        if from_version in _REGISTRY and _REGISTRY[from_version] is not fn:
            raise ValueError(f"a migration from format version {from_version} is already registered")
        _REGISTRY[from_version] = fn
        return fn

    return decorator


def registered_migrations() -> dict[int, Migration]:
    """Return a copy of the registry: from-version -> migration function."""
    return dict(_REGISTRY)


def migrate_manifest(
    manifest: dict[str, Any],
    version: int,
    root: Path,
    *,
    handles: Mapping[str, FileHandle] | None = None,
    limits: LoadLimits | None = None,
) -> tuple[dict[str, Any], MigrationContext]:
    """Apply the migration chain from ``version`` to the current version.

    Args:
        manifest: The manifest as read from disk.
        version: Its format version.
        root: The memory directory (read, never written).
        handles: The files opened by the reader (see :class:`MigrationContext`).
        limits: Resource limits.

    Returns:
        ``(current-version manifest, context with renames/derived tables)``.

    Raises:
        UnsupportedVersionError: If a step of the chain is not registered.
        ManifestError: If a migration returns something that is not the next version.
    """
    ctx = MigrationContext(root, handles=handles, limits=limits)
    doc = copy.deepcopy(manifest)
    while version < FORMAT_VERSION:
        fn = _REGISTRY.get(version)
        if fn is None:
            raise UnsupportedVersionError(
                f"{MANIFEST_FILE}: format version {version} is older than {FORMAT_VERSION} and no migration "
                f"from it is registered; it cannot be read by this library"
            )
        logger.debug("migrating %s from format version %d to %d", root, version, version + 1)
        doc = fn(doc, ctx)
        if not isinstance(doc, dict) or doc.get("format_version") != version + 1:
            raise ManifestError(
                f"migration from format version {version} returned format_version "
                f"{doc.get('format_version') if isinstance(doc, dict) else doc!r}, expected {version + 1}"
            )
        version += 1
    doc.setdefault("migrated_from", manifest.get("format_version", manifest.get("version")))
    return doc, ctx


def episodes_from_ids(episode_id: np.ndarray, reward: np.ndarray) -> dict[str, np.ndarray]:
    """Rebuild an episode table from a transition table: one row per run of equal consecutive ``episode_id``.

    Args:
        episode_id: ``episode_id`` column.
        reward: ``reward`` column.

    Returns:
        Columns ``episode_id``, ``start``, ``length``, ``return`` and ``success`` (all -1, unknown).
    """
    n = len(episode_id)
    if n == 0:
        starts = np.zeros(0, dtype=np.int64)
    else:
        starts = np.concatenate([[0], np.flatnonzero(episode_id[1:] != episode_id[:-1]) + 1]).astype(np.int64)
    lengths = np.diff(np.append(starts, n)).astype(np.int64)
    returns = np.add.reduceat(reward.astype(np.float64), starts) if n else np.zeros(0)
    return {
        "episode_id": np.asarray(episode_id[starts], dtype=np.int64),
        "start": starts,
        "length": lengths,
        "return": np.asarray(returns, dtype=np.float64),
        "success": np.full(len(starts), -1, dtype=np.int8),
    }


@register_migration(0)
def _v0_to_v1(manifest: dict[str, Any], ctx: MigrationContext) -> dict[str, Any]:
    """Version 0 -> 1: ``version`` key, transitions in ``episodes.arrow``, no episode table."""
    count = manifest.get("num_transitions")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ManifestError(
            f"{MANIFEST_FILE}: version 0 field 'num_transitions' must be a non-negative integer, found {count!r:.80}"
        )
    new = {k: v for k, v in manifest.items() if k not in ("version", "num_transitions")}
    ctx.rename_file(TRANSITIONS_FILE, EPISODES_FILE)
    columns = ctx.read_columns(TRANSITIONS_FILE, ["episode_id", "reward"])
    if columns["episode_id"].dtype != np.int64 or columns["reward"].dtype != np.float32:
        raise SchemaError(f"{EPISODES_FILE} (format version 0): 'episode_id' must be int64 and 'reward' float32")
    episodes = episodes_from_ids(columns["episode_id"], columns["reward"])
    ctx.derive_table(EPISODES_FILE, episodes)
    new["format_version"] = 1
    new["counts"] = {"transitions": count, "episodes": int(len(episodes["start"]))}
    new.setdefault("compression", None)
    return new
