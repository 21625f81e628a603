"""HTTP plumbing of the local Hub: request bodies, fault injection, dispatch, auth and routing."""

from __future__ import annotations

import json
import logging
import re
import tempfile
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from .store import _CHUNK, _PLURALS, HubError, _header_safe, _Repo

if TYPE_CHECKING:
    from .server import LocalHubServer, _HTTPServer


logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------- fault injection


@dataclass
class _Failure:
    pattern: re.Pattern[str]
    status: int
    remaining: int
    method: str | None
    truncate_after: int | None
    message: str | None
    after_processing: bool = False


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


class BaseHandler(BaseHTTPRequestHandler):
    """Plumbing shared by every endpoint: body reading, dispatch with fault injection, auth, routing."""

    protocol_version = "HTTP/1.1"
    server_version = "LocalHubServer/1.0"
    timeout = 60  # seconds an idle keep-alive connection may stay open
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms Nagle stalls

    server: _HTTPServer
    _log_entry: dict[str, Any] | None = None

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

    def send_response(self, code: int, message: str | None = None) -> None:
        self._status = code
        self._headers_started = True
        # The status is logged before any byte of the response leaves: once a client has seen a
        # response, `LocalHubServer.requests` already shows it.
        if self._log_entry is not None:  # None for errors the stdlib answers before dispatch
            self.hub._record_status(self._log_entry, code)
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
    def hub(self) -> LocalHubServer:
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

    def _form_body(self) -> dict[str, list[str]]:
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
        headers: dict[str, str] | None = None,
    ) -> None:
        lost = self._lost_answer
        if lost is not None and status < 400:
            # The request was processed (e.g. the commit landed); its answer is replaced by an error.
            self._lost_answer = None
            message = lost.message or f"Injected failure after processing (HTTP {lost.status}) for {self._raw_path}"
            status, body, content_type = lost.status, json.dumps({"error": message}).encode(), "application/json"
            headers = {"X-Error-Message": _header_safe(message)}
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

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
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
        self._body_obj: _Body | None = None
        self._truncate: int | None = None
        self._lost_answer: _Failure | None = None
        split = urlsplit(self.path)
        raw_path = split.path
        self._raw_path = raw_path
        self._query = parse_qs(split.query, keep_blank_values=True)
        decoded = unquote(raw_path)
        # Logged on arrival, so the log is in arrival order. Logging at the end instead let a
        # client's retry, sent as soon as it read a 500, be logged before the failed request
        # whose thread had not reached its `finally` yet ([200, 500] instead of [500, 200]).
        self._log_entry = self.hub._record_arrival(method, decoded, self.headers.get("Range"))
        started = time.perf_counter()
        try:
            try:
                failure = self.hub._take_failure(method, decoded)
                if failure is not None and failure.after_processing:
                    self._lost_answer = failure
                elif failure is not None:
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
            self.hub._record_done(self._log_entry, elapsed)
            self._log_entry = None
            logger.debug("%s %s -> %s (%.1f ms)", method, self.path, self._status, elapsed * 1000)

    # -- auth ----------------------------------------------------------------------

    def _authenticate(self) -> str | None:
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

    def _repo_for_read(self, repo_type: str, ns: str, name: str, user: str | None) -> _Repo:
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

    def _repo_for_write(self, repo_type: str, ns: str, name: str, user: str | None) -> _Repo:
        repo = self._repo_for_read(repo_type, ns, name, user)
        if user is None:
            raise HubError(401, "You must be authenticated to write to a repository", code="RepoNotFound")
        if not self.hub._can_write(user, repo.ns):
            raise HubError(403, f"You don't have write access to {repo_type} {repo.repo_id}")
        return repo

    def _resolve_or_404(self, repo: _Repo, rev: str | None) -> str:
        oid = repo.resolve(rev)
        if oid is None:
            raise HubError(404, f"Invalid rev id: {rev}", code="RevisionNotFound")
        return oid

    # -- routing -------------------------------------------------------------------

    def _route(self, method: str, raw_path: str, user: str | None) -> None:
        parts = raw_path.split("/")[1:]
        if len(parts) > 1 and parts[-1] == "":
            parts = parts[:-1]
        if parts and parts[0] == "api":
            return self._route_api(method, parts[1:], user)
        if parts and parts[0] == "lfs-upload" and len(parts) == 2 and method == "PUT":
            return self._lfs_put(unquote(parts[1]))

        # Git LFS API: /{prefix}{ns}/{name}.git/info/lfs/objects/{batch|verify}
        if method == "POST" and len(parts) >= 6 and parts[-4:-1] == ["info", "lfs", "objects"]:
            prefix = parts[:-6]
            repo_type = _PLURALS.get(prefix[0]) if prefix else "model"
            name = unquote(parts[-5])
            if repo_type is not None and len(prefix) <= 1 and name.endswith(".git"):
                ns, name = unquote(parts[-6]), name[: -len(".git")]
                if parts[-1] == "batch":
                    return self._lfs_batch(repo_type, ns, name, user)
                if parts[-1] == "verify":
                    return self._lfs_verify(repo_type, ns, name, user)

        # File downloads: /{ns}/{name}/resolve/{rev}/{path} and /{datasets|spaces}/{ns}/{name}/resolve/...
        if method in ("GET", "HEAD"):
            if len(parts) >= 6 and parts[0] in ("datasets", "spaces") and parts[3] in ("resolve", "raw"):
                repo_type = _PLURALS[parts[0]]
                return self._resolve_file(repo_type, unquote(parts[1]), unquote(parts[2]), parts[4], parts[5:], user)
            if len(parts) >= 5 and parts[2] in ("resolve", "raw"):
                return self._resolve_file("model", unquote(parts[0]), unquote(parts[1]), parts[3], parts[4:], user)
        raise HubError(404, f"LocalHubServer does not implement {method} {unquote(raw_path)}")

    def _route_api(self, method: str, parts: list[str], user: str | None) -> None:
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

