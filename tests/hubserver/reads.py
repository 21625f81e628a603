"""Read-only endpoints of the local Hub: repository info, listings, trees, refs, commits, files."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from typing import Any
from urllib.parse import unquote, urlencode

from .handler import _ConnectionAbort
from .store import _CHUNK, HubError, _header_safe, _Repo, _truthy


class ReadEndpoints:
    """Handler methods that answer read requests."""

    # -- read endpoints ------------------------------------------------------------

    def _repo_summary(self, repo: _Repo, oid: str, commit: dict[str, Any]) -> dict[str, Any]:
        meta = repo.meta
        info: dict[str, Any] = {
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

    def _repo_info(self, repo_type: str, ns: str, name: str, rev: str | None, user: str | None) -> None:
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
                entry.update({"size": e["size"], "blobId": e["oid"], **_lfs_info(e)})
            siblings.append(entry)
        info["siblings"] = siblings
        info["usedStorage"] = sum(e["size"] for e in commit["files"].values())
        if repo_type == "dataset":
            info.update({"description": "", "citation": "", "cardData": {}})
        elif repo_type == "space":
            info.update({"sdk": repo.meta.get("sdk", "static"), "runtime": None})
        self._send_json(200, info)

    def _list_repos(self, repo_type: str, user: str | None) -> None:
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

    def _send_paginated(self, items: list[Any]) -> None:
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
    def _dir_oid(files: dict[str, dict[str, Any]], directory: str) -> str:
        prefix = directory + "/"
        h = hashlib.sha1()
        for p in sorted(p for p in files if p.startswith(prefix)):
            h.update(f"{p[len(prefix):]}\0{files[p]['oid']}\n".encode())
        return h.hexdigest()

    def _tree_entries(
        self, files: dict[str, dict[str, Any]], base: str, recursive: bool
    ) -> list[dict[str, Any]]:
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
            entries.append({"type": "file", "oid": e["oid"], "size": e["size"], "path": path, **_lfs_info(e)})
        entries.sort(key=lambda e: e["path"])
        return entries

    def _last_commits(self, repo: _Repo, oid: str, entries: list[dict[str, Any]]) -> None:
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

    def _tree(self, repo_type: str, ns: str, name: str, rev: str, path: str, user: str | None) -> None:
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

    def _paths_info(self, repo_type: str, ns: str, name: str, rev: str, user: str | None) -> None:
        form = self._form_body()
        repo = self._repo_for_read(repo_type, ns, name, user)
        oid = self._resolve_or_404(repo, rev)
        files = repo.read_commit(oid)["files"]
        out = []
        for raw in form.get("paths", []):
            path = raw.strip("/")
            if path in files:
                e = files[path]
                out.append({"type": "file", "oid": e["oid"], "size": e["size"], "path": path, **_lfs_info(e)})
            elif path and any(p.startswith(path + "/") for p in files):
                out.append({"type": "directory", "oid": self._dir_oid(files, path), "size": 0, "path": path})
        if _truthy(form.get("expand")):
            self._last_commits(repo, oid, out)
        self._send_json(200, out)

    def _refs(self, repo_type: str, ns: str, name: str, user: str | None) -> None:
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

    def _commits(self, repo_type: str, ns: str, name: str, rev: str, user: str | None) -> None:
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
        raw_path_parts: list[str],
        user: str | None,
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
                **_lfs_headers(entry),
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
    def _parse_range(value: str, size: int) -> tuple[int, int] | None | bool:
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


def _lfs_info(entry: dict[str, Any]) -> dict[str, Any]:
    """The ``lfs`` member the Hub adds to tree and paths-info entries of files stored through Git LFS."""
    if not entry.get("lfs"):
        return {}
    return {"lfs": {"oid": entry["sha256"], "size": entry["size"], "pointerSize": 134}}


def _lfs_headers(entry: dict[str, Any]) -> dict[str, str]:
    """The ``X-Linked-*`` headers the Hub sends for files stored through Git LFS."""
    if not entry.get("lfs"):
        return {}
    return {"X-Linked-Etag": f'"{entry["sha256"]}"', "X-Linked-Size": str(entry["size"])}
