"""A small Hugging Face Hub-compatible HTTP server for offline tests and benchmarks.

The server speaks enough of the Hub's HTTP protocol for the *real* ``huggingface_hub``
client (``HfApi``, ``hf_hub_download``, ``snapshot_download``, ``upload_folder``...) and
Minari's ``hf://`` remote to work against ``127.0.0.1`` without internet access::

    from huggingface_hub import HfApi
    from hubserver import LocalHubServer

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
* Uploads are answered with ``uploadMode: "regular"`` by the ``preupload`` endpoint by
  default: the client then inlines the (base64) bytes in the ``commit`` ndjson payload, so
  neither Git LFS nor Xet storage is involved even when ``hf_xet`` is installed. With
  ``lfs_threshold=N`` files of N bytes or more take the Hub's Git LFS path instead:
  ``preupload`` answers ``"lfs"``, the client posts to the LFS batch API
  (``{repo}.git/info/lfs/objects/batch``, basic transfer), PUTs the bytes to the one-time
  URL it got (checked against oid and size), calls the ``verify`` action, and the commit
  names the object by sha256 (``lfsFile``). Xet is not spoken: clients must run with
  ``HF_HUB_DISABLE_XET=1`` against an LFS-enabled server.
* Writes are atomic: blobs are written first (content addressed, so orphans are harmless),
  then the commit file (temp file + ``os.replace``), then the refs file (temp file +
  ``os.replace``) under a per-repo lock. A failed commit leaves every ref unchanged.
* Fault injection for tests: :meth:`LocalHubServer.fail_next` (error statuses, truncated
  downloads, or, with ``after_processing=True``, a request that is carried out but whose
  answer is lost) and :meth:`LocalHubServer.tamper` (rewrite stored bytes behind the metadata).

Only the standard library is used. The package is test infrastructure, not part of the
installed ``hippogym`` distribution: it is importable as ``hubserver`` wherever ``tests/`` is on
``sys.path`` (pytest puts it there through ``tests/conftest.py``), and
``python -m hubserver --root DIR`` serves until SIGINT or SIGTERM.

Layout: :mod:`.store` (repositories on disk), :mod:`.handler` (HTTP plumbing and routing),
:mod:`.reads` / :mod:`.writes` (the endpoints), :mod:`.server` (:class:`LocalHubServer`),
``__main__`` (the command line).
"""

from __future__ import annotations

from .server import LocalHubServer
from .store import HubError

__all__ = ["HubError", "LocalHubServer"]
