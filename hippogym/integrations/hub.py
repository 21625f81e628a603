"""Share memories through the Hugging Face Hub (or any Hub-compatible server).

A memory on the Hub is a repository whose root holds one ``hippo_format`` directory
(``manifest.json``, the Arrow tables, the safetensors files) plus a generated model card
(``README.md``) whose YAML metadata says ``library_name: hippogym``::

    from hippogym.integrations.hub import push_memory_to_hub, load_memory_from_hub

    commit = push_memory_to_hub(buffer, "alice/corridor-memory")      # one commit
    buffer = load_memory_from_hub("alice/corridor-memory", revision=commit.oid)

Guarantees:

* **One commit per push.** The memory and its card are sent with a single
  ``HfApi.create_commit`` whose parent is the branch head read before the push, so a push either
  lands completely or not at all, and a concurrent push to the same branch is refused (HTTP 412)
  instead of being silently interleaved. Files of the previous memory on that branch that the new
  one no longer has are deleted in the same commit. (``upload_folder`` is not used: with
  ``hf_xet`` installed it splits large folders into several commits.)
* **Verified before use.** Downloads go through ``snapshot_download`` (so the normal Hub cache,
  ``revision`` pinning, tokens and offline mode all apply) and every file is checked against the
  SHA-256 and size recorded in ``manifest.json`` before anything is decoded. A corrupted or
  tampered file raises :class:`hippo_format.ChecksumMismatchError` (or another
  :class:`hippo_format.FormatError`) and nothing is returned; only the cached files that fail
  their checksum are evicted from the cache, so that the next call downloads them again (a refusal
  for any other reason, e.g. an output directory that is not a memory, never touches the cache).
* **Atomic placement.** :func:`download_memory` copies into a temporary sibling of the target,
  verifies the copy, then renames it into place (an existing memory there is replaced atomically).

Local directories and ``file://`` URLs work wherever a repo id does, for teams without Hub access.
The Hub endpoint defaults to ``HF_ENDPOINT`` (read by ``huggingface_hub`` when it is imported);
pass ``endpoint=`` to talk to another server, e.g. the offline test server in the repository's
``tests/hubserver/``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import hippo_format
from hippo_format.errors import ChecksumMismatchError, MissingFileError, TruncatedFileError
from hippogym.errors import (  # the Hub errors are defined in hippogym.errors, re-exported here
    HubAuthError,
    HubError,
    HubNotFoundError,
    HubPushError,
    HubPushUnknownOutcomeError,
    MissingDependencyError,
    ValidationError,
    describe,
)
from hippogym.progress import progress_bar

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from huggingface_hub import CommitInfo, HfApi

    from hippogym.memory.store import MemoryStore
    from hippogym.replay.buffer import HippocampalReplayBuffer

__all__ = [
    "LIBRARY_NAME",
    "HubAuthError",
    "HubError",
    "HubNotFoundError",
    "HubPushError",
    "HubPushUnknownOutcomeError",
    "download_memory",
    "load_memory_from_hub",
    "memory_card",
    "push_memory_to_hub",
]

logger = logging.getLogger(__name__)

#: ``library_name`` written in the card metadata of every pushed memory.
LIBRARY_NAME = "hippogym"
CARD_FILE = "README.md"
MANIFEST_FILE = "manifest.json"
TRANSITIONS_FILE = "transitions.arrow"
EPISODES_FILE = "episodes.arrow"
_REPO_TYPES = ("model", "dataset", "space")
#: Statuses retried by :func:`push_memory_to_hub` (the commit carries its parent, so a retry can
#: never create a duplicate commit: the Hub answers 412 if the first attempt had landed).
_TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})
_PUSH_ATTEMPTS = 3
_RETRY_DELAY_S = 0.5
# The shape of a Hub repo id ("name" or "namespace/name"), used only when huggingface_hub (whose
# validate_repo_id is the authority) is not installed. "\Z", not "$": "$" also matches before a final "\n".
_REPO_ID_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,95}(/[A-Za-z0-9_][A-Za-z0-9_.-]{0,95})?\Z")
# A manifest file name (SPEC D4); only such names are ever joined to a directory here.
_FILE_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*(/[A-Za-z0-9_][A-Za-z0-9_.+-]*)*\Z")
_MAX_MANIFEST_BYTES = 64 << 20
_PROGRESS_MIN_BYTES = 64 << 20  # smaller memories are copied too fast for a bar to help


# --------------------------------------------------------------------------- helpers


def _import_hub(purpose: str) -> Any:
    """Import ``huggingface_hub`` (telemetry off) or raise :class:`MissingDependencyError`."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        import huggingface_hub
        import huggingface_hub.constants
        import huggingface_hub.errors
    except ImportError as exc:
        raise MissingDependencyError("huggingface_hub", "hub", purpose) from exc
    return huggingface_hub


def _hippogym_version() -> str:
    from hippogym import __version__

    return __version__


def _api(hf: Any, endpoint: str | None, token: str | bool | None) -> HfApi:
    return hf.HfApi(endpoint=endpoint, token=token, library_name=LIBRARY_NAME, library_version=_hippogym_version())


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


def _check_repo_id(repo_id: Any, *, readable: bool = False) -> str:
    """Return ``repo_id`` if ``huggingface_hub.utils.validate_repo_id`` accepts it, else raise ValidationError."""
    problem = _repo_id_problem(repo_id) if isinstance(repo_id, str) else f"it is {describe(repo_id)}"
    if problem is None:
        return repo_id
    if readable:
        raise ValidationError(
            "repo_id_or_path", "a Hub repo id ('namespace/name'), an existing local memory directory or a file:// URL",
            f"{repo_id!r}", hint=f"No local directory of that name exists, and it is no valid repo id: {problem}",
        )
    raise ValidationError(
        "repo_id", "a Hub repository id such as 'namespace/name'", f"{repo_id!r} ({problem})",
        hint="Local directories are accepted where a memory is read, not as a push target.",
    )


def _check_repo_type(repo_type: Any) -> str:
    if repo_type not in _REPO_TYPES:
        raise ValidationError("repo_type", f"one of {_REPO_TYPES}", describe(repo_type))
    return repo_type


def _local_path(ref: Any) -> Path | None:
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
            "repo_id_or_path", "a Hub repo id ('namespace/name'), a local memory directory or a file:// URL", describe(ref)
        )
    if ref.startswith("file:"):
        parts = urlsplit(ref)
        if parts.netloc not in ("", "localhost") or not parts.path:
            raise ValidationError("repo_id_or_path", "a file:// URL of a local directory, e.g. file:///data/memory", repr(ref))
        return Path(url2pathname(parts.path))
    expanded = os.path.expanduser(ref)
    spelled_as_path = (
        os.path.isabs(expanded) or ref.startswith((".", "~")) or ref.endswith(("/", os.sep)) or ref.count("/") > 1
        or (os.sep != "/" and os.sep in ref)
    )
    if os.path.lexists(expanded) or spelled_as_path:
        return Path(expanded)
    _check_repo_id(ref, readable=True)
    return None


def _verify_mode(verify: bool | str) -> str:
    if verify is True:
        return "full"
    if verify is False:
        return "size"
    if verify in ("full", "size", "none"):
        return str(verify)
    raise ValidationError(
        "verify", "True (SHA-256 of every file), False (sizes only), 'full', 'size' or 'none'", describe(verify)
    )


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _server_message(exc: BaseException) -> str:
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
def _hub_errors(
    hf: Any, *, repo_id: str, repo_type: str, revision: str | None, token: str | bool | None, endpoint: str | None, action: str
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
            "(list them with HfApi().list_repo_refs).", repo_id=repo_id, revision=revision, status=_status(exc),
        ) from exc
    except errors.RepositoryNotFoundError as exc:
        why = (
            "the token sent has no access to it" if _has_token(hf, token)
            else "no token was sent (pass token=..., set HF_TOKEN or run `hf auth login`)"
        )
        local = f" No local directory {repo_id!r} exists either." if action == "download" else ""
        raise HubNotFoundError(
            f"Cannot {action} {where} on {server}: it does not exist, or it is private or gated and {why}. "
            f"Check the repo id and repo_type.{local}", repo_id=repo_id, revision=revision, status=_status(exc),
        ) from exc
    except errors.LocalEntryNotFoundError as exc:
        raise HubError(
            f"Cannot {action} {where}: {server} could not be reached and the Hub cache holds no complete copy of that "
            f"revision ({_server_message(exc)}). Check the connection or HF_HUB_OFFLINE.", repo_id=repo_id, revision=revision,
        ) from exc
    except errors.HfHubHTTPError as exc:
        status = _status(exc)
        if status == 401:
            raise HubAuthError(
                f"Cannot {action} {where}: {server} rejected the token (HTTP 401). Pass a valid token=..., set HF_TOKEN "
                "or run `hf auth login`.", repo_id=repo_id, revision=revision, status=status,
            ) from exc
        if status == 403:
            raise HubAuthError(
                f"Cannot {action} {where}: the token may not write there (HTTP 403: {_server_message(exc)}). Push to a "
                "namespace you own or ask for write access.", repo_id=repo_id, revision=revision, status=status,
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
                f"Push to {where} on {server} failed with HTTP {status}: {_server_message(exc)}. Nothing was committed: "
                f"{detail}.", repo_id=repo_id, revision=revision, status=status,
            ) from exc
        raise HubError(
            f"Cannot {action} {where} on {server}: HTTP {status}: {_server_message(exc)}.",
            repo_id=repo_id, revision=revision, status=status,
        ) from exc
    except errors.OfflineModeIsEnabled as exc:
        raise HubError(
            f"Cannot {action} {where}: offline mode is enabled (HF_HUB_OFFLINE); unset it to reach {server}.",
            repo_id=repo_id, revision=revision,
        ) from exc
    except errors.HTTPError as exc:  # transport failures (connection refused, timeouts)
        raise HubError(
            f"Cannot {action} {where}: {server} could not be reached ({type(exc).__name__}: {exc}).",
            repo_id=repo_id, revision=revision,
        ) from exc


def _read_manifest(directory: Path) -> dict[str, Any] | None:
    """Parse ``directory/manifest.json`` leniently; ``None`` if absent or unreadable (the format reader reports why)."""
    path = directory / MANIFEST_FILE
    try:
        if path.stat().st_size > _MAX_MANIFEST_BYTES:
            return None
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _listed_files(manifest: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The manifest's ``files`` entries whose names are safe to join to a directory."""
    files = (manifest or {}).get("files")
    if not isinstance(files, dict):
        return {}
    return {n: e for n, e in files.items() if isinstance(n, str) and _FILE_NAME_RE.match(n) and isinstance(e, dict)}


def _copy_file(src: Path, dst: Path, *, durable: bool) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    if durable:
        fd = os.open(dst, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


# --------------------------------------------------------------------------- card


def _fmt(value: Any) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _encoder_summary(encoder: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not isinstance(encoder, Mapping):
        return None
    raw = encoder.get("backbone")
    backbone: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    summary = {
        "backbone": backbone.get("type"),
        "input_dim": encoder.get("input_dim"),
        "embed_dim": encoder.get("embed_dim"),
        "hidden": backbone.get("hidden"),
        "momentum": encoder.get("momentum"),
    }
    return {k: v for k, v in summary.items() if v is not None}


def _data_configs(files: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The card's ``configs:`` block: ``datasets.load_dataset(repo)`` reads the transitions table.

    ``datasets`` picks its Arrow builder from the ``.arrow`` extension (it reads IPC files as
    well as IPC streams); the first config (``default``) is what ``load_dataset(repo)`` loads,
    ``load_dataset(repo, "episodes")`` reads the per-episode table.
    """
    configs = []
    for name, table in (("default", TRANSITIONS_FILE), ("episodes", EPISODES_FILE)):
        if table in files:
            configs.append({"config_name": name, "data_files": [{"split": "train", "path": table}]})
    return configs


def memory_card(
    memory: str | os.PathLike[str] | Mapping[str, Any],
    *,
    repo_id: str | None = None,
    repo_type: str = "model",
    license: str | None = None,
) -> str:
    """Write the card (``README.md``) of a memory: YAML metadata, a summary and how to load it.

    The metadata holds ``library_name: hippogym``, ``license``, ``pipeline_tag:
    reinforcement-learning`` (``task_categories`` in a dataset card), tags
    (``reinforcement-learning``, ``episodic-memory``, ``hippogym``, the environment id and
    ``minari`` for offline data), a ``configs:`` block naming the Arrow tables so that
    ``datasets.load_dataset(repo)`` reads the transitions (``load_dataset(repo, "episodes")``
    the episodes), and a ``hippogym`` section: format version, environment and source dataset
    (from the manifest's ``provenance``), counts, return min/mean/max, success rate, key width,
    encoder summary and total size.

    Args:
        memory: A memory directory, or the dict :func:`hippo_format.summarize` returns for one.
        repo_id: Repository the card is written for (used in the loading snippet).
        repo_type: ``"model"`` (a model card) or ``"dataset"`` (a dataset card).
        license: License identifier of the data (a Hub license id such as ``"cc-by-4.0"``); default:
            the manifest's ``provenance["license"]``, else ``"unknown"``.

    Returns:
        The card text (YAML front matter, then Markdown).
    """
    hf = _import_hub("Writing a memory card")
    _check_repo_type(repo_type)
    summary = dict(memory) if isinstance(memory, Mapping) else hippo_format.summarize(memory, verify=False)
    provenance = summary.get("provenance") or {}
    env_id = provenance.get("env_id")
    dataset_id = provenance.get("dataset_id")
    counts = summary.get("counts") or {}
    episodes = summary.get("episodes") or {}
    returns = episodes.get("return")
    encoder = _encoder_summary(summary.get("encoder"))
    producer = summary.get("producer") or {}

    tags = ["reinforcement-learning", "episodic-memory", LIBRARY_NAME]
    if env_id:
        tags.append(str(env_id))
    if dataset_id:
        tags.append("minari")
    section: dict[str, Any] = {
        "format": hippo_format.FORMAT_NAME,
        "format_version": summary.get("format_version"),
        "env_id": env_id,
        "dataset_id": dataset_id,
        "transitions": counts.get("transitions"),
        "episodes": counts.get("episodes"),
        "return": returns,
        "success_rate": episodes.get("success_rate"),
        "embed_dim": summary.get("embed_dim"),
        "encoder": encoder,
        "total_bytes": summary.get("total_bytes"),
        "producer": f"{producer.get('name')} {producer.get('version')}" if producer else None,
    }
    section = {k: v for k, v in section.items() if v is not None}
    license = license or provenance.get("license") or "unknown"
    if not isinstance(license, str) or not license.strip() or any(c.isspace() for c in license):
        raise ValidationError("license", "a Hub license identifier such as 'cc-by-4.0' or 'mit'", describe(license))
    configs = _data_configs(summary.get("files") or {})
    if repo_type == "dataset":
        data: Any = hf.DatasetCardData(
            license=license, task_categories=["reinforcement-learning"], pretty_name=f"hippogym memory of {env_id}"
            if env_id else "hippogym memory", tags=tags, library_name=LIBRARY_NAME, configs=configs,
            **{LIBRARY_NAME: section},
        )
    else:
        data = hf.ModelCardData(
            library_name=LIBRARY_NAME, license=license, pipeline_tag="reinforcement-learning", tags=tags,
            configs=configs, **{LIBRARY_NAME: section},
        )

    name = repo_id or "NAMESPACE/NAME"
    rate = episodes.get("success_rate")
    rows = [
        ("environment", f"`{env_id}`" if env_id else "unknown"),
        ("source dataset", f"`{dataset_id}` (Minari)" if dataset_id else "none (recorded online)"),
        ("transitions", f"{counts.get('transitions', 0):,}"),
        ("episodes", f"{counts.get('episodes', 0):,}"),
        ("return (min / mean / max)", " / ".join(_fmt(returns.get(k)) for k in ("min", "mean", "max")) if returns else "n/a"),
        ("success rate", "unknown" if rate is None
         else f"{rate:.1%} of {episodes.get('success_known', 0)} episodes with a known outcome"),
        ("keys", f"{summary.get('embed_dim')}-d" if summary.get("embed_dim") is not None else "none"),
        ("encoder", ", ".join(f"{k} {v}" for k, v in encoder.items()) if encoder else "none saved"),
        ("format", (f"{hippo_format.FORMAT_NAME} v{summary.get('format_version')}, "
                    f"{len(summary.get('files') or {})} files, {(summary.get('total_bytes') or 0) / 2**20:.1f} MiB")),
    ]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    type_arg = "" if repo_type == "model" else f', repo_type="{repo_type}"'
    type_flag = "" if repo_type == "model" else f" --repo-type {repo_type}"
    body = f"""
# hippogym memory{f' for {env_id}' if env_id else ''}

An episodic memory saved by [hippogym](https://github.com/hippogym/hippogym): the transitions,
their grouping into episodes, learned retrieval keys and the encoder that made them, in the
`{hippo_format.FORMAT_NAME}` format (Arrow tables + safetensors + `manifest.json`, which records the
SHA-256 and size of every file).

| | |
|---|---|
{table}

## How to load it

```python
from hippogym.integrations.hub import load_memory_from_hub

buffer = load_memory_from_hub("{name}"{type_arg})   # checks every file's SHA-256 before use
batch = buffer.sample(256)
```

Pin a version with `revision=` (a branch, tag or commit id). The transitions are a plain Arrow
table: in a dataset repository, `datasets.load_dataset("{name}")` reads them
(`load_dataset("{name}", "episodes")` reads one row per episode). To keep learning online with
Stable-Baselines3, pass it as `replay_buffer_kwargs=dict(buffer=buffer)` of
`hippogym.integrations.sb3.HippoReplayBuffer`. From the shell:

```bash
hippogym pull {name} ./memory{type_flag}
```
"""
    return f"---\n{data.to_yaml()}\n---\n{body}"


# --------------------------------------------------------------------------- push


@contextlib.contextmanager
def _memory_directory(memory: Any, compression: str | None) -> Iterator[Path]:
    """Yield a verified memory directory for a buffer, a store or a path."""
    from hippogym.memory.store import MemoryStore
    from hippogym.replay.buffer import HippocampalReplayBuffer

    if isinstance(memory, (HippocampalReplayBuffer, MemoryStore)):
        from hippogym.io import save_buffer, save_store

        with tempfile.TemporaryDirectory(prefix="hippogym-push-") as tmp:
            target = Path(tmp) / "memory"
            if isinstance(memory, HippocampalReplayBuffer):
                save_buffer(memory, target, compression=compression)
            else:
                save_store(memory, target, compression=compression)
            yield target
        return
    if isinstance(memory, (str, os.PathLike)):
        path = _local_path(memory)
        if path is None:
            raise ValidationError(
                "memory", "a HippocampalReplayBuffer, a MemoryStore or a local memory directory", repr(memory),
                hint=f"{memory!r} is not a local directory; to copy a memory between repositories, download it first.",
            )
        if compression is not None:
            raise ValidationError("compression", "None when pushing a directory (it is pushed as saved)", repr(compression))
        with hippo_format.open_memory(path, verify="full"):  # never push a damaged memory
            pass
        yield path
        return
    raise ValidationError("memory", "a HippocampalReplayBuffer, a MemoryStore or a memory directory", describe(memory))


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
        previous = _listed_files(_read_manifest(Path(path).parent))
    return sorted((set(previous) & remote) - keep)


def _failure_text(exc: BaseException) -> tuple[str, int | None]:
    """Describe a failed commit attempt: ``(text for the message, HTTP status or None)``."""
    status = _status(exc)
    if status is not None:
        return f"HTTP {status}: {_server_message(exc)}", status
    cause = exc.__cause__
    cause_status = _status(cause) if cause is not None else None
    if isinstance(exc, RuntimeError) and cause_status is not None:  # huggingface_hub wraps LFS upload errors
        return f"{exc} (HTTP {cause_status}: {_server_message(cause)})", cause_status
    return f"{type(exc).__name__}: {exc}", None


def _landed_commit(
    api: HfApi, hf: Any, exc: BaseException, *, repo_id: str, repo_type: str, branch: str | None, parent: str,
    manifest: bytes, where: str,
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
            repo_id=repo_id, revision=branch, status=status,
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
            repo_id=repo_id, revision=branch, status=status,
        ) from exc
    if ours:
        return head
    raise HubPushError(
        f"Push to {where} failed ({text}), and meanwhile the branch moved from {parent[:12]} to {head[:12]}, a commit "
        "that does not hold this memory (another push). This memory was not committed: check the repository "
        "history, then push again.",
        repo_id=repo_id, revision=branch, status=status,
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
            status = _status(exc)
            if not retriable or status not in _TRANSIENT_STATUSES or attempt == _PUSH_ATTEMPTS:
                raise
            landed = check(exc) if check is not None else None
            if landed is not None:
                return None, landed
            delay = _RETRY_DELAY_S * 2 ** (attempt - 1)
            logger.warning(
                "push to %s: commit answered HTTP %s; retrying in %.1f s (attempt %d of %d)",
                kwargs["repo_id"], status, delay, attempt + 1, _PUSH_ATTEMPTS,
            )
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _push_commit(
    api: HfApi, hf: Any, *, repo_id: str, repo_type: str, operations: list[Any], message: str, description: str | None,
    revision: str | None, create_pr: bool, head: str | None, manifest: bytes, where: str, endpoint: str,
) -> CommitInfo:
    """Make the push's one commit; map every failure to the truth about the branch (see ``push_memory_to_hub``)."""
    branch = None if create_pr else revision
    parent = None if create_pr else head

    def check(exc: BaseException) -> str | None:
        if parent is None:
            return None
        return _landed_commit(
            api, hf, exc, repo_id=repo_id, repo_type=repo_type, branch=branch, parent=parent, manifest=manifest,
            where=where,
        )

    try:
        info, oid = _commit_with_retries(
            api, hf, check=check, repo_id=repo_id, repo_type=repo_type, operations=operations, commit_message=message,
            commit_description=description, revision=branch, create_pr=create_pr, parent_commit=parent,
        )
    except HubPushError:
        raise
    except Exception as exc:  # HTTP errors, LFS upload errors (RuntimeError/ValueError), transport errors
        text, status = _failure_text(exc)
        if status in (401, 403) and isinstance(exc, hf.errors.HfHubHTTPError):
            raise  # a refused token: _hub_errors turns it into HubAuthError
        if parent is None:
            raise HubPushError(
                f"Push to {where} failed ({text}); the pull request may or may not have been opened — check the "
                "repository's pull requests before pushing again.", repo_id=repo_id, revision=revision, status=status,
            ) from exc
        oid = check(exc)
        if oid is None:
            hint = "push again" if status != 412 else "check the repository history, then push again"
            raise HubPushError(
                f"Push to {where} failed with {text}. Nothing was committed: the branch was not changed (it is still "
                f"at {parent[:12]}); {hint}.", repo_id=repo_id, revision=revision, status=status,
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
        commit_url=f"{server}/{prefix}{repo_id}/commit/{oid}", commit_message=message,
        commit_description=description or "", oid=oid, pr_url=None, _endpoint=endpoint,
    )


def push_memory_to_hub(
    memory: HippocampalReplayBuffer | MemoryStore | str | os.PathLike[str],
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
        memory: A :class:`~hippogym.HippocampalReplayBuffer` (saved whole: memory, encoder,
            consolidator, sampler state), a :class:`~hippogym.MemoryStore` (memory and keys only) or
            the path of a saved memory directory (verified before pushing).
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
    hf = _import_hub("Pushing a memory to the Hugging Face Hub")
    repo_id = _check_repo_id(repo_id)
    repo_type = _check_repo_type(repo_type)
    if create_pr and revision is not None:
        raise ValidationError("revision", "None with create_pr=True (pull requests target the default branch)", repr(revision))
    api = _api(hf, endpoint, token)
    errors = {"hf": hf, "repo_id": repo_id, "repo_type": repo_type, "revision": revision, "token": token, "endpoint": endpoint}
    with _memory_directory(memory, compression) as directory:
        with hippo_format.open_memory(directory, verify="none") as reader:
            summary = hippo_format.summarize(reader, verify=False)
            names = sorted(reader.files)
        card = memory_card(summary, repo_id=repo_id, repo_type=repo_type, license=license)
        with _hub_errors(**errors, action="push to"):
            repo_id = api.create_repo(repo_id, private=private, exist_ok=True, repo_type=repo_type).repo_id
            head, is_private = _branch_head(api, hf, repo_id, repo_type, None if create_pr else revision)
            if private and not is_private:
                raise HubPushError(
                    f"Refusing to push with private=True: {repo_type} repository {repo_id!r} already exists and is public. "
                    "Make it private first (HfApi().update_repo_settings(repo_id, private=True)) or pass private=False.",
                    repo_id=repo_id, revision=revision,
                )
            keep = {*names, MANIFEST_FILE, CARD_FILE}
            stale = _stale_files(api, hf, repo_id, repo_type, head, keep)
            operations: list[Any] = [hf.CommitOperationDelete(path_in_repo=p) for p in stale]
            operations += [hf.CommitOperationAdd(path_in_repo=n, path_or_fileobj=str(directory / n)) for n in names]
            operations.append(hf.CommitOperationAdd(path_in_repo=MANIFEST_FILE, path_or_fileobj=str(directory / MANIFEST_FILE)))
            operations.append(hf.CommitOperationAdd(path_in_repo=CARD_FILE, path_or_fileobj=card.encode("utf-8")))
            counts = summary["counts"]
            env_id = (summary.get("provenance") or {}).get("env_id")
            message = commit_message or (
                f"Push hippogym memory: {counts['transitions']:,} transitions in {counts['episodes']:,} episodes"
                + (f" of {env_id}" if env_id else "")
            )
            info = _push_commit(
                api, hf, repo_id=repo_id, repo_type=repo_type, operations=operations, message=message,
                description=commit_description, revision=revision, create_pr=create_pr, head=head,
                manifest=(directory / MANIFEST_FILE).read_bytes(), endpoint=endpoint or hf.constants.ENDPOINT,
                where=f"{repo_type} repository {repo_id!r}" + (f" at revision {revision!r}" if revision else "")
                + f" on {endpoint or hf.constants.ENDPOINT}",
            )
    logger.info(
        "pushed %d files (%d deleted) to %s %s@%s: commit %s", len(names) + 2, len(stale), repo_type, repo_id,
        revision or "default branch", info.oid,
    )
    return info


# --------------------------------------------------------------------------- download / load


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
    hf: Any, repo_id: str, *, revision: str | None, token: str | bool | None, endpoint: str | None,
    cache_dir: str | os.PathLike[str] | None, repo_type: str, force_download: bool,
) -> Iterator[tuple[Path, str]]:
    """Download a snapshot and yield ``(staging directory, commit id)``.

    The staging directory is private to this call and holds hard links (or copies) of the
    manifest and of the files it lists: the Hub cache's snapshot is made of symbolic links into
    its blob store, which the format reader rightly refuses to follow out of a memory directory.
    A checksum failure (:class:`hippo_format.ChecksumMismatchError`, or a truncated file) raised
    by the caller evicts the cached files that fail their checksum; no other error touches the cache.
    """
    with _hub_errors(
        hf, repo_id=repo_id, repo_type=repo_type, revision=revision, token=token, endpoint=endpoint, action="download"
    ):
        snapshot = Path(hf.snapshot_download(
            repo_id, repo_type=repo_type, revision=revision, cache_dir=cache_dir, token=token, endpoint=endpoint,
            library_name=LIBRARY_NAME, library_version=_hippogym_version(), force_download=force_download,
        ))
    commit = snapshot.name
    where = f"{repo_type} repository {repo_id!r} at commit {commit}"
    manifest = _read_manifest(snapshot)
    if not (snapshot / MANIFEST_FILE).is_file():
        present = sorted(p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file())
        raise MissingFileError(f"{where} holds no {MANIFEST_FILE}, so it is not a hippogym memory (files: {present[:10]}).")
    files = _listed_files(manifest)
    try:
        staging = Path(tempfile.mkdtemp(prefix=".hippogym-stage-", dir=snapshot.parent.parent))
    except OSError:  # read-only cache: stage in the temp dir (copies instead of links)
        staging = Path(tempfile.mkdtemp(prefix="hippogym-stage-"))
    try:
        for name in [MANIFEST_FILE, *files]:
            source = snapshot / name
            if not source.is_file():
                raise MissingFileError(f"{where}: {MANIFEST_FILE} lists {name!r}, which the repository does not hold.")
            _link_or_copy(Path(os.path.realpath(source)), staging / name)
        logger.debug("staged %s in %s", where, staging)
        yield staging, commit
    except (ChecksumMismatchError, TruncatedFileError):
        _evict_corrupt(snapshot, files)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _load_directory(path: Path, verify: str, device: str | torch.device) -> HippocampalReplayBuffer:
    """Load a buffer (or a store-only memory, wrapped in a buffer) from a memory directory."""
    from hippogym.io import load_buffer, load_store
    from hippogym.replay.buffer import HippocampalReplayBuffer

    manifest = _read_manifest(path) or {}
    if manifest.get("encoder") is None and isinstance(manifest.get("store"), dict):
        store = load_store(path, verify=verify)
        logger.info("%s holds a memory without encoder; a fresh encoder is built from its layout", path)
        buffer = HippocampalReplayBuffer(memory=store, device=device)
        buffer.provenance = dict(manifest.get("provenance") or {})  # type: ignore[attr-defined]  # as load_buffer sets it
        return buffer
    return load_buffer(path, verify=verify, device=device)


def load_memory_from_hub(
    repo_id_or_path: str | os.PathLike[str],
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    endpoint: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    repo_type: str = "model",
    verify: bool | str = True,
    device: str | torch.device = "cpu",
    force_download: bool = False,
) -> HippocampalReplayBuffer:
    """Load a memory from a Hub repository, a local directory or a ``file://`` URL.

    Hub memories are downloaded with ``snapshot_download`` (Hub cache, offline mode and tokens
    apply), then every file is checked against the SHA-256 and size in ``manifest.json`` before
    anything is decoded. A corrupt or tampered file raises and is evicted from the cache.

    Args:
        repo_id_or_path: ``"namespace/name"``, a directory (``"./memory"``, a ``Path``) or
            ``"file:///abs/memory"``. An existing local directory wins over a repo id of the same
            spelling.
        revision: Branch, tag or commit id to load (Hub only; default: the default branch).
        token: Hub token; ``None`` uses the stored login / ``HF_TOKEN``, ``False`` sends none.
        endpoint: Hub URL (default: ``HF_ENDPOINT`` or https://huggingface.co).
        cache_dir: Hub cache directory (default: ``HF_HUB_CACHE``).
        repo_type: ``"model"`` (default), ``"dataset"`` or ``"space"``.
        verify: ``True`` (default: SHA-256 of every file), ``False`` (sizes only) or a
            :func:`hippo_format.open_memory` mode.
        device: Device of the batches the buffer returns.
        force_download: Download again even if the cache holds the files.

    Returns:
        The :class:`~hippogym.HippocampalReplayBuffer`, exactly as it was saved (same keys bit
        for bit, same batches with the same seed). A memory saved from a bare
        :class:`~hippogym.MemoryStore` gets a fresh encoder.

    Raises:
        hippo_format.ChecksumMismatchError: A file differs from what the manifest records.
        hippo_format.FormatError: Any other problem with the memory (subclass says which).
        HubNotFoundError: No such repository or revision, or a private one without access.
        HubAuthError: The token was rejected.
        HubError: The Hub could not be reached and nothing is cached.
        ValidationError: Bad arguments (e.g. ``revision`` with a local path).
        MissingDependencyError: ``huggingface_hub`` is not installed (Hub repositories only).
    """
    mode = _verify_mode(verify)
    local = _local_path(repo_id_or_path)
    if local is not None:
        if revision is not None:
            raise ValidationError("revision", "None for a local directory (revisions exist on the Hub only)", repr(revision))
        return _load_directory(local, mode, device)
    hf = _import_hub("Loading a memory from the Hugging Face Hub")
    repo_id = _check_repo_id(repo_id_or_path)
    with _fetched(
        hf, repo_id, revision=revision, token=token, endpoint=endpoint, cache_dir=cache_dir,
        repo_type=_check_repo_type(repo_type), force_download=force_download,
    ) as (staging, commit):
        buffer = _load_directory(staging, mode, device)
    logger.info(
        "loaded %s %s@%s (commit %s): %d transitions", repo_type, repo_id, revision or "default branch", commit, len(buffer)
    )
    return buffer


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
    local = _local_path(repo_id_or_path)
    if local is not None:
        if revision is not None:
            raise ValidationError("revision", "None for a local directory (revisions exist on the Hub only)", repr(revision))
        source: contextlib.AbstractContextManager[tuple[Path, str | None]] = contextlib.nullcontext((local, None))
    else:
        hf = _import_hub("Downloading a memory from the Hugging Face Hub")
        source = _fetched(
            hf, _check_repo_id(repo_id_or_path), revision=revision, token=token, endpoint=endpoint, cache_dir=cache_dir,
            repo_type=_check_repo_type(repo_type), force_download=force_download,
        )
    with source as (directory, commit):
        if not (directory / MANIFEST_FILE).is_file():
            raise MissingFileError(f"{directory}: no {MANIFEST_FILE}; not a memory directory")
        names = [MANIFEST_FILE, *_listed_files(_read_manifest(directory))]

        def build(tmp: Path) -> None:
            for name in names:
                if not (directory / name).is_file():
                    raise MissingFileError(f"{directory / name}: missing, but {MANIFEST_FILE} lists it")
            total = sum((directory / n).stat().st_size for n in names)
            with progress_bar(total=total, desc=f"copy to {target.name}", unit="B",
                              enabled=progress and total >= _PROGRESS_MIN_BYTES) as bar:
                for name in names:
                    _copy_file(directory / name, tmp / name, durable=True)
                    bar.update((tmp / name).stat().st_size)
            for sub in {(tmp / n).parent for n in names} - {tmp}:
                fsync_dir(sub)
            with hippo_format.open_memory(tmp, verify="full"):
                pass

        atomic_replace_dir(target, build)
    logger.info("placed %s%s at %s", repo_id_or_path, f" (commit {commit})" if commit else "", target)
    return target
