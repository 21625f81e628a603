"""The local Hub server object: lifecycle, users, fault injection and inspection helpers."""

from __future__ import annotations

import collections
import logging
import os
import re
import secrets
import socket
import threading
from collections.abc import Iterable
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .handler import BaseHandler, _Failure
from .reads import ReadEndpoints
from .store import (
    _URL_PREFIX,
    REPO_TYPES,
    _Repo,
    _split_repo_id,
    _Store,
    _validate_repo_name,
)
from .writes import WriteEndpoints

logger = logging.getLogger(__name__)

class _Handler(ReadEndpoints, WriteEndpoints, BaseHandler):
    """The request handler: plumbing and routing from BaseHandler, endpoints from the two mixins."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # parallel downloads open many connections at once
    hub: LocalHubServer


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
        lfs_threshold: files of at least this many bytes are uploaded through Git LFS, like
            the Hub does for large files: ``preupload`` answers ``uploadMode: "lfs"``, the
            client asks the LFS batch API (``{repo}.git/info/lfs/objects/batch``) where to
            PUT the bytes, PUTs them to a one-time URL and calls the ``verify`` action; the
            commit then refers to the object by its sha256 (``lfsFile``). ``None`` (default)
            answers ``"regular"`` for every file. The client must not use Xet storage
            (``HF_HUB_DISABLE_XET=1``, or ``huggingface_hub.constants.HF_HUB_DISABLE_XET``),
            which this server does not speak. Settable later as the attribute.

    Use as a context manager, or call :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        tokens: dict[str, str] | None = None,
        *,
        orgs: dict[str, Iterable[str]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        page_size: int = 1000,
        gitattributes: bool = True,
        lfs_threshold: int | None = None,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._tokens: dict[str, str] = dict(tokens or {})
        self._orgs: dict[str, set] = {org: set(members) for org, members in (orgs or {}).items()}
        self._host = host
        self._port = port
        self.page_size = int(page_size)
        self._gitattributes = gitattributes
        self.lfs_threshold = lfs_threshold
        self._lfs_tickets: dict[str, tuple[str, str, str, str, int]] = {}
        self._store = _Store(self.root)
        self._lock = threading.Lock()
        self._failures: list[_Failure] = []
        self._requests: collections.deque[dict[str, Any]] = collections.deque(maxlen=10_000)
        self._connections: set = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> LocalHubServer:
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

    def __enter__(self) -> LocalHubServer:
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

    def _user_for_token(self, token: str) -> str | None:
        with self._lock:
            return self._tokens.get(token)

    def _orgs_of(self, user: str) -> list[str]:
        return sorted(org for org, members in self._orgs.items() if user in members)

    def _can_write(self, user: str | None, namespace: str) -> bool:
        return user is not None and (user == namespace or user in self._orgs.get(namespace, ()))

    # -- fault injection -----------------------------------------------------------

    def fail_next(
        self,
        path_regex: str,
        status: int = 500,
        count: int = 1,
        *,
        method: str | None = None,
        truncate_after: int | None = None,
        message: str | None = None,
        after_processing: bool = False,
    ) -> None:
        """Make the next ``count`` requests whose (URL-decoded) path matches fail.

        ``path_regex`` is searched (``re.search``) in the path, e.g. ``r"/commit/"`` or
        ``r"/resolve/main/weights.bin$"``. ``method`` restricts the match (``"GET"``...).
        By default the request is answered with ``status`` and a JSON error, without
        being processed (nothing is written). With ``truncate_after=N`` the request is
        processed normally but the connection is closed after N body bytes (a dropped
        download: the client sees a short read and may resume with a ``Range`` request).
        With ``after_processing=True`` the request is processed normally (a commit lands,
        an LFS object is stored) and only its answer is replaced by ``status``: a lost
        answer, after which the client cannot tell from the response what happened.
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
                    after_processing=after_processing,
                )
            )

    def _lfs_ticket(self, repo_type: str, ns: str, name: str, oid: str, size: int) -> str:
        ticket = secrets.token_urlsafe(16)
        with self._lock:
            self._lfs_tickets[ticket] = (repo_type, ns, name, oid, size)
        return ticket

    def _lfs_take_ticket(self, ticket: str) -> tuple[str, str, str, str, int] | None:
        with self._lock:  # reusable, like a presigned URL (a retried PUT after a lost answer works)
            return self._lfs_tickets.get(ticket)

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    @property
    def pending_failures(self) -> int:
        """Number of injected failures not consumed yet."""
        with self._lock:
            return sum(f.remaining for f in self._failures)

    def _take_failure(self, method: str, path: str) -> _Failure | None:
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

    def commits(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> list[str]:
        """Commit ids reachable from ``revision`` (first-parent history), newest first."""
        repo = self._require_repo(repo_id, repo_type)
        oid = repo.resolve(revision)
        if oid is None:
            raise KeyError(f"revision {revision!r} not found in {repo_type} {repo_id}")
        return [c["id"] for c in repo.log(oid)]

    def refs(self, repo_id: str, repo_type: str = "model") -> dict[str, dict[str, str]]:
        """``{"heads": {branch: commit}, "tags": {tag: commit}}``."""
        return self._require_repo(repo_id, repo_type).refs()

    def files(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> dict[str, dict[str, Any]]:
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
    def requests(self) -> list[dict[str, Any]]:
        """Recent requests in arrival order: ``{"method", "path", "status", "range", "seconds"}``.

        An entry is added when a request arrives and its ``status`` is set before the response is
        sent, so a request whose response a client has read is complete here; ``seconds`` (the
        handling time) is filled when the handler finishes and is ``None`` until then.
        """
        with self._lock:
            return [dict(entry) for entry in self._requests]

    def _record_arrival(self, method: str, path: str, range_: str | None) -> dict[str, Any]:
        entry: dict[str, Any] = {"method": method, "path": path, "status": None, "range": range_, "seconds": None}
        with self._lock:
            self._requests.append(entry)
        return entry

    def _record_status(self, entry: dict[str, Any], status: int) -> None:
        with self._lock:
            entry["status"] = status

    def _record_done(self, entry: dict[str, Any], seconds: float) -> None:
        with self._lock:
            entry["seconds"] = seconds

    def _register_connection(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)

    def _unregister_connection(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)


