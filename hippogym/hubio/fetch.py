"""Fetch a memory from the Hub (or a local path), verify it, and hand it to a loader or place it on disk."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import hippo_format
from hippo_format.errors import ChecksumMismatchError, MissingFileError, TruncatedFileError
from hippogym.checks import producer_version
from hippogym.errors import ValidationError
from hippogym.hubio.common import (
    LIBRARY_NAME,
    MANIFEST_FILE,
    check_repo_id,
    check_repo_type,
    copy_file,
    hub_errors,
    import_hub,
    link_or_copy,
    listed_files,
    local_path,
    read_manifest,
    verify_mode,
)
from hippogym.progress import progress_bar

__all__ = ["download_memory", "fetch_memory"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
_PROGRESS_MIN_BYTES = 64 << 20  # smaller memories are copied too fast for a bar to help


def _evict_corrupt(snapshot: Path, files: Mapping[str, Mapping[str, Any]]) -> None:
    """Remove the cached files of ``snapshot`` that really are corrupt, so the next call fetches them again.

    Called only after a checksum failure. Each listed file is hashed again and removed only if its
    SHA-256 or size differs from the manifest; the manifest itself is removed only if its own
    digest (``manifest_sha256``) does not match. A good file is never removed.
    """
    from hippo_format._manifest import check_self_digest

    bad = []
    try:
        raw = (snapshot / MANIFEST_FILE).read_bytes()
        check_self_digest(raw, json.loads(raw))
    except ChecksumMismatchError:
        bad.append(MANIFEST_FILE)
    except (OSError, ValueError):  # unreadable or malformed: not a checksum failure, leave it
        pass
    for name, entry in files.items():
        path = snapshot / name
        try:
            h = hashlib.sha256()
            size = 0
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
                    size += len(chunk)
        except OSError:
            continue
        if h.hexdigest() != entry.get("sha256") or size != entry.get("bytes"):
            bad.append(name)
    for name in bad:
        pointer = snapshot / name
        blob = Path(os.path.realpath(pointer))
        for p in {pointer, blob}:
            with contextlib.suppress(OSError):
                p.unlink()
        logger.warning("removed corrupt cached file %s (%s); the next download fetches it again", name, blob)


@contextlib.contextmanager
def _fetched(
    hf: Any,
    repo_id: str,
    *,
    revision: str | None,
    token: str | bool | None,
    endpoint: str | None,
    cache_dir: str | os.PathLike[str] | None,
    repo_type: str,
    force_download: bool,
) -> Iterator[tuple[Path, str]]:
    """Download a snapshot and yield ``(staging directory, commit id)``.

    The staging directory is private to this call and holds hard links (or copies) of the
    manifest and of the files it lists: the Hub cache's snapshot is made of symbolic links into
    its blob store, which the format reader rightly refuses to follow out of a memory directory.
    A checksum failure (:class:`hippo_format.ChecksumMismatchError`, or a truncated file) raised
    by the caller evicts the cached files that fail their checksum; no other error touches the cache.
    """
    with hub_errors(
        hf, repo_id=repo_id, repo_type=repo_type, revision=revision, token=token, endpoint=endpoint, action="download"
    ):
        snapshot = Path(
            hf.snapshot_download(
                repo_id,
                repo_type=repo_type,
                revision=revision,
                cache_dir=cache_dir,
                token=token,
                endpoint=endpoint,
                library_name=LIBRARY_NAME,
                library_version=producer_version(),
                force_download=force_download,
            )
        )
    commit = snapshot.name
    where = f"{repo_type} repository {repo_id!r} at commit {commit}"
    manifest = read_manifest(snapshot)
    if not (snapshot / MANIFEST_FILE).is_file():
        present = sorted(p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file())
        raise MissingFileError(
            f"{where} holds no {MANIFEST_FILE}, so it is not a hippogym memory (files: {present[:10]})."
        )
    files = listed_files(manifest)
    try:
        staging = Path(tempfile.mkdtemp(prefix=".hippogym-stage-", dir=snapshot.parent.parent))
    except OSError:  # read-only cache: stage in the temp dir (copies instead of links)
        staging = Path(tempfile.mkdtemp(prefix="hippogym-stage-"))
    try:
        for name in [MANIFEST_FILE, *files]:
            source = snapshot / name
            if not source.is_file():
                raise MissingFileError(f"{where}: {MANIFEST_FILE} lists {name!r}, which the repository does not hold.")
            link_or_copy(Path(os.path.realpath(source)), staging / name)
        logger.debug("staged %s in %s", where, staging)
        yield staging, commit
    except (ChecksumMismatchError, TruncatedFileError):
        _evict_corrupt(snapshot, files)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch_memory(
    repo_id_or_path: str | os.PathLike[str],
    loader: Callable[[Path, str], T],
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    endpoint: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    repo_type: str = "model",
    verify: bool | str = True,
    force_download: bool = False,
) -> T:
    """Fetch a memory from a Hub repository, a local directory or a ``file://`` URL and load it.

    Hub memories are downloaded with ``snapshot_download`` (Hub cache, offline mode and tokens
    apply) and staged in a private directory; ``loader(directory, verify)`` then reads them, and
    every file is checked against the SHA-256 and size in ``manifest.json`` by the format reader
    before anything is decoded. A corrupt or tampered file raises and is evicted from the cache;
    no other failure touches it.

    Args:
        repo_id_or_path: ``"namespace/name"``, a directory (``"./memory"``, a ``Path``) or
            ``"file:///abs/memory"``. An existing local directory wins over a repo id of the same
            spelling.
        loader: Called as ``loader(directory, verify_mode)`` with ``verify_mode`` one of
            ``"full"``, ``"size"``, ``"none"``; returns the loaded object (e.g.
            ``lambda path, verify: HippocampalReplayBuffer.load(path, verify=verify)``).
        revision: Branch, tag or commit id to load (Hub only; default: the default branch).
        token: Hub token; ``None`` uses the stored login / ``HF_TOKEN``, ``False`` sends none.
        endpoint: Hub URL (default: ``HF_ENDPOINT`` or https://huggingface.co).
        cache_dir: Hub cache directory (default: ``HF_HUB_CACHE``).
        repo_type: ``"model"`` (default), ``"dataset"`` or ``"space"``.
        verify: ``True`` (default: SHA-256 of every file), ``False`` (sizes only) or a
            :func:`hippo_format.open_memory` mode.
        force_download: Download again even if the cache holds the files.

    Returns:
        What ``loader`` returns.

    Raises:
        hippo_format.ChecksumMismatchError: A file differs from what the manifest records.
        hippo_format.FormatError: Any other problem with the memory (subclass says which).
        HubNotFoundError: No such repository or revision, or a private one without access.
        HubAuthError: The token was rejected.
        HubError: The Hub could not be reached and nothing is cached.
        ValidationError: Bad arguments (e.g. ``revision`` with a local path).
        MissingDependencyError: ``huggingface_hub`` is not installed (Hub repositories only).
    """
    mode = verify_mode(verify)
    local = local_path(repo_id_or_path)
    if local is not None:
        if revision is not None:
            raise ValidationError(
                "revision", "None for a local directory (revisions exist on the Hub only)", repr(revision)
            )
        return loader(local, mode)
    hf = import_hub("Loading a memory from the Hugging Face Hub")
    repo_id = check_repo_id(repo_id_or_path)
    with _fetched(
        hf,
        repo_id,
        revision=revision,
        token=token,
        endpoint=endpoint,
        cache_dir=cache_dir,
        repo_type=check_repo_type(repo_type),
        force_download=force_download,
    ) as (staging, commit):
        loaded = loader(staging, mode)
    logger.info("loaded %s %s@%s (commit %s)", repo_type, repo_id, revision or "default branch", commit)
    return loaded


def download_memory(
    repo_id_or_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    endpoint: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    repo_type: str = "model",
    force_download: bool = False,
    progress: bool = False,
) -> Path:
    """Download a memory, verify it and place it at ``out_dir`` atomically (``hippogym pull``).

    The files listed in the manifest (and the manifest) are copied into a temporary sibling of
    ``out_dir``, fsynced and verified in full (SHA-256 of every file); only then is the copy
    renamed into place. An existing memory at ``out_dir`` is replaced atomically; if anything
    fails, ``out_dir`` is left as it was. The card and other repository files are not copied,
    so ``out_dir`` is a conformant memory directory.

    Args:
        repo_id_or_path: ``"namespace/name"``, a local memory directory or a ``file://`` URL.
        out_dir: Where to put the memory.
        revision: Branch, tag or commit id (Hub only).
        token: Hub token; ``None`` uses the stored login / ``HF_TOKEN``, ``False`` sends none.
        endpoint: Hub URL (default: ``HF_ENDPOINT`` or https://huggingface.co).
        cache_dir: Hub cache directory.
        repo_type: ``"model"`` (default), ``"dataset"`` or ``"space"``.
        force_download: Download again even if the cache holds the files.
        progress: Show a bar (tqdm, else INFO log lines) while a memory of 64 MiB or more is copied
            into place (the Hub client shows its own bars for the download).

    Returns:
        ``out_dir`` as a ``Path``.

    Raises:
        hippo_format.ChecksumMismatchError: A file differs from what the manifest records.
        hippo_format.TargetExistsError: ``out_dir`` exists and is not a memory directory.
        hippo_format.FormatError: Any other problem with the memory.
        HubNotFoundError, HubAuthError, HubError: As for :func:`load_memory_from_hub`.
    """
    from hippo_format._atomic import atomic_replace_dir, check_replaceable
    from hippo_format._io import fsync_dir

    target = Path(out_dir).expanduser()
    check_replaceable(target)  # refuse before fetching anything (atomic_replace_dir checks again under its lock)
    local = local_path(repo_id_or_path)
    if local is not None:
        if revision is not None:
            raise ValidationError(
                "revision", "None for a local directory (revisions exist on the Hub only)", repr(revision)
            )
        source: contextlib.AbstractContextManager[tuple[Path, str | None]] = contextlib.nullcontext((local, None))
    else:
        hf = import_hub("Downloading a memory from the Hugging Face Hub")
        source = _fetched(
            hf,
            check_repo_id(repo_id_or_path),
            revision=revision,
            token=token,
            endpoint=endpoint,
            cache_dir=cache_dir,
            repo_type=check_repo_type(repo_type),
            force_download=force_download,
        )
    with source as (directory, commit):
        if not (directory / MANIFEST_FILE).is_file():
            raise MissingFileError(f"{directory}: no {MANIFEST_FILE}; not a memory directory")
        names = [MANIFEST_FILE, *listed_files(read_manifest(directory))]

        def build(tmp: Path) -> None:
            for name in names:
                if not (directory / name).is_file():
                    raise MissingFileError(f"{directory / name}: missing, but {MANIFEST_FILE} lists it")
            total = sum((directory / n).stat().st_size for n in names)
            with progress_bar(
                total=total, desc=f"copy to {target.name}", unit="B", enabled=progress and total >= _PROGRESS_MIN_BYTES
            ) as bar:
                for name in names:
                    copy_file(directory / name, tmp / name, durable=True)
                    bar.update((tmp / name).stat().st_size)
            for sub in {(tmp / n).parent for n in names} - {tmp}:
                fsync_dir(sub)
            with hippo_format.open_memory(tmp, verify="sha256"):
                pass

        atomic_replace_dir(target, build)
    logger.info("placed %s%s at %s", repo_id_or_path, f" (commit {commit})" if commit else "", target)
    return target
