"""LocalHubServer driven by the real ``huggingface_hub`` client (and Minari's hf:// remote)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

huggingface_hub = pytest.importorskip("huggingface_hub")

from huggingface_hub import HfApi, hf_hub_download, snapshot_download  # noqa: E402
from huggingface_hub.errors import (  # noqa: E402
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from hubserver import LocalHubServer  # noqa: E402

TESTS_DIR = Path(__file__).resolve().parents[1]  # holds the `hubserver` package
TOKEN = "secret-token"
BOB_TOKEN = "bob-token"


@pytest.fixture(autouse=True)
def _hf_env(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for var in ("HF_HUB_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    # huggingface_hub resolved these paths at import time: make sure a developer's stored
    # login is never sent implicitly (the local server would reject it as an unknown token).
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "hf_home" / "token"))
    monkeypatch.setattr(
        huggingface_hub.constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "hf_home" / "stored_tokens")
    )


@pytest.fixture
def hub(tmp_path):
    with LocalHubServer(root=tmp_path / "hub", tokens={TOKEN: "alice", BOB_TOKEN: "bob"}) as server:
        yield server


@pytest.fixture
def api(hub):
    return HfApi(endpoint=hub.endpoint, token=TOKEN)


@pytest.fixture
def folder(tmp_path):
    src = tmp_path / "src"
    (src / "nested" / "deeper").mkdir(parents=True)
    (src / "README.txt").write_text("a tiny repo\n")
    (src / "config.json").write_text(json.dumps({"dim": 8}))
    (src / "nested" / "notes.md").write_text("# notes\n")
    (src / "nested" / "deeper" / "weights.bin").write_bytes(os.urandom(1 << 20))  # ~1 MB binary
    return src


def _read_tree(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _status(err: HfHubHTTPError) -> int:
    return err.response.status_code


# --------------------------------------------------------------------------- repos


def test_create_repo_model_and_dataset(hub, api):
    url = api.create_repo("alice/model-a")
    assert url == f"{hub.endpoint}/alice/model-a" and url.repo_id == "alice/model-a"
    durl = api.create_repo("alice/data-a", repo_type="dataset")
    assert durl == f"{hub.endpoint}/datasets/alice/data-a" and durl.repo_type == "dataset"

    # exist_ok: same url, no new commit; without it the client raises on the 409.
    before = hub.commits("alice/model-a")
    assert api.create_repo("alice/model-a", exist_ok=True) == url
    assert hub.commits("alice/model-a") == before
    with pytest.raises(HfHubHTTPError) as exc:
        api.create_repo("alice/model-a")
    assert _status(exc.value) == 409

    info = api.repo_info("alice/data-a", repo_type="dataset")
    assert info.id == "alice/data-a" and info.private is False
    assert len(info.sha) == 40 and info.sha == hub.commits("alice/data-a", "dataset")[0]
    assert api.repo_exists("alice/model-a") and not api.repo_exists("alice/model-a", repo_type="dataset")
    assert api.whoami()["name"] == "alice"

    # Namespaces are owned: alice cannot create under bob, anonymous cannot create at all.
    with pytest.raises(HfHubHTTPError) as exc:
        api.create_repo("bob/stolen")
    assert _status(exc.value) == 403
    with pytest.raises(HfHubHTTPError):
        HfApi(endpoint=hub.endpoint, token=False).create_repo("alice/anon")

    api.delete_repo("alice/model-a")
    assert not api.repo_exists("alice/model-a")
    api.delete_repo("alice/model-a", missing_ok=True)


def test_upload_folder_one_commit_and_downloads(hub, api, folder, tmp_path):
    for repo_type in ("model", "dataset"):
        repo_id = f"alice/up-{repo_type}"
        api.create_repo(repo_id, repo_type=repo_type)
        info = api.upload_folder(repo_id=repo_id, repo_type=repo_type, folder_path=folder, commit_message="add files")
        commits = hub.commits(repo_id, repo_type)
        assert len(commits) == 2 and info.oid == commits[0]  # initial commit + ONE upload commit

        expected = _read_tree(folder)
        assert sorted(api.list_repo_files(repo_id, repo_type=repo_type)) == sorted([".gitattributes", *expected])

        snap = snapshot_download(
            repo_id, repo_type=repo_type, cache_dir=tmp_path / f"cache-{repo_type}", endpoint=hub.endpoint, token=TOKEN
        )
        got = _read_tree(Path(snap))
        got.pop(".gitattributes")
        assert got == expected
        assert Path(snap).name == commits[0]  # snapshot folder is named after the commit id

        one = hf_hub_download(
            repo_id,
            "nested/deeper/weights.bin",
            repo_type=repo_type,
            cache_dir=tmp_path / f"one-{repo_type}",
            endpoint=hub.endpoint,
        )
        assert Path(one).read_bytes() == expected["nested/deeper/weights.bin"]

    # Tree listing: sizes and git blob ids match the uploaded bytes; directories are listed.
    entries = {e.path: e for e in api.list_repo_tree("alice/up-model", recursive=True)}
    weights = (folder / "nested" / "deeper" / "weights.bin").read_bytes()
    assert entries["nested/deeper/weights.bin"].size == len(weights)
    git_oid = hashlib.sha1(b"blob %d\0" % len(weights) + weights).hexdigest()
    assert entries["nested/deeper/weights.bin"].blob_id == git_oid
    assert {"nested", "nested/deeper"} <= set(entries)
    top = {e.path for e in api.list_repo_tree("alice/up-model")}
    assert top == {".gitattributes", "README.txt", "config.json", "nested"}
    sub = {e.path for e in api.list_repo_tree("alice/up-model", path_in_repo="nested")}
    assert sub == {"nested/notes.md", "nested/deeper"}

    # Re-uploading identical content creates no empty commit (the client compares preupload oids).
    api.upload_folder(repo_id="alice/up-model", folder_path=folder)
    assert len(hub.commits("alice/up-model")) == 2

    # Blobs live on disk, content addressed.
    blob_dir = hub.root / "repos" / "models" / "alice" / "up-model" / "blobs"
    sha = hashlib.sha256(weights).hexdigest()
    assert (blob_dir / sha[:2] / sha).read_bytes() == weights


def test_revision_pinning_branch_and_tag(hub, api, tmp_path):
    repo = "alice/pinning"
    api.create_repo(repo)
    first = api.upload_file(path_or_fileobj=b"version 1", path_in_repo="state.txt", repo_id=repo).oid
    second = api.upload_file(path_or_fileobj=b"version 2", path_in_repo="state.txt", repo_id=repo).oid
    assert first != second and hub.commits(repo)[:2] == [second, first]

    def fetch(revision, cache):
        return Path(
            hf_hub_download(repo, "state.txt", revision=revision, cache_dir=tmp_path / cache, endpoint=hub.endpoint)
        ).read_bytes()

    assert fetch(first, "c1") == b"version 1"
    assert fetch("main", "c2") == b"version 2"

    api.create_tag(repo, tag="v1.0", revision=first)
    assert fetch("v1.0", "c3") == b"version 1"

    api.create_branch(repo, branch="dev", revision=first)
    api.upload_file(path_or_fileobj=b"dev work", path_in_repo="state.txt", repo_id=repo, revision="dev")
    assert fetch("dev", "c4") == b"dev work"
    assert fetch("main", "c5") == b"version 2"

    refs = api.list_repo_refs(repo)
    assert {b.name for b in refs.branches} == {"main", "dev"}
    assert [(t.name, t.target_commit) for t in refs.tags] == [("v1.0", first)]
    assert api.repo_info(repo, revision="v1.0").sha == first
    assert api.repo_info(repo, revision=first).sha == first

    snap = snapshot_download(repo, revision=first, cache_dir=tmp_path / "snap", endpoint=hub.endpoint)
    assert (Path(snap) / "state.txt").read_bytes() == b"version 1"

    with pytest.raises(RevisionNotFoundError):
        fetch("no-such-branch", "c6")
    with pytest.raises(RevisionNotFoundError):
        api.repo_info(repo, revision="0" * 40)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo, "missing.txt", cache_dir=tmp_path / "c7", endpoint=hub.endpoint)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("alice/nope", "state.txt", cache_dir=tmp_path / "c8", endpoint=hub.endpoint, token=TOKEN)
    assert api.file_exists(repo, "state.txt") and not api.file_exists(repo, "missing.txt")

    # parentCommit check: committing on top of a stale parent is refused, branch unchanged.
    head = hub.commits(repo)[0]
    with pytest.raises(HfHubHTTPError) as exc:
        api.upload_file(path_or_fileobj=b"stale", path_in_repo="state.txt", repo_id=repo, parent_commit=first)
    assert _status(exc.value) == 412 and hub.commits(repo)[0] == head

    # Commit log through the API (newest first).
    assert [c.commit_id for c in api.list_repo_commits(repo)] == hub.commits(repo)


def test_private_repo_requires_token(hub, api, tmp_path):
    repo = "alice/secret"
    api.create_repo(repo, private=True, repo_type="dataset")
    api.upload_file(path_or_fileobj=b"classified", path_in_repo="x.txt", repo_id=repo, repo_type="dataset")
    assert api.repo_info(repo, repo_type="dataset").private is True

    anon = HfApi(endpoint=hub.endpoint, token=False)
    with pytest.raises(RepositoryNotFoundError):
        anon.repo_info(repo, repo_type="dataset")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(
            repo, "x.txt", repo_type="dataset", cache_dir=tmp_path / "a", endpoint=hub.endpoint, token=False
        )
    with pytest.raises(RepositoryNotFoundError):
        snapshot_download(repo, repo_type="dataset", cache_dir=tmp_path / "b", endpoint=hub.endpoint, token=False)
    # Another user's valid token does not grant access either (404 instead of 401).
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub.endpoint, token=BOB_TOKEN).repo_info(repo, repo_type="dataset")
    # Unknown tokens are rejected outright.
    with pytest.raises(HfHubHTTPError) as exc:
        HfApi(endpoint=hub.endpoint, token="forged").repo_info(repo, repo_type="dataset")
    assert _status(exc.value) == 401
    assert [d.id for d in anon.list_datasets(author="alice")] == []
    assert [d.id for d in api.list_datasets(author="alice")] == [repo]

    path = hf_hub_download(
        repo, "x.txt", repo_type="dataset", cache_dir=tmp_path / "c", endpoint=hub.endpoint, token=TOKEN
    )
    assert Path(path).read_bytes() == b"classified"


def test_fail_next_interrupted_push_leaves_branch_unchanged(hub, api, folder):
    repo = "alice/flaky"
    api.create_repo(repo)
    before = hub.commits(repo)

    # 1. A single-commit API call (not retried by the client) hit by a 500.
    hub.fail_next(r"/commit/main$", status=500)
    with pytest.raises(HfHubHTTPError) as exc:
        api.upload_file(path_or_fileobj=b"payload", path_in_repo="f.txt", repo_id=repo)
    assert _status(exc.value) == 500
    assert hub.commits(repo) == before and hub.pending_failures == 0

    # 2. upload_folder interrupted by a server error it does not retry: raises, nothing changes.
    hub.fail_next(r"/api/models/alice/flaky/commit/", status=507)
    with pytest.raises(HfHubHTTPError) as exc:
        api.upload_folder(repo_id=repo, folder_path=folder)
    assert _status(exc.value) == 507
    assert hub.commits(repo) == before
    assert api.list_repo_files(repo) == [".gitattributes"]

    # ... and the retry succeeds with exactly one new commit.
    info = api.upload_folder(repo_id=repo, folder_path=folder)
    assert hub.commits(repo) == [info.oid, *before]
    assert set(api.list_repo_files(repo)) == {".gitattributes", *_read_tree(folder)}

    # 3. Transient 5xx: with hf_xet installed upload_folder retries the commit POST itself
    #    (http_backoff); the failed attempt wrote nothing, so there is no duplicate commit.
    (folder / "extra.txt").write_text("more")
    hub.fail_next(r"/commit/", status=500)
    info2 = api.upload_folder(repo_id=repo, folder_path=folder)
    assert hub.commits(repo) == [info2.oid, info.oid, *before]
    statuses = [r["status"] for r in hub.requests if r["path"].endswith("/commit/main")]
    assert statuses[-2:] == [500, 200]


def test_request_log_is_in_arrival_order_with_status_before_the_response(hub, monkeypatch):
    # A client retries as soon as it has read a failure, while the failed request's handler thread may
    # still be finishing. Hold that thread in its end-of-request bookkeeping until the retry is done:
    # the log must still list the failure first, with its status already set.
    release = threading.Event()
    held = threading.Event()
    finish = hub._record_done

    def slow_finish(entry, seconds):
        if entry["path"] == "/api/whoami-v2":
            held.set()
            release.wait(timeout=30)
        finish(entry, seconds)

    monkeypatch.setattr(hub, "_record_done", slow_finish)
    hub.fail_next(r"^/api/whoami-v2$", status=503)
    try:
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(f"{hub.endpoint}/api/whoami-v2")
        assert exc.value.code == 503
        exc.value.close()
        assert held.wait(timeout=30)  # the failed request's handler is parked after its response
        with urllib.request.urlopen(f"{hub.endpoint}/api/models") as resp:
            assert resp.status == 200
        log = [(r["path"], r["status"]) for r in hub.requests]
        assert log[-2:] == [("/api/whoami-v2", 503), ("/api/models", 200)]
        assert hub.requests[-2]["seconds"] is None  # still finishing
    finally:
        release.set()


def test_truncated_download_resumes_with_range(hub, api, folder, tmp_path, monkeypatch):
    repo = "alice/resume"
    api.create_repo(repo)
    api.upload_folder(repo_id=repo, folder_path=folder)
    weights = (folder / "nested" / "deeper" / "weights.bin").read_bytes()

    # The client only resumes from bytes it already wrote to disk, i.e. whole chunks of
    # DOWNLOAD_CHUNK_SIZE (10 MB by default): shrink it so a 1 MB file exercises resuming.
    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)
    hub.fail_next(r"/resolve/.*/weights\.bin$", method="GET", truncate_after=300_000)
    path = hf_hub_download(repo, "nested/deeper/weights.bin", cache_dir=tmp_path / "c", endpoint=hub.endpoint)
    assert Path(path).read_bytes() == weights
    gets = [r for r in hub.requests if r["method"] == "GET" and r["path"].endswith("weights.bin")]
    assert [g["status"] for g in gets] == [200, 206]
    assert gets[1]["range"] == f"bytes={4 * 64 * 1024}-"

    # Raw Range semantics of /resolve.
    url = f"{hub.endpoint}/{repo}/resolve/main/nested/deeper/weights.bin"
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Range": "bytes=10-19"})) as resp:
        assert resp.status == 206 and resp.read() == weights[10:20]
        assert resp.headers["Content-Range"] == f"bytes 10-19/{len(weights)}"
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Range": "bytes=-5"})) as resp:
        assert resp.status == 206 and resp.read() == weights[-5:]
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(urllib.request.Request(url, headers={"Range": f"bytes={len(weights)}-"}))
    assert exc.value.code == 416
    exc.value.close()


def test_tamper_changes_served_bytes_but_not_metadata(hub, api, folder, tmp_path):
    repo = "alice/tampered"
    api.create_repo(repo, repo_type="dataset")
    api.upload_folder(repo_id=repo, repo_type="dataset", folder_path=folder)
    original = (folder / "nested" / "deeper" / "weights.bin").read_bytes()
    commit = hub.commits(repo, "dataset")[0]
    evil = bytes(b ^ 0xFF for b in original[:64]) + original[64:]

    hub.tamper(repo, "nested/deeper/weights.bin", evil, repo_type="dataset")

    path = hf_hub_download(
        repo, "nested/deeper/weights.bin", repo_type="dataset", cache_dir=tmp_path / "c", endpoint=hub.endpoint
    )
    data = Path(path).read_bytes()
    assert data != original and data == evil
    # Metadata is untouched: same commit, ETag still the git oid of the *original* bytes,
    # so only a checksum computed by the caller can reveal the corruption.
    assert hub.commits(repo, "dataset")[0] == commit
    recorded = hub.files(repo, "dataset")["nested/deeper/weights.bin"]
    assert recorded["sha256"] == hashlib.sha256(original).hexdigest() != hashlib.sha256(data).hexdigest()
    meta = api.get_hf_file_metadata(
        url=f"{hub.endpoint}/datasets/{repo}/resolve/main/nested/deeper/weights.bin"
    )
    assert meta.etag == recorded["oid"] and meta.commit_hash == commit


def test_deletes_paths_info_and_pagination(hub, api, folder, tmp_path):
    repo = "alice/ops"
    api.create_repo(repo)
    api.upload_folder(repo_id=repo, folder_path=folder)
    api.delete_file("config.json", repo_id=repo)
    api.delete_folder("nested/deeper", repo_id=repo)
    assert sorted(api.list_repo_files(repo)) == [".gitattributes", "README.txt", "nested/notes.md"]
    with pytest.raises(EntryNotFoundError):
        api.delete_file("config.json", repo_id=repo)

    infos = {i.path: i for i in api.get_paths_info(repo, ["README.txt", "nested", "ghost"])}
    assert set(infos) == {"README.txt", "nested"} and infos["README.txt"].size == len("a tiny repo\n")

    expanded = {e.path: e for e in api.list_repo_tree(repo, expand=True)}
    assert expanded["README.txt"].last_commit.title == "Upload folder using huggingface_hub"

    # Small pages: the client follows the Link headers transparently.
    hub.page_size = 2
    assert sorted(api.list_repo_files(repo)) == [".gitattributes", "README.txt", "nested/notes.md"]
    assert [c.commit_id for c in api.list_repo_commits(repo)] == hub.commits(repo)
    assert len(hub.commits(repo)) == 4


def test_storage_survives_restart(tmp_path, folder):
    root = tmp_path / "persistent"
    with LocalHubServer(root=root, tokens={TOKEN: "alice"}) as hub:
        api = HfApi(endpoint=hub.endpoint, token=TOKEN)
        api.create_repo("alice/kept")
        oid = api.upload_folder(repo_id="alice/kept", folder_path=folder).oid
    with LocalHubServer(root=root, tokens={TOKEN: "alice"}) as hub:
        assert hub.commits("alice/kept")[0] == oid
        snap = snapshot_download("alice/kept", revision=oid, cache_dir=tmp_path / "c", endpoint=hub.endpoint)
        got = _read_tree(Path(snap))
        got.pop(".gitattributes")
        assert got == _read_tree(folder)


# --------------------------------------------------------------------------- Minari


_MINARI_CHILD = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    import minari
    from minari.data_collector.episode_buffer import EpisodeBuffer

    token, upload_root, download_root = sys.argv[1:4]
    dataset_id = "cartpole/tiny-v0"

    # 1. Build a tiny real dataset locally (hdf5 backend) from hand-made CartPole episodes.
    os.environ["MINARI_DATASETS_PATH"] = upload_root
    episodes = []
    for ep in range(2):
        n = 4 + ep
        rng = np.random.default_rng(ep)
        episodes.append(EpisodeBuffer(
            id=ep,
            observations=[rng.standard_normal(4).astype(np.float32) for _ in range(n + 1)],
            actions=[i % 2 for i in range(n)],
            rewards=[1.0] * n,
            terminations=[False] * (n - 1) + [True],
            truncations=[False] * n,
            infos={},
        ))
    minari.create_dataset_from_buffers(
        dataset_id, episodes, env="CartPole-v1", algorithm_name="hand-made", author="hippogym",
        author_email="hippogym@example.com", code_permalink="https://example.com", description="tiny test set",
    )

    # 2. Upload through Minari's own Hugging Face remote (MINARI_REMOTE=hf://<namespace>).
    minari.upload_dataset(dataset_id, token=token)
    remote = minari.list_remote_datasets()

    # 3. Download into a fresh, empty local store and compare every episode.
    os.environ["MINARI_DATASETS_PATH"] = download_root
    minari.download_dataset(dataset_id)
    ds = minari.load_dataset(dataset_id)
    for ep, original in zip(ds.iterate_episodes(), episodes):
        assert np.allclose(ep.observations, np.stack(original.observations))
        assert list(ep.actions) == list(original.actions)
        assert list(ep.rewards) == list(original.rewards)
        assert list(ep.terminations) == list(original.terminations)
    print(json.dumps({
        "remote": sorted(remote),
        "remote_minari_version": remote[dataset_id].get("minari_version"),
        "episodes": ds.total_episodes,
        "steps": ds.total_steps,
        "local": sorted(
            os.path.relpath(os.path.join(d, f), download_root)
            for d, _, fs in os.walk(download_root) for f in fs
        ),
    }))
    """
)


def test_minari_hf_remote_roundtrip(hub, tmp_path):
    pytest.importorskip("minari")
    pytest.importorskip("h5py")
    script = tmp_path / "minari_child.py"
    script.write_text(_MINARI_CHILD)
    env = dict(os.environ)
    env.update(
        HF_ENDPOINT=hub.endpoint,  # read by huggingface_hub at import time -> set before the child starts
        MINARI_REMOTE="hf://alice",
        HF_HOME=str(tmp_path / "child_hf_home"),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        PYTHONWARNINGS="ignore",
    )
    result = subprocess.run(
        [sys.executable, str(script), TOKEN, str(tmp_path / "minari_up"), str(tmp_path / "minari_down")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["remote"] == ["cartpole/tiny-v0"]
    assert summary["episodes"] == 2 and summary["steps"] == 9
    assert "cartpole/tiny-v0/data/main_data.hdf5" in summary["local"]
    assert "cartpole/namespace_metadata.json" in summary["local"]

    # Layout Minari expects: dataset repo <namespace>/<minari namespace>, one folder per dataset.
    files = hub.files("alice/cartpole", repo_type="dataset")
    assert {"namespace_metadata.json", "tiny-v0/data/main_data.hdf5", "tiny-v0/data/metadata.json"} <= set(files)
    ns_meta = json.loads((hub.root / "repos" / "datasets" / "alice" / "cartpole" / "blobs").joinpath(
        files["namespace_metadata.json"]["sha256"][:2], files["namespace_metadata.json"]["sha256"]
    ).read_text())
    assert ns_meta["datasets"] == ["cartpole/tiny-v0"]


def _ignore_sigint() -> None:
    # What a shell without job control does to a background job (`cmd &` in a script, CI runners):
    # the child inherits SIGINT as ignored, so Python never turns it into KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_module_entry_point_serves_until_signalled(tmp_path, stop_signal):
    cmd = [sys.executable, "-m", "hubserver", "--root", str(tmp_path / "cli"), "--token", "t0k:carol"]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS_DIR), *filter(None, [env.get("PYTHONPATH")])])
    with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=_ignore_sigint) as proc:
        try:
            endpoint = None
            for _ in range(50):
                match = re.search(r"HF_ENDPOINT=(http://\S+)", proc.stderr.readline())
                if match:
                    endpoint = match.group(1)
                    break
            assert endpoint, "server did not announce its endpoint"
            api = HfApi(endpoint=endpoint, token="t0k")
            assert api.whoami()["name"] == "carol"
            api.create_repo("carol/cli-repo")
            assert (tmp_path / "cli" / "repos" / "models" / "carol" / "cli-repo" / "repo.json").is_file()
        finally:
            proc.send_signal(stop_signal)
            try:
                code = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()  # never leave the context manager waiting on a live server
                proc.wait()
                pytest.fail(f"the server did not stop within 30 s of {stop_signal.name}")
        log = proc.stderr.read()
    assert code == 0, log[-2000:]
    assert f"received signal {int(stop_signal)}" in log and "LocalHubServer stopped" in log


# --------------------------------------------------------------------------- Git LFS uploads


@pytest.fixture
def lfs_hub(tmp_path, monkeypatch):
    """A server that sends files of 4 KiB or more through Git LFS, and a client that does not use Xet."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    with LocalHubServer(root=tmp_path / "lfs-hub", tokens={TOKEN: "alice"}, lfs_threshold=4096) as server:
        yield server


def _calls(hub: LocalHubServer, since: int = 0) -> list[tuple[str, str, int]]:
    return [
        (r["method"], re.sub(r"/lfs-upload/[^/]+$", "/lfs-upload/<ticket>", r["path"]), r["status"])
        for r in hub.requests[since:]
    ]


def test_lfs_upload_path_batch_put_verify_commit(lfs_hub, folder, tmp_path):
    api = HfApi(endpoint=lfs_hub.endpoint, token=TOKEN)
    api.create_repo("alice/big")
    start = len(lfs_hub.requests)
    info = api.upload_folder(repo_id="alice/big", folder_path=folder)
    assert _calls(lfs_hub, start) == [
        ("POST", "/api/models/alice/big/preupload/main", 200),
        ("POST", "/alice/big.git/info/lfs/objects/batch", 200),
        ("PUT", "/lfs-upload/<ticket>", 200),
        ("POST", "/alice/big.git/info/lfs/objects/verify", 200),
        ("POST", "/api/models/alice/big/commit/main", 200),
    ]
    files = lfs_hub.files("alice/big")
    weights = (folder / "nested" / "deeper" / "weights.bin").read_bytes()
    assert files["nested/deeper/weights.bin"]["lfs"] is True
    assert files["nested/deeper/weights.bin"]["sha256"] == hashlib.sha256(weights).hexdigest()
    assert "lfs" not in files["config.json"]  # small files stay regular (inline in the commit)
    # Readers see the Hub's LFS metadata and get the exact bytes.
    entry = next(f for f in api.list_repo_tree("alice/big", recursive=True) if f.path.endswith("weights.bin"))
    assert entry.lfs is not None and entry.lfs.sha256 == hashlib.sha256(weights).hexdigest()
    snapshot = Path(snapshot_download("alice/big", endpoint=lfs_hub.endpoint, cache_dir=tmp_path / "c"))
    assert _read_tree(snapshot) == {".gitattributes": _read_tree(snapshot)[".gitattributes"], **_read_tree(folder)}
    assert lfs_hub.commits("alice/big")[0] == info.oid
    # An object the server already holds is not uploaded again (the batch answer has no actions).
    (folder / "config.json").write_text(json.dumps({"dim": 9}))
    start = len(lfs_hub.requests)
    api.upload_folder(repo_id="alice/big", folder_path=folder)
    assert [c for c in _calls(lfs_hub, start) if c[0] == "PUT"] == []


@pytest.mark.parametrize(
    ("path", "status", "method"),
    [
        (r"/lfs-upload/", 507, "PUT"),
        (r"/info/lfs/objects/verify$", 404, "POST"),
        (r"/info/lfs/objects/batch$", 403, "POST"),
    ],
)
def test_lfs_failures_leave_the_branch_unchanged(lfs_hub, folder, path, status, method):
    api = HfApi(endpoint=lfs_hub.endpoint, token=TOKEN)
    api.create_repo("alice/lfs-fail")
    before = lfs_hub.commits("alice/lfs-fail")
    lfs_hub.fail_next(path, status=status, method=method)
    with pytest.raises((HfHubHTTPError, RuntimeError)) as exc:
        api.upload_folder(repo_id="alice/lfs-fail", folder_path=folder)
    cause = exc.value if isinstance(exc.value, HfHubHTTPError) else exc.value.__cause__
    assert isinstance(cause, HfHubHTTPError) and _status(cause) == status
    assert lfs_hub.commits("alice/lfs-fail") == before and lfs_hub.pending_failures == 0
    assert not any(r["path"].endswith("/commit/main") for r in lfs_hub.requests)
    # the retry goes through
    api.upload_folder(repo_id="alice/lfs-fail", folder_path=folder)
    assert len(lfs_hub.commits("alice/lfs-fail")) == len(before) + 1


def test_lfs_put_with_wrong_bytes_is_refused(lfs_hub):
    api = HfApi(endpoint=lfs_hub.endpoint, token=TOKEN)
    api.create_repo("alice/lfs-bad")
    data = os.urandom(5000)
    oid = hashlib.sha256(data).hexdigest()
    request = urllib.request.Request(
        f"{lfs_hub.endpoint}/alice/lfs-bad.git/info/lfs/objects/batch",
        data=json.dumps(
            {"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": 5000}]}
        ).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/vnd.git-lfs+json"},
        method="POST",
    )
    with urllib.request.urlopen(request) as response:
        href = json.loads(response.read())["objects"][0]["actions"]["upload"]["href"]
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(urllib.request.Request(href, data=data[::-1], method="PUT"))
    assert exc.value.code == 400
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(urllib.request.Request(f"{lfs_hub.endpoint}/lfs-upload/forged", data=data, method="PUT"))
    assert exc.value.code == 403


def test_fail_next_after_processing_loses_the_answer_of_a_landed_commit(hub, api):
    repo = "alice/lost"
    api.create_repo(repo)
    before = hub.commits(repo)
    hub.fail_next(r"/commit/main$", status=500, after_processing=True)
    with pytest.raises(HfHubHTTPError) as exc:
        api.upload_file(path_or_fileobj=b"payload", path_in_repo="f.txt", repo_id=repo)
    assert _status(exc.value) == 500
    after = hub.commits(repo)
    assert len(after) == len(before) + 1 and after[1:] == before  # the commit landed all the same
    assert "f.txt" in hub.files(repo) and hub.pending_failures == 0
