"""A small Hugging Face Hub-compatible HTTP server for offline tests and benchmarks.

The server speaks enough of the Hub's HTTP protocol for the *real* ``huggingface_hub``
client (``HfApi``, ``hf_hub_download``, ``snapshot_download``, ``upload_folder``...) and
Minari's ``hf://`` remote to work against ``127.0.0.1`` without internet access::

    from huggingface_hub import HfApi
    from hippogym.testing.hub_server import LocalHubServer

    with LocalHubServer(root=tmp_path, tokens={"secret-token": "alice"}) as hub:
        api = HfApi(endpoint=hub.endpoint, token="secret-token")
        api.create_repo("alice/demo", repo_type="dataset")
        api.upload_folder(repo_id="alice/demo", repo_type="dataset", folder_path="some/dir")

Design notes
------------
* Everything lives on disk under ``root`` (``root/repos/<type>s/<namespace>/<name>/``):
  ``repo.json`` (metadata), ``refs.json`` (branches and tags -> commit ids),
  ``commits/<id>.json`` (one immutable snapshot per commit: message, author, parent and the
  full ``path -> blob`` map), ``blobs/<sha256[:2]>/<sha256>`` (content-addressed file bytes)
  and ``reflog.jsonl`` (an append-only log of ref updates).
* Commit ids are 40-hex sha1 digests of the commit content (repo, parent, sorted file
  hashes, message, author), so they look and behave like git commit ids.
* Uploads are always answered with ``uploadMode: "regular"`` by the ``preupload`` endpoint:
  the client then inlines the (base64) bytes in the ``commit`` ndjson payload, so neither
  Git LFS nor Xet storage is involved even when ``hf_xet`` is installed.
* Writes are atomic: blobs are written first (content addressed, so orphans are harmless),
  then the commit file (temp file + ``os.replace``), then the refs file (temp file +
  ``os.replace``) under a per-repo lock. A failed commit leaves every ref unchanged.
* Fault injection for tests: :meth:`LocalHubServer.fail_next` (error statuses or truncated
  downloads) and :meth:`LocalHubServer.tamper` (rewrite stored bytes behind the metadata).

Only the standard library is used.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import collections
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

__all__ = ["LocalHubServer", "HubError"]

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
        code: Optional[str] = None,
        headers: Optional[Dict[str, str]] = None,
        extra: Optional[Dict[str, Any]] = None,
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


def _split_repo_id(repo_id: str) -> Tuple[str, str]:
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


def _truthy(values: Optional[List[str]]) -> bool:
    return bool(values) and values[-1].lower() in ("1", "true", "yes", "on")


# --------------------------------------------------------------------------- storage


class _Repo:
    """One repository on disk (see the module docstring for the layout)."""

    def __init__(self, store: "_Store", path: Path, repo_type: str, ns: str, name: str) -> None:
        self.store = store
        self.path = path
        self.repo_type = repo_type
        self.ns = ns
        self.name = name
        self.repo_id = f"{ns}/{name}"

    # -- metadata / refs -----------------------------------------------------------

    @property
    def meta(self) -> Dict[str, Any]:
        return json.loads((self.path / "repo.json").read_text())

    def write_meta(self, meta: Dict[str, Any]) -> None:
        _atomic_write(self.path / "repo.json", json.dumps(meta, indent=1).encode())

    @property
    def private(self) -> bool:
        return bool(self.meta.get("private"))

    def refs(self) -> Dict[str, Dict[str, str]]:
        data = json.loads((self.path / "refs.json").read_text())
        data.setdefault("heads", {})
        data.setdefault("tags", {})
        return data

    def write_refs(self, refs: Dict[str, Dict[str, str]]) -> None:
        _atomic_write(self.path / "refs.json", json.dumps(refs, indent=1, sort_keys=True).encode())

    def append_reflog(self, entry: Dict[str, Any]) -> None:
        with open(self.path / "reflog.jsonl", "a") as f:
            f.write(json.dumps(entry) + "\n")

    def resolve(self, rev: Optional[str]) -> Optional[str]:
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

    def read_commit(self, oid: str) -> Dict[str, Any]:
        return self.store.read_commit(self.commit_path(oid))

    def write_commit(
        self,
        *,
        parents: List[str],
        files: Dict[str, Dict[str, Any]],
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

    def log(self, oid: str) -> Iterator[Dict[str, Any]]:
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

    def store_blob(self, data: bytes) -> Dict[str, Any]:
        sha256 = hashlib.sha256(data).hexdigest()
        path = self.blob_path(sha256)
        if not path.exists():
            _atomic_write(path, data)
        return {"oid": _git_blob_sha1(data), "sha256": sha256, "size": len(data)}

    def blob_entry(self, sha256: str) -> Optional[Dict[str, Any]]:
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
        self._locks: Dict[Tuple[str, str, str], threading.RLock] = {}
        self._global = threading.RLock()
        self._cache: "collections.OrderedDict[str, Dict[str, Any]]" = collections.OrderedDict()
        self._cache_lock = threading.Lock()

    def repo_dir(self, repo_type: str, ns: str, name: str) -> Path:
        return self.repos_dir / f"{repo_type}s" / ns / name

    def lock(self, repo_type: str, ns: str, name: str) -> threading.RLock:
        with self._global:
            return self._locks.setdefault((repo_type, ns, name), threading.RLock())

    def get(self, repo_type: str, ns: str, name: str) -> Optional[_Repo]:
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
        extra_meta: Optional[Dict[str, Any]] = None,
    ) -> Tuple[_Repo, bool]:
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

    def read_commit(self, path: Path) -> Dict[str, Any]:
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


# --------------------------------------------------------------------------- fault injection


@dataclass
class _Failure:
    pattern: "re.Pattern[str]"
    status: int
    remaining: int
    method: Optional[str]
    truncate_after: Optional[int]
    message: Optional[str]


class _ConnectionAbort(Exception):
    pass


# --------------------------------------------------------------------------- request body


class _Body:
    """Request body reader handling ``Content-Length`` and chunked transfer encoding."""

    def __init__(self, rfile, headers) -> None:
        self._spool = None
        if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
            self._spool = tempfile.SpooledTemporaryFile(max_size=16 << 20)
            while True:
                line = rfile.readline(65537)
                if not line:
                    raise HubError(400, "Truncated chunked body")
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                remaining = size
                while remaining:
                    data = rfile.read(min(remaining, _CHUNK))
                    if not data:
                        raise HubError(400, "Truncated chunked body")
                    self._spool.write(data)
                    remaining -= len(data)
                rfile.readline(3)
            self._remaining = self._spool.tell()
            self._spool.seek(0)
            self._file = self._spool
        else:
            self._file = rfile
            try:
                self._remaining = int(headers.get("Content-Length") or 0)
            except ValueError:
                raise HubError(400, "Invalid Content-Length") from None

    def read(self, n: int = -1) -> bytes:
        if self._remaining <= 0:
            return b""
        n = self._remaining if n < 0 else min(n, self._remaining)
        chunks = []
        while n > 0:
            data = self._file.read(n)
            if not data:
                break
            chunks.append(data)
            n -= len(data)
            self._remaining -= len(data)
        return b"".join(chunks)

    def readline(self) -> bytes:
        if self._remaining <= 0:
            return b""
        line = self._file.readline(self._remaining)
        self._remaining -= len(line)
        return line

    def drain(self) -> None:
        while self._remaining > 0:
            if not self.read(_CHUNK):
                break
        if self._spool is not None:
            self._spool.close()
            self._spool = None


# --------------------------------------------------------------------------- HTTP handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LocalHubServer/1.0"
    timeout = 60  # seconds an idle keep-alive connection may stay open
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms Nagle stalls

    server: "_HTTPServer"

    # -- plumbing ------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        self.server.hub._register_connection(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.hub._unregister_connection(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("%s - %s", self.address_string(), format % args)

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        pass  # every request is logged (with its duration) at the end of `_dispatch`

    def send_response(self, code: int, message: Optional[str] = None) -> None:
        self._status = code
        self._headers_started = True
        super().send_response(code, message)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    @property
    def hub(self) -> "LocalHubServer":
        return self.server.hub

    def _body(self) -> _Body:
        if self._body_obj is None:
            self._body_obj = _Body(self.rfile, self.headers)
        return self._body_obj

    def _drain(self) -> None:
        try:
            self._body().drain()
        except Exception:  # pragma: no cover - broken client
            self.close_connection = True

    def _json_body(self) -> Any:
        raw = self._body().read()
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            raise HubError(400, "Request body is not valid JSON") from None

    def _form_body(self) -> Dict[str, List[str]]:
        raw = self._body().read().decode("utf-8", "replace")
        ctype = (self.headers.get("Content-Type") or "").lower()
        if "json" in ctype:
            data = json.loads(raw or "{}")
            return {k: (v if isinstance(v, list) else [v]) for k, v in data.items()}
        return parse_qs(raw, keep_blank_values=True)

    def _send(
        self,
        status: int,
        body: bytes = b"",
        *,
        content_type: str = "application/json; charset=utf-8",
        headers: Optional[Dict[str, str]] = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self._method == "HEAD" or not body:
            return
        if self._truncate is not None and self._truncate < len(body):
            self.wfile.write(body[: self._truncate])
            self.close_connection = True
            raise _ConnectionAbort()
        self.wfile.write(body)

    def _send_json(self, status: int, payload: Any, headers: Optional[Dict[str, str]] = None) -> None:
        self._send(status, json.dumps(payload).encode(), headers=headers)

    def _send_error(self, err: HubError) -> None:
        self._drain()
        headers = dict(err.headers)
        headers["X-Error-Message"] = _header_safe(err.message)
        if err.code:
            headers["X-Error-Code"] = err.code
        payload = {"error": err.message, **err.extra}
        self._send_json(err.status, payload, headers=headers)

    def _dispatch(self, method: str) -> None:
        self._method = method
        self._status = None
        self._headers_started = False
        self._body_obj: Optional[_Body] = None
        self._truncate: Optional[int] = None
        split = urlsplit(self.path)
        raw_path = split.path
        self._raw_path = raw_path
        self._query = parse_qs(split.query, keep_blank_values=True)
        decoded = unquote(raw_path)
        started = time.perf_counter()
        try:
            try:
                failure = self.hub._take_failure(method, decoded)
                if failure is not None:
                    if failure.truncate_after is None:
                        raise HubError(
                            failure.status,
                            failure.message or f"Injected failure (HTTP {failure.status}) for {decoded}",
                        )
                    self._truncate = failure.truncate_after
                user = self._authenticate()
                self._route(method, raw_path, user)
            except HubError as err:
                if self._headers_started:
                    raise _ConnectionAbort() from err
                self._send_error(err)
            except (_ConnectionAbort, BrokenPipeError, ConnectionResetError):
                raise
            except Exception as exc:  # a bug in the server: report it as a 500
                logger.exception("LocalHubServer: unhandled error on %s %s", method, self.path)
                if self._headers_started:
                    raise _ConnectionAbort() from exc
                self._send_error(HubError(500, f"Internal server error: {type(exc).__name__}: {exc}"))
            if self._body_obj is not None or self.headers.get("Content-Length") or self.headers.get(
                "Transfer-Encoding"
            ):
                self._drain()
        except (_ConnectionAbort, BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            elapsed = time.perf_counter() - started
            self.hub._record(method, decoded, self._status, self.headers.get("Range"), elapsed)
            logger.debug("%s %s -> %s (%.1f ms)", method, self.path, self._status, elapsed * 1000)

    # -- auth ----------------------------------------------------------------------

    def _authenticate(self) -> Optional[str]:
        header = self.headers.get("Authorization")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HubError(401, "Invalid credentials in Authorization header")
        user = self.hub._user_for_token(token.strip())
        if user is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        return user

    def _repo_for_read(self, repo_type: str, ns: str, name: str, user: Optional[str]) -> _Repo:
        repo = self.hub._store.get(repo_type, ns, name)
        if repo is None or (repo.private and not self.hub._can_write(user, repo.ns)):
            self._drain()
            if user is None:
                raise HubError(
                    401,
                    "Repository not found",
                    code="RepoNotFound",
                    headers={"WWW-Authenticate": 'Bearer realm="LocalHubServer"'},
                )
            raise HubError(404, "Repository not found", code="RepoNotFound")
        return repo

    def _repo_for_write(self, repo_type: str, ns: str, name: str, user: Optional[str]) -> _Repo:
        repo = self._repo_for_read(repo_type, ns, name, user)
        if user is None:
            raise HubError(401, "You must be authenticated to write to a repository", code="RepoNotFound")
        if not self.hub._can_write(user, repo.ns):
            raise HubError(403, f"You don't have write access to {repo_type} {repo.repo_id}")
        return repo

    def _resolve_or_404(self, repo: _Repo, rev: Optional[str]) -> str:
        oid = repo.resolve(rev)
        if oid is None:
            raise HubError(404, f"Invalid rev id: {rev}", code="RevisionNotFound")
        return oid

    # -- routing -------------------------------------------------------------------

    def _route(self, method: str, raw_path: str, user: Optional[str]) -> None:
        parts = raw_path.split("/")[1:]
        if len(parts) > 1 and parts[-1] == "":
            parts = parts[:-1]
        if parts and parts[0] == "api":
            return self._route_api(method, parts[1:], user)

        # File downloads: /{ns}/{name}/resolve/{rev}/{path} and /{datasets|spaces}/{ns}/{name}/resolve/...
        if method in ("GET", "HEAD"):
            if len(parts) >= 6 and parts[0] in ("datasets", "spaces") and parts[3] in ("resolve", "raw"):
                repo_type = _PLURALS[parts[0]]
                return self._resolve_file(repo_type, unquote(parts[1]), unquote(parts[2]), parts[4], parts[5:], user)
            if len(parts) >= 5 and parts[2] in ("resolve", "raw"):
                return self._resolve_file("model", unquote(parts[0]), unquote(parts[1]), parts[3], parts[4:], user)
        raise HubError(404, f"LocalHubServer does not implement {method} {unquote(raw_path)}")

    def _route_api(self, method: str, parts: List[str], user: Optional[str]) -> None:
        if parts == ["whoami-v2"] and method == "GET":
            return self._whoami(user)
        if parts == ["repos", "create"] and method == "POST":
            return self._create_repo(user)
        if parts == ["repos", "delete"] and method == "DELETE":
            return self._delete_repo(user)
        if parts == ["validate-yaml"] and method == "POST":
            self._json_body()
            return self._send_json(200, {"errors": [], "warnings": []})
        if parts and parts[0] in _PLURALS:
            repo_type = _PLURALS[parts[0]]
            if len(parts) == 1 and method == "GET":
                return self._list_repos(repo_type, user)
            if len(parts) >= 3:
                ns, name = unquote(parts[1]), unquote(parts[2])
                action = parts[3] if len(parts) > 3 else None
                args = parts[4:]
                joined = unquote("/".join(args)) if args else None
                if action is None and method == "GET":
                    return self._repo_info(repo_type, ns, name, None, user)
                if action == "revision" and method == "GET" and args:
                    return self._repo_info(repo_type, ns, name, joined, user)
                if action == "tree" and method == "GET":
                    rev = unquote(args[0]) if args else "main"
                    path = unquote("/".join(args[1:])) if len(args) > 1 else ""
                    return self._tree(repo_type, ns, name, rev, path, user)
                if action == "paths-info" and method == "POST":
                    return self._paths_info(repo_type, ns, name, joined or "main", user)
                if action == "refs" and method == "GET" and not args:
                    return self._refs(repo_type, ns, name, user)
                if action == "commits" and method == "GET":
                    return self._commits(repo_type, ns, name, joined or "main", user)
                if action == "preupload" and method == "POST":
                    return self._preupload(repo_type, ns, name, joined or "main", user)
                if action == "commit" and method == "POST":
                    return self._commit(repo_type, ns, name, joined or "main", user)
                if action == "branch" and args and method in ("POST", "DELETE"):
                    return self._branch(method, repo_type, ns, name, joined, user)
                if action == "tag" and args and method in ("POST", "DELETE"):
                    return self._tag(method, repo_type, ns, name, joined, user)
                if action == "settings" and method == "PUT" and not args:
                    return self._settings(repo_type, ns, name, user)
        self._drain()
        raise HubError(404, f"LocalHubServer does not implement {method} /api/{'/'.join(parts)}")

    # -- account / repo management ------------------------------------------------

    def _whoami(self, user: Optional[str]) -> None:
        if user is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        orgs = [{"type": "org", "name": org} for org in self.hub._orgs_of(user)]
        self._send_json(
            200,
            {
                "type": "user",
                "id": hashlib.sha1(user.encode()).hexdigest()[:24],
                "name": user,
                "fullname": user,
                "email": None,
                "emailVerified": False,
                "isPro": False,
                "orgs": orgs,
                "auth": {"type": "access_token", "accessToken": {"displayName": "local", "role": "write"}},
            },
        )

    def _repo_url(self, repo_type: str, repo_id: str) -> str:
        return f"{self.hub.endpoint}/{_URL_PREFIX[repo_type]}{repo_id}"

    def _create_repo(self, user: Optional[str]) -> None:
        body = self._json_body()
        if user is None:
            raise HubError(401, "You must be authenticated to create a repository")
        repo_type = body.get("type") or "model"
        if repo_type not in REPO_TYPES:
            raise HubError(400, f"Invalid repo type: {repo_type!r}")
        name = _validate_repo_name(str(body.get("name") or ""), "repository name")
        ns = _validate_repo_name(str(body.get("organization") or user), "namespace")
        if not self.hub._can_write(user, ns):
            raise HubError(403, f'You don\'t have the rights to create a {repo_type} under the namespace "{ns}"')
        private = body.get("visibility") == "private" or bool(body.get("private"))
        extra = {"sdk": body["sdk"]} if repo_type == "space" and body.get("sdk") else None
        repo, created = self.hub._store.create(
            repo_type, ns, name, private=private, owner=user, gitattributes=self.hub._gitattributes, extra_meta=extra
        )
        url = self._repo_url(repo_type, repo.repo_id)
        if not created:
            raise HubError(409, f"You already created this {repo_type} repo", extra={"url": url})
        logger.info("created %s repo %s (private=%s)", repo_type, repo.repo_id, private)
        self._send_json(200, {"url": url, "name": repo.repo_id, "id": repo.meta.get("_id")})

    def _delete_repo(self, user: Optional[str]) -> None:
        body = self._json_body()
        repo_type = body.get("type") or "model"
        if repo_type not in REPO_TYPES:
            raise HubError(400, f"Invalid repo type: {repo_type!r}")
        name = str(body.get("name") or "")
        ns = str(body.get("organization") or user or "")
        repo = self._repo_for_write(repo_type, ns, name, user)
        with self.hub._store.lock(repo_type, repo.ns, repo.name):
            self.hub._store.delete(repo)
        self._send(200, b"", content_type="text/plain")

    def _settings(self, repo_type: str, ns: str, name: str, user: Optional[str]) -> None:
        body = self._json_body()
        repo = self._repo_for_write(repo_type, ns, name, user)
        with self.hub._store.lock(repo_type, ns, name):
            meta = repo.meta
            if "visibility" in body:
                meta["private"] = body["visibility"] == "private"
            if "private" in body:
                meta["private"] = bool(body["private"])
            if "gated" in body:
                meta["gated"] = body["gated"]
            repo.write_meta(meta)
        self._send_json(200, {})

    # -- read endpoints ------------------------------------------------------------

    def _repo_summary(self, repo: _Repo, oid: str, commit: Dict[str, Any]) -> Dict[str, Any]:
        meta = repo.meta
        info: Dict[str, Any] = {
            "_id": meta.get("_id"),
            "id": repo.repo_id,
            "author": repo.ns,
            "sha": oid,
            "lastModified": commit["date"],
            "createdAt": meta.get("createdAt"),
            "private": bool(meta.get("private")),
            "gated": meta.get("gated", False),
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
        }
        if repo.repo_type == "model":
            info["modelId"] = repo.repo_id
        return info

    def _repo_info(self, repo_type: str, ns: str, name: str, rev: Optional[str], user: Optional[str]) -> None:
        repo = self._repo_for_read(repo_type, ns, name, user)
        oid = self._resolve_or_404(repo, rev)
        commit = repo.read_commit(oid)
        info = self._repo_summary(repo, oid, commit)
        with_blobs = _truthy(self._query.get("blobs"))
        siblings = []
        for path in sorted(commit["files"]):
            entry = {"rfilename": path}
            if with_blobs:
                e = commit["files"][path]
                entry.update({"size": e["size"], "blobId": e["oid"]})
            siblings.append(entry)
        info["siblings"] = siblings
        info["usedStorage"] = sum(e["size"] for e in commit["files"].values())
        if repo_type == "dataset":
            info.update({"description": "", "citation": "", "cardData": {}})
        elif repo_type == "space":
            info.update({"sdk": repo.meta.get("sdk", "static"), "runtime": None})
        self._send_json(200, info)

    def _list_repos(self, repo_type: str, user: Optional[str]) -> None:
        q = self._query
        author = (q.get("author") or [None])[-1]
        searches = [s.lower() for s in q.get("search", []) if s]
        filters = [f for f in q.get("filter", []) if f]
        items = []
        for repo in self.hub._store.iter_repos(repo_type):
            if author and repo.ns != author:
                continue
            if repo.private and not self.hub._can_write(user, repo.ns):
                continue
            if any(s not in repo.repo_id.lower() for s in searches):
                continue
            if filters:  # no tags are stored: any tag filter excludes every repo
                continue
            oid = repo.resolve("main")
            if oid is None:
                continue
            items.append(self._repo_summary(repo, oid, repo.read_commit(oid)))
        sort = (q.get("sort") or [None])[-1]
        if sort in ("lastModified", "createdAt", "id"):
            items.sort(key=lambda i: i.get(sort) or "", reverse=(q.get("direction") or ["-1"])[-1] == "-1")
        limit = (q.get("limit") or [None])[-1]
        if limit:
            items = items[: int(limit)]
        self._send_paginated(items)

    def _send_paginated(self, items: List[Any]) -> None:
        try:
            offset = int(base64.urlsafe_b64decode((self._query.get("cursor") or ["MA=="])[-1]).decode())
        except (ValueError, binascii.Error):
            raise HubError(400, "Invalid cursor") from None
        size = self.hub.page_size
        page = items[offset : offset + size]
        headers = {}
        if offset + size < len(items):
            query = {k: v for k, v in self._query.items() if k != "cursor"}
            query["cursor"] = [base64.urlsafe_b64encode(str(offset + size).encode()).decode()]
            next_url = f"{self.hub.endpoint}{self._raw_path}?{urlencode(query, doseq=True)}"
            headers["Link"] = f'<{next_url}>; rel="next"'
        self._send_json(200, page, headers=headers)

    @staticmethod
    def _dir_oid(files: Dict[str, Dict[str, Any]], directory: str) -> str:
        prefix = directory + "/"
        h = hashlib.sha1()
        for p in sorted(p for p in files if p.startswith(prefix)):
            h.update(f"{p[len(prefix):]}\0{files[p]['oid']}\n".encode())
        return h.hexdigest()

    def _tree_entries(
        self, files: Dict[str, Dict[str, Any]], base: str, recursive: bool
    ) -> List[Dict[str, Any]]:
        prefix = base + "/" if base else ""
        dirs = set()
        out_files = []
        for path in files:
            if not path.startswith(prefix):
                continue
            rel = path[len(prefix) :]
            segments = rel.split("/")
            if recursive:
                out_files.append(path)
                for i in range(1, len(segments)):
                    dirs.add(prefix + "/".join(segments[:i]))
            elif len(segments) == 1:
                out_files.append(path)
            else:
                dirs.add(prefix + segments[0])
        entries = [{"type": "directory", "oid": self._dir_oid(files, d), "size": 0, "path": d} for d in dirs]
        for path in out_files:
            e = files[path]
            entries.append({"type": "file", "oid": e["oid"], "size": e["size"], "path": path})
        entries.sort(key=lambda e: e["path"])
        return entries

    def _last_commits(self, repo: _Repo, oid: str, entries: List[Dict[str, Any]]) -> None:
        pending = {e["path"]: e for e in entries}
        for commit in repo.log(oid):
            if not pending:
                break
            parent = repo.read_commit(commit["parents"][0])["files"] if commit["parents"] else {}
            files = commit["files"]
            changed = {p for p in set(files) | set(parent) if files.get(p) != parent.get(p)}
            info = {"id": commit["id"], "title": commit["title"], "date": commit["date"]}
            for path in list(pending):
                entry = pending[path]
                if entry["type"] == "file":
                    hit = path in changed
                else:
                    hit = any(c.startswith(path + "/") for c in changed)
                if hit or not commit["parents"]:
                    entry["lastCommit"] = info
                    del pending[path]

    def _tree(self, repo_type: str, ns: str, name: str, rev: str, path: str, user: Optional[str]) -> None:
        repo = self._repo_for_read(repo_type, ns, name, user)
        oid = self._resolve_or_404(repo, rev)
        files = repo.read_commit(oid)["files"]
        base = path.strip("/")
        if base in files:
            raise HubError(404, f"{base} is a file, not a directory", code="EntryNotFound")
        entries = self._tree_entries(files, base, _truthy(self._query.get("recursive")))
        if base and not entries:
            raise HubError(404, f"Entry not found: {base}", code="EntryNotFound", headers={"X-Repo-Commit": oid})
        if _truthy(self._query.get("expand")):
            self._last_commits(repo, oid, entries)
        self._send_paginated(entries)

    def _paths_info(self, repo_type: str, ns: str, name: str, rev: str, user: Optional[str]) -> None:
        form = self._form_body()
        repo = self._repo_for_read(repo_type, ns, name, user)
        oid = self._resolve_or_404(repo, rev)
        files = repo.read_commit(oid)["files"]
        out = []
        for raw in form.get("paths", []):
            path = raw.strip("/")
            if path in files:
                e = files[path]
                out.append({"type": "file", "oid": e["oid"], "size": e["size"], "path": path})
            elif path and any(p.startswith(path + "/") for p in files):
                out.append({"type": "directory", "oid": self._dir_oid(files, path), "size": 0, "path": path})
        if _truthy(form.get("expand")):
            self._last_commits(repo, oid, out)
        self._send_json(200, out)

    def _refs(self, repo_type: str, ns: str, name: str, user: Optional[str]) -> None:
        repo = self._repo_for_read(repo_type, ns, name, user)
        refs = repo.refs()
        payload = {
            "branches": [
                {"name": b, "ref": f"refs/heads/{b}", "targetCommit": oid} for b, oid in sorted(refs["heads"].items())
            ],
            "converts": [],
            "tags": [
                {"name": t, "ref": f"refs/tags/{t}", "targetCommit": oid} for t, oid in sorted(refs["tags"].items())
            ],
        }
        if _truthy(self._query.get("include_prs")):
            payload["pullRequests"] = []
        self._send_json(200, payload)

    def _commits(self, repo_type: str, ns: str, name: str, rev: str, user: Optional[str]) -> None:
        repo = self._repo_for_read(repo_type, ns, name, user)
        oid = self._resolve_or_404(repo, rev)
        items = [
            {
                "id": c["id"],
                "title": c["title"],
                "message": c["message"],
                "authors": [{"user": a, "avatar": None} for a in c["authors"]],
                "date": c["date"],
                "formatted": {"title": c["title"], "message": c["message"]},
            }
            for c in repo.log(oid)
        ]
        self._send_paginated(items)

    def _resolve_file(
        self,
        repo_type: str,
        ns: str,
        name: str,
        raw_rev: str,
        raw_path_parts: List[str],
        user: Optional[str],
    ) -> None:
        repo = self._repo_for_read(repo_type, ns, name, user)
        rev = unquote(raw_rev)
        oid = self._resolve_or_404(repo, rev)
        path = unquote("/".join(raw_path_parts))
        entry = repo.read_commit(oid)["files"].get(path)
        if entry is None:
            raise HubError(404, "Entry not found", code="EntryNotFound", headers={"X-Repo-Commit": oid})
        blob = repo.blob_path(entry["sha256"])
        with open(blob, "rb") as f:
            size = os.fstat(f.fileno()).st_size  # actual bytes on disk (see `tamper`)
            start, end, status = 0, size - 1, 200
            headers = {
                "ETag": f'"{entry["oid"]}"',
                "X-Repo-Commit": oid,
                "Accept-Ranges": "bytes",
                "Content-Disposition": f'inline; filename="{_header_safe(path.rsplit("/", 1)[-1])}"',
                "Cache-Control": "no-cache",
            }
            requested = self.headers.get("Range")
            if requested:
                parsed = self._parse_range(requested, size)
                if parsed is None:
                    raise HubError(416, "Requested range not satisfiable", headers={"Content-Range": f"bytes */{size}"})
                if parsed is not False:
                    start, end = parsed
                    status = 206
                    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            length = max(end - start + 1, 0)
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(length))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            if self._method == "HEAD":
                return
            f.seek(start)
            remaining = length
            budget = self._truncate
            while remaining > 0:
                chunk = f.read(min(_CHUNK, remaining))
                if not chunk:
                    break
                if budget is not None:
                    if len(chunk) >= budget:
                        self.wfile.write(chunk[:budget])
                        self.wfile.flush()
                        raise _ConnectionAbort()
                    budget -= len(chunk)
                self.wfile.write(chunk)
                remaining -= len(chunk)
            if remaining > 0:  # the blob shrank while streaming: cannot honour Content-Length
                raise _ConnectionAbort()

    @staticmethod
    def _parse_range(value: str, size: int) -> "Optional[Tuple[int, int]] | bool":
        """Parse a single ``bytes=`` range.

        Returns ``(start, end)``, ``None`` when not satisfiable (416) or ``False`` when the
        header is malformed or asks for several ranges (ignored: the full content is sent).
        """
        m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", value)
        if not m or (not m.group(1) and not m.group(2)):
            return False
        if m.group(1):
            start = int(m.group(1))
            end = int(m.group(2)) if m.group(2) else size - 1
        else:  # suffix range: last N bytes
            n = int(m.group(2))
            if n == 0:
                return None
            start, end = max(size - n, 0), size - 1
        end = min(end, size - 1)
        if start >= size or start > end:
            return None
        return start, end

    # -- write endpoints -----------------------------------------------------------

    @staticmethod
    def _branch_of(rev: str) -> str:
        return rev[len("refs/heads/") :] if rev.startswith("refs/heads/") else rev

    def _preupload(self, repo_type: str, ns: str, name: str, rev: str, user: Optional[str]) -> None:
        body = self._json_body()
        repo = self._repo_for_write(repo_type, ns, name, user)
        oid = self._resolve_or_404(repo, rev)
        files = repo.read_commit(oid)["files"]
        out = []
        for item in body.get("files", []):
            path = item.get("path")
            existing = files.get(path)
            out.append(
                {
                    "path": path,
                    "uploadMode": "regular",  # never LFS / Xet: bytes go inline in the commit payload
                    "shouldIgnore": False,
                    "oid": existing["oid"] if existing else None,
                }
            )
        self._send_json(200, {"files": out, "commitOid": oid})

    def _commit(self, repo_type: str, ns: str, name: str, rev: str, user: Optional[str]) -> None:
        repo = self._repo_for_write(repo_type, ns, name, user)
        if _truthy(self._query.get("create_pr")):
            raise HubError(400, "LocalHubServer does not support pull requests (create_pr=1)")
        branch = self._branch_of(rev)

        # 1. Parse the ndjson payload line by line; file bytes go straight to the blob store.
        header: Optional[Dict[str, Any]] = None
        ops: List[Tuple[str, str, Optional[Dict[str, Any]]]] = []
        body = self._body()
        while True:
            line = body.readline()
            if not line:
                break
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                key, value = item["key"], item["value"]
            except (ValueError, KeyError, TypeError):
                raise HubError(400, "Malformed ndjson line in commit payload") from None
            if key == "header":
                header = value
            elif key == "file":
                path = _validate_path_in_repo(value.get("path"))
                encoding = (value.get("encoding") or "base64").lower()
                content = value.get("content") or ""
                try:
                    data = base64.b64decode(content, validate=True) if encoding == "base64" else content.encode()
                except (binascii.Error, ValueError):
                    raise HubError(400, f"Invalid base64 content for {path}") from None
                ops.append(("add", path, repo.store_blob(data)))
            elif key == "lfsFile":
                path = _validate_path_in_repo(value.get("path"))
                sha256 = str(value.get("oid", "")).lower()
                entry = repo.blob_entry(sha256) if re.fullmatch(r"[0-9a-f]{64}", sha256) else None
                if entry is None:
                    raise HubError(
                        422,
                        f"LFS object {value.get('oid')} for {path} is not stored on this server "
                        "(LocalHubServer only accepts regular uploads)",
                    )
                ops.append(("add", path, entry))
            elif key == "deletedFile":
                ops.append(("delete", _validate_path_in_repo(value.get("path")), None))
            elif key == "deletedFolder":
                ops.append(("delete_folder", _validate_path_in_repo(str(value.get("path", "")).rstrip("/")), None))
            else:
                raise HubError(400, f"Unsupported commit operation {key!r}")
        if header is None or not str(header.get("summary") or "").strip():
            raise HubError(400, "Commit payload must start with a header holding a non-empty summary")

        # 2. Apply the operations on top of the branch head, under the repo lock.
        with self.hub._store.lock(repo_type, repo.ns, repo.name):
            refs = repo.refs()
            if branch not in refs["heads"]:
                if branch in refs["tags"] or repo.resolve(branch) is not None:
                    raise HubError(400, f"Cannot commit to {rev!r}: not a branch")
                raise HubError(404, f"Invalid rev id: {rev}", code="RevisionNotFound")
            head = refs["heads"][branch]
            expected_parent = header.get("parentCommit")
            if expected_parent and not head.startswith(str(expected_parent).lower()):
                raise HubError(
                    412,
                    f"A commit has happened since. Please refresh and try again. "
                    f"(branch {branch} is at {head}, parentCommit was {expected_parent})",
                )
            files = dict(repo.read_commit(head)["files"])
            for kind, path, entry in ops:
                if kind == "add":
                    files[path] = entry
                elif kind == "delete":
                    if path not in files:
                        raise HubError(
                            404,
                            f"A file with this name doesn't exist: {path}",
                            code="EntryNotFound",
                        )
                    del files[path]
                else:
                    doomed = [p for p in files if p.startswith(path + "/")]
                    if not doomed:
                        raise HubError(404, f"A folder with this name doesn't exist: {path}", code="EntryNotFound")
                    for p in doomed:
                        del files[p]
            directories = {p.rsplit("/", 1)[0] for p in files if "/" in p}
            directories = {"/".join(d.split("/")[: i + 1]) for d in directories for i in range(d.count("/") + 1)}
            clash = sorted(directories & set(files))
            if clash:
                raise HubError(400, f"Path {clash[0]!r} would be both a file and a directory")
            oid = repo.write_commit(
                parents=[head],
                files=files,
                title=str(header.get("summary")).strip(),
                message=str(header.get("description") or ""),
                author=user or "anonymous",
            )
            refs["heads"][branch] = oid
            repo.write_refs(refs)
            repo.append_reflog(
                {"ref": f"refs/heads/{branch}", "old": head, "new": oid, "date": _now_iso(), "by": user}
            )
        logger.info("commit %s on %s %s@%s (%d ops)", oid[:10], repo_type, repo.repo_id, branch, len(ops))
        url = f"{self._repo_url(repo_type, repo.repo_id)}/commit/{oid}"
        self._send_json(
            200,
            {"success": True, "commitOid": oid, "commitUrl": url, "hookOutput": "", "pullRequestUrl": None},
        )

    def _branch(self, method: str, repo_type: str, ns: str, name: str, branch: str, user: Optional[str]) -> None:
        body = self._json_body() if method == "POST" else {}
        repo = self._repo_for_write(repo_type, ns, name, user)
        branch = _validate_ref_name(self._branch_of(branch))
        with self.hub._store.lock(repo_type, repo.ns, repo.name):
            refs = repo.refs()
            if method == "DELETE":
                if branch not in refs["heads"]:
                    raise HubError(404, f"Invalid rev id: {branch}", code="RevisionNotFound")
                if branch == "main":
                    raise HubError(403, "Cannot delete the default branch")
                old = refs["heads"].pop(branch)
                new = None
            else:
                if branch in refs["heads"]:
                    raise HubError(409, f"Reference already exists: refs/heads/{branch}")
                start = body.get("startingPoint") or "main"
                old, new = None, self._resolve_or_404(repo, start)
                refs["heads"][branch] = new
            repo.write_refs(refs)
            repo.append_reflog({"ref": f"refs/heads/{branch}", "old": old, "new": new, "date": _now_iso(), "by": user})
        self._send_json(200, {})

    def _tag(self, method: str, repo_type: str, ns: str, name: str, target: str, user: Optional[str]) -> None:
        body = self._json_body() if method == "POST" else {}
        repo = self._repo_for_write(repo_type, ns, name, user)
        with self.hub._store.lock(repo_type, repo.ns, repo.name):
            refs = repo.refs()
            if method == "DELETE":
                tag = target[len("refs/tags/") :] if target.startswith("refs/tags/") else target
                if tag not in refs["tags"]:
                    raise HubError(404, f"Invalid rev id: {tag}", code="RevisionNotFound")
                old, new = refs["tags"].pop(tag), None
            else:
                tag = _validate_ref_name(str(body.get("tag") or ""))
                if tag in refs["tags"]:
                    raise HubError(409, f"Reference already exists: refs/tags/{tag}")
                old, new = None, self._resolve_or_404(repo, target)
                refs["tags"][tag] = new
            repo.write_refs(refs)
            repo.append_reflog({"ref": f"refs/tags/{tag}", "old": old, "new": new, "date": _now_iso(), "by": user})
        self._send_json(200, {})


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # parallel downloads open many connections at once
    hub: "LocalHubServer"


# --------------------------------------------------------------------------- public API


class LocalHubServer:
    """A Hub-compatible HTTP server on ``127.0.0.1`` storing repositories under ``root``.

    Args:
        root: directory holding all repositories (created if missing). Reusing a root
            serves the repositories written by an earlier server.
        tokens: ``{token: username}``; requests carry ``Authorization: Bearer <token>``.
            A user owns the namespace named after them.
        orgs: ``{org_name: [members]}``; members may create/write repos under ``org_name``.
        host / port: where to listen (``port=0`` picks a free ephemeral port).
        page_size: entries per page for paginated listings (tree, commits, repo lists).
        gitattributes: add a ``.gitattributes`` file in the initial commit of new repos,
            like the Hub does.

    Use as a context manager, or call :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        root: "str | os.PathLike[str]",
        tokens: Optional[Dict[str, str]] = None,
        *,
        orgs: Optional[Dict[str, Iterable[str]]] = None,
        host: str = "127.0.0.1",
        port: int = 0,
        page_size: int = 1000,
        gitattributes: bool = True,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._tokens: Dict[str, str] = dict(tokens or {})
        self._orgs: Dict[str, set] = {org: set(members) for org, members in (orgs or {}).items()}
        self._host = host
        self._port = port
        self.page_size = int(page_size)
        self._gitattributes = gitattributes
        self._store = _Store(self.root)
        self._lock = threading.Lock()
        self._failures: List[_Failure] = []
        self._requests: "collections.deque[Dict[str, Any]]" = collections.deque(maxlen=10_000)
        self._connections: set = set()
        self._httpd: Optional[_HTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> "LocalHubServer":
        if self._httpd is not None:
            return self
        httpd = _HTTPServer((self._host, self._port), _Handler)
        httpd.hub = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="LocalHubServer", daemon=True
        )
        self._thread.start()
        logger.info("LocalHubServer serving %s from %s", self.endpoint, self.root)
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:  # close keep-alive connections still held by client pools
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "LocalHubServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("LocalHubServer is not running")
        return self._httpd.server_address[1]

    @property
    def endpoint(self) -> str:
        """Base URL to pass as ``endpoint=`` / ``HF_ENDPOINT`` (no trailing slash)."""
        return f"http://{self._host}:{self.port}"

    # -- users ---------------------------------------------------------------------

    def add_token(self, token: str, user: str) -> None:
        with self._lock:
            self._tokens[token] = user

    def _user_for_token(self, token: str) -> Optional[str]:
        with self._lock:
            return self._tokens.get(token)

    def _orgs_of(self, user: str) -> List[str]:
        return sorted(org for org, members in self._orgs.items() if user in members)

    def _can_write(self, user: Optional[str], namespace: str) -> bool:
        return user is not None and (user == namespace or user in self._orgs.get(namespace, ()))

    # -- fault injection -----------------------------------------------------------

    def fail_next(
        self,
        path_regex: str,
        status: int = 500,
        count: int = 1,
        *,
        method: Optional[str] = None,
        truncate_after: Optional[int] = None,
        message: Optional[str] = None,
    ) -> None:
        """Make the next ``count`` requests whose (URL-decoded) path matches fail.

        ``path_regex`` is searched (``re.search``) in the path, e.g. ``r"/commit/"`` or
        ``r"/resolve/main/weights.bin$"``. ``method`` restricts the match (``"GET"``...).
        By default the request is answered with ``status`` and a JSON error, without
        being processed (nothing is written). With ``truncate_after=N`` the request is
        processed normally but the connection is closed after N body bytes (a dropped
        download: the client sees a short read and may resume with a ``Range`` request).
        """
        if count < 1:
            raise ValueError("count must be >= 1")
        with self._lock:
            self._failures.append(
                _Failure(
                    pattern=re.compile(path_regex),
                    status=int(status),
                    remaining=int(count),
                    method=method.upper() if method else None,
                    truncate_after=truncate_after,
                    message=message,
                )
            )

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    @property
    def pending_failures(self) -> int:
        """Number of injected failures not consumed yet."""
        with self._lock:
            return sum(f.remaining for f in self._failures)

    def _take_failure(self, method: str, path: str) -> Optional[_Failure]:
        with self._lock:
            for failure in self._failures:
                if failure.method and failure.method != method:
                    continue
                if failure.pattern.search(path):
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        self._failures.remove(failure)
                    return failure
        return None

    def tamper(
        self,
        repo_id: str,
        path: str,
        data: bytes,
        *,
        repo_type: str = "model",
        revision: str = "main",
    ) -> None:
        """Overwrite the stored bytes of ``path`` (at ``revision``) in place.

        Commit metadata (ids, ETag / git oid, recorded size and sha256) is left unchanged,
        so downloads serve ``data`` under the original ETag: a client-side checksum check
        is the only way to notice. The blob store is content addressed per repository, so
        every file of this repository with the same original content is affected too.
        """
        repo = self._require_repo(repo_id, repo_type)
        oid = repo.resolve(revision)
        if oid is None:
            raise KeyError(f"revision {revision!r} not found in {repo_type} {repo_id}")
        entry = repo.read_commit(oid)["files"].get(path)
        if entry is None:
            raise KeyError(f"{path!r} not found in {repo_type} {repo_id}@{revision}")
        with open(repo.blob_path(entry["sha256"]), "r+b") as f:
            f.write(data)
            f.truncate()

    # -- inspection / server-side helpers -----------------------------------------

    def _require_repo(self, repo_id: str, repo_type: str) -> _Repo:
        ns, name = _split_repo_id(repo_id)
        repo = self._store.get(repo_type, ns, name)
        if repo is None:
            raise KeyError(f"{repo_type} repo {repo_id!r} does not exist")
        return repo

    def commits(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> List[str]:
        """Commit ids reachable from ``revision`` (first-parent history), newest first."""
        repo = self._require_repo(repo_id, repo_type)
        oid = repo.resolve(revision)
        if oid is None:
            raise KeyError(f"revision {revision!r} not found in {repo_type} {repo_id}")
        return [c["id"] for c in repo.log(oid)]

    def refs(self, repo_id: str, repo_type: str = "model") -> Dict[str, Dict[str, str]]:
        """``{"heads": {branch: commit}, "tags": {tag: commit}}``."""
        return self._require_repo(repo_id, repo_type).refs()

    def files(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> Dict[str, Dict[str, Any]]:
        """``{path: {"oid", "sha256", "size"}}`` recorded in the commit at ``revision``."""
        repo = self._require_repo(repo_id, repo_type)
        oid = repo.resolve(revision)
        if oid is None:
            raise KeyError(f"revision {revision!r} not found in {repo_type} {repo_id}")
        return dict(repo.read_commit(oid)["files"])

    def create_repo(
        self, repo_id: str, *, repo_type: str = "model", private: bool = False, exist_ok: bool = False
    ) -> str:
        """Create a repository directly (no HTTP, no token); returns its URL."""
        if repo_type not in REPO_TYPES:
            raise ValueError(f"invalid repo_type {repo_type!r}")
        ns, name = _split_repo_id(repo_id)
        _validate_repo_name(ns, "namespace")
        _validate_repo_name(name, "repository name")
        _, created = self._store.create(
            repo_type, ns, name, private=private, owner=ns, gitattributes=self._gitattributes
        )
        if not created and not exist_ok:
            raise FileExistsError(f"{repo_type} repo {repo_id!r} already exists")
        return f"{self.endpoint}/{_URL_PREFIX[repo_type]}{repo_id}"

    @property
    def requests(self) -> List[Dict[str, Any]]:
        """Recent requests (oldest first): ``{"method", "path", "status", "range", "seconds"}``."""
        with self._lock:
            return list(self._requests)

    def _record(self, method: str, path: str, status: Optional[int], range_: Optional[str], seconds: float) -> None:
        with self._lock:
            self._requests.append(
                {"method": method, "path": path, "status": status, "range": range_, "seconds": seconds}
            )

    def _register_connection(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)

    def _unregister_connection(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)


# --------------------------------------------------------------------------- CLI


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hippogym.testing.hub_server",
        description="Serve a local Hugging Face Hub-compatible API (for tests and benchmarks).",
    )
    parser.add_argument("--root", required=True, help="directory holding the repositories")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--token", action="append", default=[], metavar="TOKEN:USER", help="accepted token and its user (repeatable)"
    )
    parser.add_argument(
        "--org", action="append", default=[], metavar="ORG:USER[,USER...]", help="organization members (repeatable)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    tokens = {}
    for spec in args.token:
        token, sep, user = spec.rpartition(":")
        if not sep or not token or not user:
            parser.error(f"--token expects TOKEN:USER, got {spec!r}")
        tokens[token] = user
    orgs = {}
    for spec in args.org:
        org, sep, members = spec.partition(":")
        if not sep or not org:
            parser.error(f"--org expects ORG:USER[,USER...], got {spec!r}")
        orgs[org] = [m for m in members.split(",") if m]

    hub = LocalHubServer(args.root, tokens, orgs=orgs, host=args.host, port=args.port)
    hub.start()
    logger.info("HF_ENDPOINT=%s (Ctrl+C to stop)", hub.endpoint)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        hub.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
