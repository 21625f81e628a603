"""Endpoints of the local Hub that change state: repositories, settings, commits, branches, tags."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
from typing import Any

from .store import (
    _URL_PREFIX,
    REPO_TYPES,
    HubError,
    _now_iso,
    _truthy,
    _validate_path_in_repo,
    _validate_ref_name,
    _validate_repo_name,
)

logger = logging.getLogger(__name__)


class WriteEndpoints:
    """Handler methods that create, change or delete repositories and refs."""

    # -- account / repo management ------------------------------------------------

    def _whoami(self, user: str | None) -> None:
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

    def _create_repo(self, user: str | None) -> None:
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

    def _delete_repo(self, user: str | None) -> None:
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

    def _settings(self, repo_type: str, ns: str, name: str, user: str | None) -> None:
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


    # -- write endpoints -----------------------------------------------------------

    @staticmethod
    def _branch_of(rev: str) -> str:
        return rev[len("refs/heads/") :] if rev.startswith("refs/heads/") else rev

    def _preupload(self, repo_type: str, ns: str, name: str, rev: str, user: str | None) -> None:
        body = self._json_body()
        repo = self._repo_for_write(repo_type, ns, name, user)
        oid = self._resolve_or_404(repo, rev)
        files = repo.read_commit(oid)["files"]
        threshold = self.hub.lfs_threshold
        out = []
        for item in body.get("files", []):
            path = item.get("path")
            existing = files.get(path)
            size = item.get("size")
            # Like the Hub: large files go through Git LFS (batch API, PUT, verify), small ones inline.
            lfs = threshold is not None and isinstance(size, int) and size >= threshold
            out.append(
                {
                    "path": path,
                    "uploadMode": "lfs" if lfs else "regular",
                    "shouldIgnore": False,
                    "oid": existing["oid"] if existing else None,
                }
            )
        self._send_json(200, {"files": out, "commitOid": oid})

    # -- Git LFS (basic transfer) ----------------------------------------------------

    def _lfs_batch(self, repo_type: str, ns: str, name: str, user: str | None) -> None:
        """``POST {repo}.git/info/lfs/objects/batch``: where to PUT each object, or nothing if stored."""
        body = self._json_body()
        repo = self._repo_for_write(repo_type, ns, name, user)
        if body.get("operation") != "upload":
            raise HubError(400, "LocalHubServer's LFS batch API supports operation 'upload' only")
        if body.get("hash_algo", "sha256") != "sha256":
            raise HubError(400, f"Unsupported LFS hash_algo {body.get('hash_algo')!r}")
        transfers = body.get("transfers") or ["basic"]
        if "basic" not in transfers:
            raise HubError(400, f"LocalHubServer supports the 'basic' LFS transfer only, client offered {transfers}")
        objects = []
        for item in body.get("objects") or []:
            oid, size = str(item.get("oid", "")).lower(), item.get("size")
            if not re.fullmatch(r"[0-9a-f]{64}", oid) or not isinstance(size, int) or size < 0:
                objects.append({"oid": oid, "size": size, "error": {"code": 422, "message": "Invalid oid or size"}})
                continue
            entry = repo.blob_entry(oid)
            if entry is not None and entry["size"] == size:
                objects.append({"oid": oid, "size": size})  # already stored: no actions, the client skips it
                continue
            ticket = self.hub._lfs_ticket(repo_type, repo.ns, repo.name, oid, size)
            verify = f"{self.hub.endpoint}/{_URL_PREFIX[repo_type]}{repo.repo_id}.git/info/lfs/objects/verify"
            objects.append(
                {
                    "oid": oid,
                    "size": size,
                    "authenticated": True,
                    "actions": {
                        "upload": {"href": f"{self.hub.endpoint}/lfs-upload/{ticket}", "header": {}},
                        "verify": {"href": verify, "header": {}},
                    },
                }
            )
        self._send(
            200,
            json.dumps({"transfer": "basic", "objects": objects}).encode(),
            content_type="application/vnd.git-lfs+json",
        )

    def _lfs_put(self, ticket: str) -> None:
        """``PUT /lfs-upload/<ticket>``: the object's bytes (authorized by the ticket, like a presigned URL)."""
        target = self.hub._lfs_take_ticket(ticket)
        if target is None:
            self._drain()
            raise HubError(403, "Unknown or already used LFS upload URL")
        repo_type, ns, name, oid, size = target
        data = self._body().read()
        if len(data) != size or hashlib.sha256(data).hexdigest() != oid:
            raise HubError(400, f"Uploaded object does not match its oid/size ({len(data)} bytes, expected {size})")
        repo = self.hub._store.get(repo_type, ns, name)
        if repo is None:
            raise HubError(404, "Repository not found", code="RepoNotFound")
        repo.store_blob(data)
        logger.info("LFS object %s (%d bytes) stored for %s %s", oid[:12], size, repo_type, repo.repo_id)
        self._send(200, b"", content_type="text/plain")

    def _lfs_verify(self, repo_type: str, ns: str, name: str, user: str | None) -> None:
        """``POST {repo}.git/info/lfs/objects/verify``: 200 if the object is stored with that size."""
        body = self._json_body()
        repo = self._repo_for_write(repo_type, ns, name, user)
        oid, size = str(body.get("oid", "")).lower(), body.get("size")
        entry = repo.blob_entry(oid) if re.fullmatch(r"[0-9a-f]{64}", oid) else None
        if entry is None or entry["size"] != size:
            raise HubError(404, f"LFS object {oid} ({size} bytes) was not uploaded")
        self._send_json(200, {"success": True})

    def _commit(self, repo_type: str, ns: str, name: str, rev: str, user: str | None) -> None:
        repo = self._repo_for_write(repo_type, ns, name, user)
        if _truthy(self._query.get("create_pr")):
            raise HubError(400, "LocalHubServer does not support pull requests (create_pr=1)")
        branch = self._branch_of(rev)

        # 1. Parse the ndjson payload line by line; file bytes go straight to the blob store.
        header: dict[str, Any] | None = None
        ops: list[tuple[str, str, dict[str, Any] | None]] = []
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
                        "(upload it through the LFS batch API first)",
                    )
                ops.append(("add", path, {**entry, "lfs": True}))
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

    def _branch(self, method: str, repo_type: str, ns: str, name: str, branch: str, user: str | None) -> None:
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

    def _tag(self, method: str, repo_type: str, ns: str, name: str, target: str, user: str | None) -> None:
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


