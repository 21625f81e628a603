"""Push a ``hippo_format`` directory, or any object that can ``save`` one, to the Hub as one commit."""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import hippo_format
from hippogym.errors import HubPushError, HubPushUnknownOutcomeError, ValidationError, describe
from hippogym.hubio.card import memory_card
from hippogym.hubio.common import (
    CARD_FILE,
    MANIFEST_FILE,
    check_repo_id,
    check_repo_type,
    http_status,
    hub_errors,
    import_hub,
    listed_files,
    local_path,
    make_api,
    read_manifest,
    server_message,
)

if TYPE_CHECKING:  # pragma: no cover
    from huggingface_hub import CommitInfo, HfApi

__all__ = ["Saveable", "memory_directory", "push_to_hub"]

logger = logging.getLogger(__name__)

#: Statuses retried by :func:`push_to_hub` (the commit carries its parent, so a retry can
#: never create a duplicate commit: the Hub answers 412 if the first attempt had landed).
_TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})
_PUSH_ATTEMPTS = 3
_RETRY_DELAY_S = 0.5


@runtime_checkable
class Saveable(Protocol):
    """Anything that writes itself as a ``hippo_format`` directory: a buffer, a store, your own part."""

    def save(self, path: str | os.PathLike[str], **kwargs: Any) -> Any:
        """Write a ``hippo_format`` directory at ``path`` (``compression=`` is passed when given)."""
        ...


@contextlib.contextmanager
def memory_directory(memory: Saveable | str | os.PathLike[str], compression: str | None = None) -> Iterator[Path]:
    """Yield a memory directory for an object with ``save(path)`` or for a saved directory.

    An object is saved into a temporary directory that is removed afterwards; a directory is
    verified in full first (a damaged memory is never pushed).

    Args:
        memory: An object with ``save(path, compression=...)`` (a
            :class:`~hippogym.HippocampalReplayBuffer`, a :class:`~hippogym.MemoryStore`, ...) or
            the path of a saved memory directory.
        compression: Arrow compression passed to ``save``; must be ``None`` for a directory.

    Yields:
        The directory holding the memory.

    Raises:
        ValidationError: ``memory`` is neither, or ``compression`` is set for a directory or
            not accepted by the object's ``save``.
    """
    if isinstance(memory, (str, os.PathLike)):
        path = local_path(memory)
        if path is None:
            raise ValidationError(
                "memory",
                "an object with save(path) or a local memory directory",
                repr(memory),
                hint=f"{memory!r} is not a local directory; to copy a memory between repositories, download it first.",
            )
        if compression is not None:
            raise ValidationError(
                "compression", "None when pushing a directory (it is pushed as saved)", repr(compression)
            )
        with hippo_format.open_memory(path, verify="sha256"):  # never push a damaged memory (SHA-256: what the Hub hashes)
            pass
        yield path
        return
    save = getattr(memory, "save", None)
    if not callable(save) or isinstance(memory, type):
        raise ValidationError(
            "memory",
            "a HippocampalReplayBuffer, a MemoryStore, another object with save(path) or a memory directory",
            describe(memory),
        )
    kwargs: dict[str, Any] = {}
    if compression is not None:
        params = inspect.signature(save).parameters
        if "compression" not in params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            raise ValidationError(
                "compression", f"None: {type(memory).__name__}.save takes no compression argument", repr(compression)
            )
        kwargs["compression"] = compression
    with tempfile.TemporaryDirectory(prefix="hippogym-push-") as tmp:
        target = Path(tmp) / "memory"
        save(target, **kwargs)
        yield target


def _branch_head(api: HfApi, hf: Any, repo_id: str, repo_type: str, branch: str | None) -> tuple[str | None, bool]:
    """Return ``(head commit, private)`` of ``branch``, creating the branch from the default one if missing."""
    try:
        info = api.repo_info(repo_id, repo_type=repo_type, revision=branch)
    except hf.errors.RevisionNotFoundError:
        if branch is None:
            raise
        logger.info("creating branch %r in %s %s", branch, repo_type, repo_id)
        api.create_branch(repo_id, branch=branch, repo_type=repo_type, exist_ok=True)
        info = api.repo_info(repo_id, repo_type=repo_type, revision=branch)
    return info.sha, bool(info.private)


def _stale_files(api: HfApi, hf: Any, repo_id: str, repo_type: str, head: str | None, keep: set[str]) -> list[str]:
    """Files of the memory currently at ``head`` that the new memory does not have."""
    if head is None:
        return []
    remote = set(api.list_repo_files(repo_id, repo_type=repo_type, revision=head))
    if MANIFEST_FILE not in remote:
        return []
    with tempfile.TemporaryDirectory(prefix="hippogym-manifest-") as tmp:
        path = api.hf_hub_download(repo_id, MANIFEST_FILE, repo_type=repo_type, revision=head, cache_dir=tmp)
        previous = listed_files(read_manifest(Path(path).parent))
    return sorted((set(previous) & remote) - keep)


def _failure_text(exc: BaseException) -> tuple[str, int | None]:
    """Describe a failed commit attempt: ``(text for the message, HTTP status or None)``."""
    status = http_status(exc)
    if status is not None:
        return f"HTTP {status}: {server_message(exc)}", status
    cause = exc.__cause__
    cause_status = http_status(cause) if cause is not None else None
    if isinstance(exc, RuntimeError) and cause_status is not None:  # huggingface_hub wraps LFS upload errors
        return f"{exc} (HTTP {cause_status}: {server_message(cause)})", cause_status
    return f"{type(exc).__name__}: {exc}", None


def _landed_commit(
    api: HfApi,
    hf: Any,
    exc: BaseException,
    *,
    repo_id: str,
    repo_type: str,
    branch: str | None,
    parent: str,
    manifest: bytes,
    where: str,
) -> str | None:
    """After a failed commit on ``branch`` (expected parent ``parent``), find out what happened.

    Returns:
        The id of the commit if it landed (the branch head holds exactly this memory's manifest), or
        ``None`` if the branch is still at ``parent`` (nothing was committed).

    Raises:
        HubPushError: The branch moved to a commit that is not this memory (another push).
        HubPushUnknownOutcomeError: The branch or its manifest could not be read.
    """
    text, status = _failure_text(exc)
    try:
        head = api.repo_info(repo_id, repo_type=repo_type, revision=branch).sha
    except Exception as check:  # noqa: BLE001 - any failure to look means the outcome stays unknown
        raise HubPushUnknownOutcomeError(
            f"Push to {where} failed ({text}), and reading the branch afterwards failed too ({type(check).__name__}: "
            f"{check}); the commit may or may not have landed. Check the repository history before pushing again.",
            repo_id=repo_id,
            revision=branch,
            status=status,
        ) from exc
    if head == parent:
        return None
    try:
        with tempfile.TemporaryDirectory(prefix="hippogym-push-check-") as tmp:
            path = api.hf_hub_download(repo_id, MANIFEST_FILE, repo_type=repo_type, revision=head, cache_dir=tmp)
            ours = Path(path).read_bytes() == manifest
    except Exception as check:  # noqa: BLE001
        raise HubPushUnknownOutcomeError(
            f"Push to {where} failed ({text}); the branch moved from {parent[:12]} to {head[:12]} but its manifest "
            f"could not be read ({type(check).__name__}: {check}), so it is unknown whether that commit is this "
            "memory. Check the repository history before pushing again.",
            repo_id=repo_id,
            revision=branch,
            status=status,
        ) from exc
    if ours:
        return head
    raise HubPushError(
        f"Push to {where} failed ({text}), and meanwhile the branch moved from {parent[:12]} to {head[:12]}, a commit "
        "that does not hold this memory (another push). This memory was not committed: check the repository "
        "history, then push again.",
        repo_id=repo_id,
        revision=branch,
        status=status,
    ) from exc


def _commit_with_retries(
    api: HfApi, hf: Any, *, check: Any = None, **kwargs: Any
) -> tuple[CommitInfo | None, str | None]:
    """``create_commit``, retried on transient 5xx when it has a parent; ``check(exc)`` runs before each retry.

    Returns:
        ``(commit info, None)``, or ``(None, commit id)`` when ``check`` found that a failed attempt
        landed after all (its answer was lost): then no retry is made, it would fail with 412.
    """
    retriable = kwargs.get("parent_commit") is not None
    for attempt in range(1, _PUSH_ATTEMPTS + 1):
        try:
            with warnings.catch_warnings():
                # A memory holds Arrow tables by design; the client's "data file in a model repo" hint does not apply.
                warnings.filterwarnings("ignore", message=r".*about to commit a data file", category=UserWarning)
                return api.create_commit(**kwargs), None
        except hf.errors.HfHubHTTPError as exc:
            status = http_status(exc)
            if not retriable or status not in _TRANSIENT_STATUSES or attempt == _PUSH_ATTEMPTS:
                raise
            landed = check(exc) if check is not None else None
            if landed is not None:
                return None, landed
            delay = _RETRY_DELAY_S * 2 ** (attempt - 1)
            logger.warning(
                "push to %s: commit answered HTTP %s; retrying in %.1f s (attempt %d of %d)",
                kwargs["repo_id"],
                status,
                delay,
                attempt + 1,
                _PUSH_ATTEMPTS,
            )
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _push_commit(
    api: HfApi,
    hf: Any,
    *,
    repo_id: str,
    repo_type: str,
    operations: list[Any],
    message: str,
    description: str | None,
    revision: str | None,
    create_pr: bool,
    head: str | None,
    manifest: bytes,
    where: str,
    endpoint: str,
) -> CommitInfo:
    """Make the push's one commit; map every failure to the truth about the branch (see :func:`push_to_hub`)."""
    branch = None if create_pr else revision
    parent = None if create_pr else head

    def check(exc: BaseException) -> str | None:
        if parent is None:
            return None
        return _landed_commit(
            api,
            hf,
            exc,
            repo_id=repo_id,
            repo_type=repo_type,
            branch=branch,
            parent=parent,
            manifest=manifest,
            where=where,
        )

    try:
        info, oid = _commit_with_retries(
            api,
            hf,
            check=check,
            repo_id=repo_id,
            repo_type=repo_type,
            operations=operations,
            commit_message=message,
            commit_description=description,
            revision=branch,
            create_pr=create_pr,
            parent_commit=parent,
        )
    except HubPushError:
        raise
    except Exception as exc:  # HTTP errors, LFS upload errors (RuntimeError/ValueError), transport errors
        text, status = _failure_text(exc)
        if status in (401, 403) and isinstance(exc, hf.errors.HfHubHTTPError):
            raise  # a refused token: hub_errors turns it into HubAuthError
        if parent is None:
            raise HubPushError(
                f"Push to {where} failed ({text}); the pull request may or may not have been opened — check the "
                "repository's pull requests before pushing again.",
                repo_id=repo_id,
                revision=revision,
                status=status,
            ) from exc
        oid = check(exc)
        if oid is None:
            hint = "push again" if status != 412 else "check the repository history, then push again"
            raise HubPushError(
                f"Push to {where} failed with {text}. Nothing was committed: the branch was not changed (it is still "
                f"at {parent[:12]}); {hint}.",
                repo_id=repo_id,
                revision=revision,
                status=status,
            ) from exc
        info = None
    if info is not None:
        return info
    logger.warning(
        "push to %s: the commit landed although its answer was lost; the branch is at %s (this memory)", where, oid
    )
    server = endpoint.rstrip("/")
    prefix = {"model": "", "dataset": "datasets/", "space": "spaces/"}[repo_type]
    return hf.CommitInfo(
        commit_url=f"{server}/{prefix}{repo_id}/commit/{oid}",
        commit_message=message,
        commit_description=description or "",
        oid=oid,
        pr_url=None,
        _endpoint=endpoint,
    )


def push_to_hub(
    memory: Saveable | str | os.PathLike[str],
    repo_id: str,
    *,
    private: bool = False,
    token: str | bool | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
    commit_description: str | None = None,
    endpoint: str | None = None,
    repo_type: str = "model",
    create_pr: bool = False,
    compression: str | None = None,
    license: str | None = None,
) -> CommitInfo:
    """Push a memory and its model card to a Hub repository as one commit.

    The repository is created if needed (``exist_ok``); a missing ``revision`` branch is created
    from the default branch. The commit holds every file of the ``hippo_format`` directory, a
    generated ``README.md`` (see :func:`memory_card`) and deletions of the previous memory's files
    that the new one lacks. Its parent is the branch head read first, so a concurrent push makes
    this one fail (HTTP 412) rather than interleave; transient 5xx answers are retried.

    Args:
        memory: Any object with ``save(path)`` that writes a ``hippo_format`` directory: a
            :class:`~hippogym.HippocampalReplayBuffer` (saved whole: memory, encoder, consolidator,
            sampler state), a :class:`~hippogym.MemoryStore` (memory and keys only), your own
            part; or the path of a saved memory directory (verified before pushing).
        repo_id: Target repository, ``"namespace/name"``.
        private: Create the repository as private. Refused (:class:`HubPushError`) if the
            repository already exists and is public, so private data is never pushed to a
            public repository by mistake.
        token: Hub token; ``None`` uses the stored login / ``HF_TOKEN``.
        revision: Branch to push to (default: the default branch).
        commit_message: Commit title (default: counts and environment).
        commit_description: Commit description.
        endpoint: Hub URL (default: ``HF_ENDPOINT`` or https://huggingface.co).
        repo_type: ``"model"`` (default), ``"dataset"`` or ``"space"``.
        create_pr: Open a pull request with the commit instead of committing to the branch.
        compression: Arrow compression when saving a buffer or store (``None``, ``"zstd"``, ``"lz4"``).
        license: License of the data, written into the card (see :func:`memory_card`).

    Returns:
        The ``huggingface_hub.CommitInfo`` of the commit: a ``str`` (the commit URL) whose
        ``oid`` is the commit id (pass it as ``revision=`` to load exactly this version).

    Raises:
        HubAuthError: The token is missing, rejected or may not write to ``repo_id``.
        HubPushError: The push failed (a commit, or a large-file upload through Git LFS, was
            refused or failed); the message says truthfully what the branch holds: unchanged,
            or moved by another push. A commit that landed although its answer was lost is
            detected (the branch head is compared before and after) and returned, not raised.
        HubPushUnknownOutcomeError: The push failed and the branch could not be read afterwards.
        HubError: Any other Hub failure (e.g. the server cannot be reached).
        hippo_format.FormatError: ``memory`` is a directory that is not a valid memory.
        ValidationError: Bad arguments.
        MissingDependencyError: ``huggingface_hub`` is not installed.
    """
    hf = import_hub("Pushing a memory to the Hugging Face Hub")
    repo_id = check_repo_id(repo_id)
    repo_type = check_repo_type(repo_type)
    if create_pr and revision is not None:
        raise ValidationError(
            "revision", "None with create_pr=True (pull requests target the default branch)", repr(revision)
        )
    api = make_api(hf, endpoint, token)
    errors = {
        "hf": hf,
        "repo_id": repo_id,
        "repo_type": repo_type,
        "revision": revision,
        "token": token,
        "endpoint": endpoint,
    }
    with memory_directory(memory, compression) as directory:
        with hippo_format.open_memory(directory, verify="none") as reader:
            summary = hippo_format.summarize(reader, verify=False)
            names = sorted(reader.files)
        card = memory_card(summary, repo_id=repo_id, repo_type=repo_type, license=license)
        with hub_errors(**errors, action="push to"):
            repo_id = api.create_repo(repo_id, private=private, exist_ok=True, repo_type=repo_type).repo_id
            head, is_private = _branch_head(api, hf, repo_id, repo_type, None if create_pr else revision)
            if private and not is_private:
                raise HubPushError(
                    f"Refusing to push with private=True: {repo_type} repository {repo_id!r} already exists and is public. "
                    "Make it private first (HfApi().update_repo_settings(repo_id, private=True)) or pass private=False.",
                    repo_id=repo_id,
                    revision=revision,
                )
            keep = {*names, MANIFEST_FILE, CARD_FILE}
            stale = _stale_files(api, hf, repo_id, repo_type, head, keep)
            operations: list[Any] = [hf.CommitOperationDelete(path_in_repo=p) for p in stale]
            operations += [hf.CommitOperationAdd(path_in_repo=n, path_or_fileobj=str(directory / n)) for n in names]
            operations.append(
                hf.CommitOperationAdd(path_in_repo=MANIFEST_FILE, path_or_fileobj=str(directory / MANIFEST_FILE))
            )
            operations.append(hf.CommitOperationAdd(path_in_repo=CARD_FILE, path_or_fileobj=card.encode("utf-8")))
            counts = summary["counts"]
            env_id = (summary.get("provenance") or {}).get("env_id")
            message = commit_message or (
                f"Push hippogym memory: {counts['transitions']:,} transitions in {counts['episodes']:,} episodes"
                + (f" of {env_id}" if env_id else "")
            )
            info = _push_commit(
                api,
                hf,
                repo_id=repo_id,
                repo_type=repo_type,
                operations=operations,
                message=message,
                description=commit_description,
                revision=revision,
                create_pr=create_pr,
                head=head,
                manifest=(directory / MANIFEST_FILE).read_bytes(),
                endpoint=endpoint or hf.constants.ENDPOINT,
                where=f"{repo_type} repository {repo_id!r}"
                + (f" at revision {revision!r}" if revision else "")
                + f" on {endpoint or hf.constants.ENDPOINT}",
            )
    logger.info(
        "pushed %d files (%d deleted) to %s %s@%s: commit %s",
        len(names) + 2,
        len(stale),
        repo_type,
        repo_id,
        revision or "default branch",
        info.oid,
    )
    return info
