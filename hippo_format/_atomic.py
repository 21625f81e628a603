"""Crash-safe replacement of a memory directory.

Protocol (see SPEC.md, "Atomic save"):

1. Take an exclusive ``flock`` on ``.<name>.lock`` beside the target so that two
   saves to one path never interleave (and so that leftovers of dead saves can
   be told apart from a save in progress).
2. Build the new memory in ``.<name>.tmp-<random>`` beside the target; every
   file and the directory itself are fsynced.
3. If the target exists, exchange the two directories atomically with Linux
   ``renameat2(RENAME_EXCHANGE)``; otherwise rename the temp directory into
   place. Where ``renameat2`` is unavailable, rename the old directory to
   ``.<name>.old-<random>``, rename the new one into place, and let readers fall
   back to the complete ``.old-*`` directory if they find the target missing.
4. fsync the parent directory, then delete the previous memory and any stale
   ``.tmp-*``/``.old-*`` siblings of that name.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from hippo_format._io import fsync_dir
from hippo_format._schema import MANIFEST_FILE
from hippo_format.errors import TargetExistsError

logger = logging.getLogger(__name__)

#: Set to False to force the rename-aside fallback (tests exercise both paths).
USE_RENAMEAT2 = True

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_renameat2: Callable[..., int] | None | bool = False  # False: not looked up yet


def tmp_prefix(name: str) -> str:
    """Return the prefix of temp directories of saves to ``name``."""
    return f".{name}.tmp-"


def old_prefix(name: str) -> str:
    """Return the prefix of set-aside previous memories of ``name`` (fallback protocol)."""
    return f".{name}.old-"


def _lookup_renameat2() -> Callable[..., int] | None:
    global _renameat2
    if _renameat2 is False:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fn = libc.renameat2
        except (OSError, AttributeError):
            _renameat2 = None
        else:
            fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
            fn.restype = ctypes.c_int
            _renameat2 = fn
    return _renameat2 if callable(_renameat2) else None


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths with ``renameat2(RENAME_EXCHANGE)``.

    Args:
        a: First path.
        b: Second path.

    Returns:
        True if swapped; False if the call or the flag is unavailable here.

    Raises:
        OSError: For any other failure.
    """
    if not USE_RENAMEAT2:
        return False
    fn = _lookup_renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)):
        logger.debug("renameat2(RENAME_EXCHANGE) unavailable (%s); using the rename-aside fallback", os.strerror(err))
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


@contextlib.contextmanager
def save_lock(parent: Path, name: str) -> Iterator[None]:
    """Hold an exclusive advisory lock for saves to ``parent/name``.

    The lock file ``.<name>.lock`` stays in place afterwards (removing it would
    race with other savers); readers never look at it.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    fd = os.open(parent / f".{name}.lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def check_replaceable(target: Path) -> None:
    """Refuse to replace anything but a memory directory or an empty directory.

    Raises:
        TargetExistsError: If ``target`` is a file, a symbolic link, or a
            non-empty directory without ``manifest.json``.
    """
    if not os.path.lexists(target):
        return
    if target.is_symlink():
        raise TargetExistsError(
            f"{target}: is a symbolic link; refusing to replace it — pass the directory it points to"
        )
    if not target.is_dir():
        raise TargetExistsError(
            f"{target}: exists and is not a directory; refusing to replace it — choose another path"
        )
    if (target / MANIFEST_FILE).exists():
        return
    if any(target.iterdir()):
        raise TargetExistsError(
            f"{target}: exists, is not empty and holds no {MANIFEST_FILE}, so it is not a memory; "
            "refusing to replace it — remove it or choose another path"
        )


def _remove_tree(path: Path) -> None:
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except OSError as exc:  # pragma: no cover - leftovers are harmless and retried next save
        logger.warning("could not remove %s (%s); the next save will retry", path, exc)


def cleanup_stale(parent: Path, name: str) -> None:
    """Delete leftovers of earlier saves to ``parent/name`` (call with the save lock held)."""
    prefixes = (tmp_prefix(name), old_prefix(name))
    for entry in parent.iterdir():
        if entry.name.startswith(prefixes):
            logger.debug("removing stale save leftover %s", entry)
            _remove_tree(entry)


def atomic_replace_dir(target: Path, build: Callable[[Path], None]) -> None:
    """Build a directory with ``build(tmp)`` and atomically put it at ``target``.

    Args:
        target: Final location.
        build: Fills the (empty, existing) temp directory; must fsync what it writes.

    Raises:
        TargetExistsError: If ``target`` exists and is not a memory directory.
    """
    parent = target.parent
    name = target.name
    parent.mkdir(parents=True, exist_ok=True)
    with save_lock(parent, name):
        check_replaceable(target)
        tmp = parent / f"{tmp_prefix(name)}{secrets.token_hex(8)}"
        tmp.mkdir()
        try:
            build(tmp)
            fsync_dir(tmp)
        except BaseException:
            _remove_tree(tmp)
            raise
        if os.path.lexists(target):
            if exchange(tmp, target):
                fsync_dir(parent)
                _remove_tree(tmp)  # tmp now holds the previous memory
            else:
                aside = parent / f"{old_prefix(name)}{secrets.token_hex(8)}"
                os.rename(target, aside)
                fsync_dir(parent)
                os.rename(tmp, target)
                fsync_dir(parent)
                _remove_tree(aside)
        else:
            os.rename(tmp, target)
            fsync_dir(parent)
        cleanup_stale(parent, name)


def set_aside_candidates(target: Path) -> list[Path]:
    """Return ``.<name>.old-*`` siblings of ``target``, newest first."""
    parent = target.parent
    if not parent.is_dir():
        return []
    prefix = old_prefix(target.name)
    found = [p for p in parent.iterdir() if p.name.startswith(prefix) and p.is_dir()]

    def mtime(p: Path) -> float:
        try:
            return (p / MANIFEST_FILE).stat().st_mtime
        except OSError:
            return float("-inf")

    return sorted(found, key=mtime, reverse=True)
