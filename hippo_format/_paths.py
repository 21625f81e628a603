"""Confinement of manifest file names to the memory directory."""

from __future__ import annotations

import os
import re
from pathlib import Path

from hippo_format.errors import UnsafePathError

_COMPONENT_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*\Z")
_DRIVE_RE = re.compile(r"^[A-Za-z]:")


def check_relative_name(name: object, where: str) -> str:
    """Check that a manifest file name is a plain relative POSIX path.

    Allowed: ``/``-separated components of ``[A-Za-z0-9_.+-]`` that do not start
    with ``.``, ``-`` or ``+``. Refused: absolute paths, drive letters,
    backslashes, ``.``/``..``/empty components, control characters.

    Args:
        name: The candidate name.
        where: Which manifest entry or argument it came from.

    Returns:
        The name, unchanged.

    Raises:
        UnsafePathError: If the name could point anywhere but inside the directory.
    """
    if not isinstance(name, str) or not name:
        raise UnsafePathError(f"{where}: expected a non-empty relative file name, got {name!r}")
    if name.startswith("/") or _DRIVE_RE.match(name) or "\\" in name:
        raise UnsafePathError(
            f"{where}: file name {name!r} is absolute or uses backslashes; manifest file names "
            "must be relative POSIX paths inside the memory directory"
        )
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise UnsafePathError(
            f"{where}: file name {name!r} contains an empty, '.' or '..' component; "
            "file names must stay inside the memory directory"
        )
    for part in parts:
        if not _COMPONENT_RE.match(part) or len(part) > 255:
            raise UnsafePathError(
                f"{where}: file name {name!r} has component {part!r}; expected characters "
                "[A-Za-z0-9_.+-], not starting with '.', '-' or '+', at most 255 long"
            )
    return name


def resolve_inside(root: Path, name: str, where: str) -> Path:
    """Resolve ``root/name`` and check that the result (after symlinks) stays under ``root``.

    Args:
        root: The memory directory.
        name: A name already accepted by :func:`check_relative_name`.
        where: For messages.

    Returns:
        The path to open (``root/name``, not the resolved target).

    Raises:
        UnsafePathError: If a symbolic link makes it resolve outside ``root``.
    """
    check_relative_name(name, where)
    candidate = root / name
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(candidate))
    if real != real_root and real_root not in real.parents:
        raise UnsafePathError(
            f"{where}: {candidate} resolves to {real}, outside the memory directory {real_root} "
            "(symbolic link?); replace the link with the file itself"
        )
    return candidate
