"""What every Hub operation shares: the client import, repo-id checks, error mapping, manifest reads.

Part of :mod:`hippogym.hubio`, the buffer-independent transport of ``hippo_format`` directories
over the Hugging Face Hub. It sits in the base layer: it imports ``hippo_format`` and the base
modules only, never the memory, the buffer or the integrations.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from hippogym.checks import producer_version
from hippogym.errors import (
    HubAuthError,
    HubError,
    HubNotFoundError,
    HubPushError,
    MissingDependencyError,
    ValidationError,
    describe,
)

if TYPE_CHECKING:  # pragma: no cover
    from huggingface_hub import HfApi

__all__ = [
    "CARD_FILE",
    "EPISODES_FILE",
    "LIBRARY_NAME",
    "MANIFEST_FILE",
    "REPO_TYPES",
    "TRANSITIONS_FILE",
    "check_repo_id",
    "check_repo_type",
    "copy_file",
    "http_status",
    "hub_errors",
    "import_hub",
    "link_or_copy",
    "listed_files",
    "local_path",
    "make_api",
    "read_manifest",
    "server_message",
    "verify_mode",
]

#: ``library_name`` written in the card metadata of every pushed memory.
LIBRARY_NAME = "hippogym"
CARD_FILE = "README.md"
MANIFEST_FILE = "manifest.json"
TRANSITIONS_FILE = "transitions.arrow"
EPISODES_FILE = "episodes.arrow"
#: The repository types of the Hub.
REPO_TYPES = ("model", "dataset", "space")
# The shape of a Hub repo id ("name" or "namespace/name"), used only when huggingface_hub (whose
# validate_repo_id is the authority) is not installed. "\Z", not "$": "$" also matches before a final "\n".
_REPO_ID_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,95}(/[A-Za-z0-9_][A-Za-z0-9_.-]{0,95})?\Z")
# A manifest file name (SPEC D4); only such names are ever joined to a directory here.
_FILE_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*(/[A-Za-z0-9_][A-Za-z0-9_.+-]*)*\Z")
_MAX_MANIFEST_BYTES = 64 << 20


def import_hub(purpose: str) -> Any:
    """Import ``huggingface_hub`` (telemetry off) or raise :class:`MissingDependencyError`."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        import huggingface_hub
        import huggingface_hub.constants
        import huggingface_hub.errors
    except ImportError as exc:
        raise MissingDependencyError("huggingface_hub", "hub", purpose) from exc
    return huggingface_hub


def make_api(hf: Any, endpoint: str | None, token: str | bool | None) -> HfApi:
    """An ``HfApi`` client for ``endpoint`` that identifies itself as hippogym."""
    return hf.HfApi(endpoint=endpoint, token=token, library_name=LIBRARY_NAME, library_version=producer_version())


def _repo_id_problem(repo_id: str) -> str | None:
    """Why ``repo_id`` is not a valid Hub repo id (``huggingface_hub``'s own validator), or ``None``."""
    try:
        from huggingface_hub.errors import HFValidationError
        from huggingface_hub.utils import validate_repo_id
    except ImportError:  # the caller reports the missing dependency; check the shape meanwhile
        ok = _REPO_ID_RE.match(repo_id) and ".." not in repo_id and "--" not in repo_id and not repo_id.endswith(".git")
        return None if ok else "it is not of the form 'name' or 'namespace/name' (letters, digits, '-', '_', '.')"
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        return str(exc)
    return None


def check_repo_id(repo_id: Any, *, readable: bool = False) -> str:
    """Return ``repo_id`` if ``huggingface_hub.utils.validate_repo_id`` accepts it, else raise ValidationError."""
    problem = _repo_id_problem(repo_id) if isinstance(repo_id, str) else f"it is {describe(repo_id)}"
    if problem is None:
        return repo_id
    if readable:
        raise ValidationError(
            "repo_id_or_path",
            "a Hub repo id ('namespace/name'), an existing local memory directory or a file:// URL",
            f"{repo_id!r}",
            hint=f"No local directory of that name exists, and it is no valid repo id: {problem}",
        )
    raise ValidationError(
        "repo_id",
        "a Hub repository id such as 'namespace/name'",
        f"{repo_id!r} ({problem})",
        hint="Local directories are accepted where a memory is read, not as a push target.",
    )


def check_repo_type(repo_type: Any) -> str:
    """Return ``repo_type`` if it is one of :data:`REPO_TYPES`, else raise ValidationError."""
    if repo_type not in REPO_TYPES:
        raise ValidationError("repo_type", f"one of {REPO_TYPES}", describe(repo_type))
    return repo_type


def local_path(ref: Any) -> Path | None:
    """Return the local directory ``ref`` names, or ``None`` when it is a Hub repo id.

    ``os.PathLike`` objects, ``file://`` URLs, paths that exist and strings spelled as paths
    (``./x``, ``/abs/x``, ``~/x``, ``a/b/c``, ``x/``) are local; anything else must be a valid
    Hub repo id (checked with ``huggingface_hub``'s validator), or :class:`ValidationError` says
    it is neither, instead of treating it as a missing directory.
    """
    if isinstance(ref, os.PathLike):
        return Path(ref).expanduser()
    if not isinstance(ref, str) or not ref:
        raise ValidationError(
            "repo_id_or_path",
            "a Hub repo id ('namespace/name'), a local memory directory or a file:// URL",
            describe(ref),
        )
    if ref.startswith("file:"):
        parts = urlsplit(ref)
        if parts.netloc not in ("", "localhost") or not parts.path:
            raise ValidationError(
                "repo_id_or_path", "a file:// URL of a local directory, e.g. file:///data/memory", repr(ref)
            )
        return Path(url2pathname(parts.path))
    expanded = os.path.expanduser(ref)
    spelled_as_path = (
        os.path.isabs(expanded)
        or ref.startswith((".", "~"))
        or ref.endswith(("/", os.sep))
        or ref.count("/") > 1
        or (os.sep != "/" and os.sep in ref)
    )
    if os.path.lexists(expanded) or spelled_as_path:
        return Path(expanded)
    check_repo_id(ref, readable=True)
    return None


def verify_mode(verify: bool | str) -> str:
    """Map ``verify`` (``True``/``False`` or a mode name) to a :func:`hippo_format.open_memory` mode."""
    if verify is True:  # what comes from a Hub is checked against the SHA-256 it was published with
        return "sha256"
    if verify is False:
        return "size"
    if verify in ("full", "sha256", "size", "none"):
        return str(verify)
    raise ValidationError(
        "verify",
        "True (every file's digest), False (sizes only), 'full', 'sha256', 'size' or 'none'",
        describe(verify),
    )


def http_status(exc: BaseException) -> int | None:
    """The HTTP status carried by a ``huggingface_hub`` exception, or ``None``."""
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def server_message(exc: BaseException) -> str:
    """The server's message of a failed request, on one line."""
    server = getattr(exc, "server_message", None)
    if server:
        return " ".join(str(server).split())
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _has_token(hf: Any, token: str | bool | None) -> bool:
    if token is False:
        return False
    if isinstance(token, str):
        return bool(token)
    try:
        return hf.get_token() is not None
    except (OSError, ValueError):  # pragma: no cover - an unreadable token file only changes a message
        return False


@contextlib.contextmanager
def hub_errors(
    hf: Any,
    *,
    repo_id: str,
    repo_type: str,
    revision: str | None,
    token: str | bool | None,
    endpoint: str | None,
    action: str,
) -> Iterator[None]:
    """Turn ``huggingface_hub`` exceptions into :class:`HubError` subclasses with actionable messages."""
    errors = hf.errors
    where = f"{repo_type} repository {repo_id!r}" + (f" at revision {revision!r}" if revision else "")
    server = endpoint or hf.constants.ENDPOINT
    try:
        yield
    except errors.RevisionNotFoundError as exc:
        raise HubNotFoundError(
            f"Cannot {action} {where} on {server}: the revision does not exist. Pass an existing branch, tag or commit id "
            "(list them with HfApi().list_repo_refs).",
            repo_id=repo_id,
            revision=revision,
            status=http_status(exc),
        ) from exc
    except errors.RepositoryNotFoundError as exc:
        why = (
            "the token sent has no access to it"
            if _has_token(hf, token)
            else "no token was sent (pass token=..., set HF_TOKEN or run `hf auth login`)"
        )
        local = f" No local directory {repo_id!r} exists either." if action == "download" else ""
        raise HubNotFoundError(
            f"Cannot {action} {where} on {server}: it does not exist, or it is private or gated and {why}. "
            f"Check the repo id and repo_type.{local}",
            repo_id=repo_id,
            revision=revision,
            status=http_status(exc),
        ) from exc
    except errors.LocalEntryNotFoundError as exc:
        raise HubError(
            f"Cannot {action} {where}: {server} could not be reached and the Hub cache holds no complete copy of that "
            f"revision ({server_message(exc)}). Check the connection or HF_HUB_OFFLINE.",
            repo_id=repo_id,
            revision=revision,
        ) from exc
    except errors.HfHubHTTPError as exc:
        status = http_status(exc)
        if status == 401:
            raise HubAuthError(
                f"Cannot {action} {where}: {server} rejected the token (HTTP 401). Pass a valid token=..., set HF_TOKEN "
                "or run `hf auth login`.",
                repo_id=repo_id,
                revision=revision,
                status=status,
            ) from exc
        if status == 403:
            raise HubAuthError(
                f"Cannot {action} {where}: the token may not write there (HTTP 403: {server_message(exc)}). Push to a "
                "namespace you own or ask for write access.",
                repo_id=repo_id,
                revision=revision,
                status=status,
            ) from exc
        if action == "push to":
            if status == 412:
                detail = (
                    "the branch moved while pushing (another push, or an earlier attempt that landed although its answer "
                    "was lost); check the repository history, then push again"
                )
            else:
                detail = "the Hub applies a commit atomically, so the branch was not changed; push again"
            raise HubPushError(
                f"Push to {where} on {server} failed with HTTP {status}: {server_message(exc)}. Nothing was committed: "
                f"{detail}.",
                repo_id=repo_id,
                revision=revision,
                status=status,
            ) from exc
        raise HubError(
            f"Cannot {action} {where} on {server}: HTTP {status}: {server_message(exc)}.",
            repo_id=repo_id,
            revision=revision,
            status=status,
        ) from exc
    except errors.OfflineModeIsEnabled as exc:
        raise HubError(
            f"Cannot {action} {where}: offline mode is enabled (HF_HUB_OFFLINE); unset it to reach {server}.",
            repo_id=repo_id,
            revision=revision,
        ) from exc
    except errors.HTTPError as exc:  # transport failures (connection refused, timeouts)
        raise HubError(
            f"Cannot {action} {where}: {server} could not be reached ({type(exc).__name__}: {exc}).",
            repo_id=repo_id,
            revision=revision,
        ) from exc


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """Parse ``directory/manifest.json`` leniently; ``None`` if absent or unreadable (the format reader reports why)."""
    path = directory / MANIFEST_FILE
    try:
        if path.stat().st_size > _MAX_MANIFEST_BYTES:
            return None
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def listed_files(manifest: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The manifest's ``files`` entries whose names are safe to join to a directory."""
    files = (manifest or {}).get("files")
    if not isinstance(files, dict):
        return {}
    return {n: e for n, e in files.items() if isinstance(n, str) and _FILE_NAME_RE.match(n) and isinstance(e, dict)}


def copy_file(src: Path, dst: Path, *, durable: bool) -> None:
    """Copy ``src`` to ``dst`` (parents created); ``durable`` fsyncs the copy."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    if durable:
        fd = os.open(dst, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` at ``dst``, or copy it where links are not possible."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
