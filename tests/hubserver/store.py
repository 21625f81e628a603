"""On-disk repositories of the local Hub: refs, immutable commits and content-addressed blobs."""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import os
import re
import shutil
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

REPO_TYPES = ("model", "dataset", "space")
_PLURALS = {"models": "model", "datasets": "dataset", "spaces": "space"}
_URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?$")
_FULL_OID_RE = re.compile(r"^[0-9a-f]{40}$")
_CHUNK = 1 << 20

# A short version of the `.gitattributes` file the Hub adds in the initial commit of a repo.
_DEFAULT_GITATTRIBUTES = (
    b"*.bin filter=lfs diff=lfs merge=lfs -text\n"
    b"*.h5 filter=lfs diff=lfs merge=lfs -text\n"
    b"*.hdf5 filter=lfs diff=lfs merge=lfs -text\n"
    b"*.npy filter=lfs diff=lfs merge=lfs -text\n"
    b"*.npz filter=lfs diff=lfs merge=lfs -text\n"
    b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"
    b"*.pt filter=lfs diff=lfs merge=lfs -text\n"
    b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
    b"*.zip filter=lfs diff=lfs merge=lfs -text\n"
)


# --------------------------------------------------------------------------- helpers


class HubError(Exception):
    """An error answered to the client as ``status`` + JSON ``{"error": message}``.

    ``code`` goes to the ``X-Error-Code`` header, which ``huggingface_hub`` uses to pick its
    exception class (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``...).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


def _now_iso() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _git_blob_sha1(data: bytes) -> str:
    h = hashlib.sha1()
    h.update(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


def _header_safe(text: str) -> str:
    text = " ".join(str(text).split())
    return text.encode("ascii", "replace").decode("ascii")[:500]


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _validate_repo_name(part: str, what: str) -> str:
    if not _NAME_RE.match(part or "") or ".." in part or "--" in part:
        raise HubError(400, f"Invalid {what}: {part!r}")
    return part


def _split_repo_id(repo_id: str) -> tuple[str, str]:
    if repo_id.count("/") != 1:
        raise ValueError(f"repo_id must look like 'namespace/name', got {repo_id!r}")
    ns, name = repo_id.split("/")
    return ns, name


def _validate_path_in_repo(path: str) -> str:
    if not isinstance(path, str) or not path:
        raise HubError(400, "Invalid path in repo: empty")
    if path.startswith("/") or "\\" in path or "\0" in path:
        raise HubError(400, f"Invalid path in repo: {path!r}")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts) or parts[0] == ".git":
        raise HubError(400, f"Invalid path in repo: {path!r}")
    return path


def _validate_ref_name(name: str) -> str:
    bad = (
        not name
        or name.startswith(("/", "-", "refs/"))
        or name.endswith(("/", ".lock", "."))
        or ".." in name
        or "//" in name
        or "@{" in name
        or any(c in name for c in " ~^:?*[\\\0")
        or _FULL_OID_RE.match(name) is not None
    )
    if bad:
        raise HubError(400, f"Invalid reference name: {name!r}")
    return name


def _truthy(values: list[str] | None) -> bool:
    return bool(values) and values[-1].lower() in ("1", "true", "yes", "on")


# --------------------------------------------------------------------------- storage


class _Repo:
    """One repository on disk (see the module docstring for the layout)."""

    def __init__(self, store: _Store, path: Path, repo_type: str, ns: str, name: str) -> None:
        self.store = store
        self.path = path
        self.repo_type = repo_type
        self.ns = ns
        self.name = name
        self.repo_id = f"{ns}/{name}"

    # -- metadata / refs -----------------------------------------------------------

    @property
    def meta(self) -> dict[str, Any]:
        return json.loads((self.path / "repo.json").read_text())

    def write_meta(self, meta: dict[str, Any]) -> None:
        _atomic_write(self.path / "repo.json", json.dumps(meta, indent=1).encode())

    @property
    def private(self) -> bool:
        return bool(self.meta.get("private"))

    def refs(self) -> dict[str, dict[str, str]]:
        data = json.loads((self.path / "refs.json").read_text())
        data.setdefault("heads", {})
        data.setdefault("tags", {})
        return data

    def write_refs(self, refs: dict[str, dict[str, str]]) -> None:
        _atomic_write(self.path / "refs.json", json.dumps(refs, indent=1, sort_keys=True).encode())

    def append_reflog(self, entry: dict[str, Any]) -> None:
        with open(self.path / "reflog.jsonl", "a") as f:
            f.write(json.dumps(entry) + "\n")

    def resolve(self, rev: str | None) -> str | None:
        """Branch, tag, ``refs/heads/x``, ``refs/tags/x`` or full commit id -> commit id."""
        rev = rev or "main"
        refs = self.refs()
        if rev.startswith("refs/heads/"):
            return refs["heads"].get(rev[len("refs/heads/") :])
        if rev.startswith("refs/tags/"):
            return refs["tags"].get(rev[len("refs/tags/") :])
        if rev in refs["heads"]:
            return refs["heads"][rev]
        if rev in refs["tags"]:
            return refs["tags"][rev]
        if _FULL_OID_RE.match(rev) and self.commit_path(rev).exists():
            return rev
        return None

    # -- commits -------------------------------------------------------------------

    def commit_path(self, oid: str) -> Path:
        return self.path / "commits" / f"{oid}.json"

    def read_commit(self, oid: str) -> dict[str, Any]:
        return self.store.read_commit(self.commit_path(oid))

    def write_commit(
        self,
        *,
        parents: list[str],
        files: dict[str, dict[str, Any]],
        title: str,
        message: str,
        author: str,
    ) -> str:
        material = json.dumps(
            {
                "repo": f"{self.repo_type}/{self.repo_id}",
                "parents": parents,
                "files": sorted((p, e["sha256"]) for p, e in files.items()),
                "title": title,
                "message": message,
                "author": author,
            },
            sort_keys=True,
        ).encode()
        oid = hashlib.sha1(material).hexdigest()
        path = self.commit_path(oid)
        if not path.exists():
            record = {
                "id": oid,
                "parents": parents,
                "title": title,
                "message": message,
                "authors": [author],
                "date": _now_iso(),
                "files": files,
            }
            _atomic_write(path, json.dumps(record, sort_keys=True).encode())
        return oid

    def log(self, oid: str) -> Iterator[dict[str, Any]]:
        """First-parent history, newest first."""
        seen = set()
        while oid and oid not in seen:
            seen.add(oid)
            commit = self.read_commit(oid)
            yield commit
            oid = commit["parents"][0] if commit["parents"] else None

    # -- blobs ---------------------------------------------------------------------

    def blob_path(self, sha256: str) -> Path:
        return self.path / "blobs" / sha256[:2] / sha256

    def store_blob(self, data: bytes) -> dict[str, Any]:
        sha256 = hashlib.sha256(data).hexdigest()
        path = self.blob_path(sha256)
        if not path.exists():
            _atomic_write(path, data)
        return {"oid": _git_blob_sha1(data), "sha256": sha256, "size": len(data)}

    def blob_entry(self, sha256: str) -> dict[str, Any] | None:
        path = self.blob_path(sha256)
        if not path.is_file():
            return None
        h = hashlib.sha1()
        size = path.stat().st_size
        h.update(b"blob %d\0" % size)
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                h.update(chunk)
        return {"oid": h.hexdigest(), "sha256": sha256, "size": size}


class _Store:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.repos_dir = root / "repos"
        self.repos_dir.mkdir(parents=True, exist_ok=True)
        self._locks: dict[tuple[str, str, str], threading.RLock] = {}
        self._global = threading.RLock()
        self._cache: collections.OrderedDict[str, dict[str, Any]] = collections.OrderedDict()
        self._cache_lock = threading.Lock()

    def repo_dir(self, repo_type: str, ns: str, name: str) -> Path:
        return self.repos_dir / f"{repo_type}s" / ns / name

    def lock(self, repo_type: str, ns: str, name: str) -> threading.RLock:
        with self._global:
            return self._locks.setdefault((repo_type, ns, name), threading.RLock())

    def get(self, repo_type: str, ns: str, name: str) -> _Repo | None:
        if repo_type not in REPO_TYPES:
            return None
        if not (_NAME_RE.match(ns or "") and _NAME_RE.match(name or "")) or ".." in ns + name:
            return None
        path = self.repo_dir(repo_type, ns, name)
        if not (path / "repo.json").is_file():
            return None
        return _Repo(self, path, repo_type, ns, name)

    def create(
        self,
        repo_type: str,
        ns: str,
        name: str,
        *,
        private: bool,
        owner: str,
        gitattributes: bool,
        extra_meta: dict[str, Any] | None = None,
    ) -> tuple[_Repo, bool]:
        """Create a repo; returns (repo, created). Existing repos are returned as is."""
        with self._global:
            existing = self.get(repo_type, ns, name)
            if existing is not None:
                return existing, False
            final = self.repo_dir(repo_type, ns, name)
            final.parent.mkdir(parents=True, exist_ok=True)
            staging = final.parent / f".{name}.{uuid.uuid4().hex}.creating"
            staging.mkdir()
            repo = _Repo(self, staging, repo_type, ns, name)
            created = _now_iso()
            repo.write_meta(
                {
                    "id": f"{ns}/{name}",
                    "type": repo_type,
                    "private": bool(private),
                    "owner": owner,
                    "createdAt": created,
                    "_id": uuid.uuid4().hex[:24],
                    **(extra_meta or {}),
                }
            )
            files = {}
            if gitattributes:
                files[".gitattributes"] = repo.store_blob(_DEFAULT_GITATTRIBUTES)
            oid = repo.write_commit(parents=[], files=files, title="initial commit", message="", author=owner)
            repo.write_refs({"heads": {"main": oid}, "tags": {}})
            repo.append_reflog({"ref": "refs/heads/main", "old": None, "new": oid, "date": created, "by": owner})
            os.replace(staging, final)
            return _Repo(self, final, repo_type, ns, name), True

    def delete(self, repo: _Repo) -> None:
        with self._global:
            trash = repo.path.parent / f".{repo.name}.{uuid.uuid4().hex}.deleted"
            os.replace(repo.path, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def iter_repos(self, repo_type: str) -> Iterator[_Repo]:
        base = self.repos_dir / f"{repo_type}s"
        if not base.is_dir():
            return
        for ns_dir in sorted(base.iterdir()):
            if not ns_dir.is_dir() or ns_dir.name.startswith("."):
                continue
            for repo_dir in sorted(ns_dir.iterdir()):
                if repo_dir.name.startswith(".") or not (repo_dir / "repo.json").is_file():
                    continue
                yield _Repo(self, repo_dir, repo_type, ns_dir.name, repo_dir.name)

    def read_commit(self, path: Path) -> dict[str, Any]:
        key = str(path)
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        data = json.loads(path.read_text())
        with self._cache_lock:
            self._cache[key] = data
            while len(self._cache) > 256:
                self._cache.popitem(last=False)
        return data

