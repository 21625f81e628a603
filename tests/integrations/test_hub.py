"""Hub integration: the real ``huggingface_hub`` client against a LocalHubServer on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("huggingface_hub")

import huggingface_hub.constants
import huggingface_hub.errors

import hippo_format
from hippo_format import (
    ChecksumMismatchError,
    FormatError,
    MissingFileError,
    TargetExistsError,
)
from hippogym import HippocampalReplayBuffer
from hippogym.errors import HippoError, MissingDependencyError, ValidationError
from hippogym.integrations.hub import (
    HubAuthError,
    HubNotFoundError,
    HubPushError,
    download_memory,
    load_memory_from_hub,
    memory_card,
    push_memory_to_hub,
)
from hubserver import LocalHubServer

TOKEN = "secret-token"
BOB_TOKEN = "bob-token"
ENV_ID = "hippogym/SparseCorridor-v0"


@pytest.fixture(autouse=True)
def _hf_env(tmp_path, monkeypatch):
    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for var in ("HF_HUB_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    # Resolved by huggingface_hub at import time: keep a developer's login and cache out of the tests.
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(home / "hub"))


@pytest.fixture
def hub(tmp_path):
    with LocalHubServer(root=tmp_path / "hub", tokens={TOKEN: "alice", BOB_TOKEN: "bob"}) as server:
        yield server


def _record(episodes: int, seed: int, length: int = 8) -> HippocampalReplayBuffer:
    """A small buffer recorded from SparseCorridor with a noisy always-right policy."""
    import gymnasium as gym

    import hippogym
    from hippogym import RecordEpisodes

    hippogym.register_envs()
    buffer = HippocampalReplayBuffer(capacity=2_000, embed_dim=16, seed=seed)
    env = RecordEpisodes(gym.make(ENV_ID, length=length), buffer)
    rng = np.random.default_rng(seed)
    for ep in range(episodes):
        env.reset(seed=seed * 1000 + ep)
        done = False
        while not done:
            _, _, terminated, truncated, _ = env.step(1 if rng.random() > 0.25 else 0)
            done = terminated or truncated
    buffer.provenance = {"env_id": ENV_ID}
    return buffer


@pytest.fixture(scope="module")
def buffer():
    return _record(20, seed=0)


def _load(hub, ref, cache, **kw):
    kw.setdefault("token", TOKEN)
    return load_memory_from_hub(ref, endpoint=hub.endpoint, cache_dir=cache, **kw)


def _memory_state(b: HippocampalReplayBuffer) -> dict:
    return {k: v for k, v in b.state_dict()["memory"].items() if isinstance(v, torch.Tensor)}


def _assert_same_memory(a: HippocampalReplayBuffer, b: HippocampalReplayBuffer) -> None:
    sa, sb = _memory_state(a), _memory_state(b)
    assert sa.keys() == sb.keys()
    for name in sa:
        assert sa[name].dtype == sb[name].dtype and sa[name].numpy().tobytes() == sb[name].numpy().tobytes(), name


def _assert_same_batches(a: HippocampalReplayBuffer, b: HippocampalReplayBuffer) -> None:
    query = None
    for _ in range(2):  # uniform draws, then semantic draws recalled around a stored observation
        kwargs = {} if query is None else {"query_state": query}
        x, y = a.sample(32, **kwargs), b.sample(32, **kwargs)
        query = x.observations[0]
        for field in ("observations", "actions", "rewards", "next_observations", "terminated", "indices", "modes"):
            assert torch.equal(getattr(x, field), getattr(y, field)), field


def _n_episodes(b: HippocampalReplayBuffer) -> int:
    return b.num_episodes


# --------------------------------------------------------------------------- push / load


def test_push_then_load_round_trip_with_card(hub, buffer, tmp_path, monkeypatch):
    repo = "alice/corridor-memory"
    info = push_memory_to_hub(buffer, repo, token=TOKEN, endpoint=hub.endpoint)
    assert isinstance(info, str) and info.oid == hub.commits(repo)[0]
    assert len(hub.commits(repo)) == 2  # the repo's initial commit + exactly one for the push
    files = hub.files(repo)
    with hippo_format.open_memory(buffer.save(tmp_path / "local")) as reader:
        listed = set(reader.files)
    assert set(files) == {".gitattributes", "README.md", "manifest.json", *listed}

    loaded = _load(hub, repo, tmp_path / "cache")
    assert isinstance(loaded, HippocampalReplayBuffer)
    assert len(loaded) == len(buffer) and loaded.num_episodes == buffer.num_episodes == 20
    _assert_same_memory(buffer, loaded)
    assert loaded.provenance == {"env_id": ENV_ID}
    for name, tensor in buffer.encoder.state_dict().items():
        assert torch.equal(tensor, loaded.encoder.state_dict()[name]), name
    # The classmethod delegates to the same function (a second load is served from the cache).
    again = HippocampalReplayBuffer.load_memory_from_hub(repo, endpoint=hub.endpoint, cache_dir=tmp_path / "cache", token=TOKEN)
    _assert_same_memory(loaded, again)
    _assert_same_batches(buffer, loaded)  # sampling updates retrieval bookkeeping: compare last

    # The card: YAML metadata the client parses and the (validate-yaml) endpoint accepts.
    path = huggingface_hub.hf_hub_download(repo, "README.md", endpoint=hub.endpoint, cache_dir=tmp_path / "card")
    card = huggingface_hub.ModelCard.load(path)
    assert card.data.library_name == "hippogym" and card.data.license == "unknown"
    assert card.data.to_dict()["configs"][0]["data_files"][0]["path"] == "transitions.arrow"
    assert {"reinforcement-learning", "episodic-memory", "hippogym", ENV_ID} <= set(card.data.tags)
    meta = card.data.to_dict()["hippogym"]
    assert meta["env_id"] == ENV_ID and meta["transitions"] == len(buffer) and meta["episodes"] == 20
    assert set(meta["return"]) == {"min", "mean", "max"} and 0.0 <= meta["success_rate"] <= 1.0
    assert meta["encoder"]["backbone"] == "mlp" and meta["embed_dim"] == 16
    assert f'load_memory_from_hub("{repo}")' in card.text and "hippogym pull" in card.text
    # The client already had the server validate the card's YAML during the push; and again here.
    assert any(r["path"] == "/api/validate-yaml" and r["status"] == 200 for r in hub.requests)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.endpoint)
    card.validate(repo_type="model")

    # Offline (HF_HUB_OFFLINE): the verified cached copy is served without any request.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    seen = len(hub.requests)
    _assert_same_memory(again, _load(hub, repo, tmp_path / "cache", revision=info.oid))
    assert len(hub.requests) == seen
    from hippogym.integrations.hub import HubError

    with pytest.raises(HubError, match="could not be reached"):
        _load(hub, repo, tmp_path / "empty-cache")
    with pytest.raises(HubError, match="offline mode"):
        push_memory_to_hub(buffer, repo, token=TOKEN, endpoint=hub.endpoint)


def test_push_forms_store_path_and_stale_files(hub, buffer, tmp_path):
    repo = "alice/forms"
    saved = buffer.save(tmp_path / "saved")
    first = push_memory_to_hub(str(saved), repo, token=TOKEN, endpoint=hub.endpoint, commit_message="from a path")
    assert "encoder.safetensors" in hub.files(repo)
    # Re-pushing the very same directory (as a Path) changes nothing: no empty commit, same head.
    second = push_memory_to_hub(saved, repo, token=TOKEN, endpoint=hub.endpoint)
    assert second.oid == first.oid and len(hub.commits(repo)) == 2
    # A bare store has no encoder: the previous memory's encoder file goes away in the same commit.
    third = push_memory_to_hub(buffer.memory, repo, token=TOKEN, endpoint=hub.endpoint)
    assert hub.commits(repo)[:2] == [third.oid, first.oid] and len(hub.commits(repo)) == 3
    assert "encoder.safetensors" not in hub.files(repo) and "README.md" in hub.files(repo)
    store_only = _load(hub, repo, tmp_path / "c1")
    assert len(store_only) == len(buffer)
    assert torch.equal(_memory_state(store_only)["row.key"], _memory_state(buffer)["row.key"])
    store_only.sample(8)
    with pytest.raises(ValidationError):
        push_memory_to_hub(42, repo, token=TOKEN, endpoint=hub.endpoint)
    with pytest.raises(ValidationError):
        push_memory_to_hub(buffer, "not a repo id", token=TOKEN, endpoint=hub.endpoint)
    with pytest.raises(MissingFileError):
        push_memory_to_hub(tmp_path / "nowhere", repo, token=TOKEN, endpoint=hub.endpoint)


def test_private_repo(hub, buffer, tmp_path):
    repo = "alice/private-memory"
    push_memory_to_hub(buffer, repo, private=True, token=TOKEN, endpoint=hub.endpoint)
    assert huggingface_hub.HfApi(endpoint=hub.endpoint, token=TOKEN).repo_info(repo).private is True
    with pytest.raises(HubNotFoundError, match="private") as exc:
        _load(hub, repo, tmp_path / "anon", token=False)
    assert isinstance(exc.value, LookupError) and isinstance(exc.value, HippoError)
    assert "no token was sent" in str(exc.value)
    with pytest.raises(HubNotFoundError, match="has no access"):
        _load(hub, repo, tmp_path / "bob", token=BOB_TOKEN)
    with pytest.raises(HubAuthError, match="401"):
        _load(hub, repo, tmp_path / "forged", token="forged")
    assert len(_load(hub, repo, tmp_path / "alice")) == len(buffer)
    # Bob may not push into alice's namespace; private=True never pushes into a public repo.
    with pytest.raises(HubAuthError, match="403"):
        push_memory_to_hub(buffer, "alice/bobs-attempt", token=BOB_TOKEN, endpoint=hub.endpoint)
    push_memory_to_hub(buffer, "alice/public", token=TOKEN, endpoint=hub.endpoint)
    before = hub.commits("alice/public")
    with pytest.raises(HubPushError, match="is public"):
        push_memory_to_hub(buffer, "alice/public", private=True, token=TOKEN, endpoint=hub.endpoint)
    assert hub.commits("alice/public") == before


def test_revisions_branch_tag_commit(hub, tmp_path):
    repo = "alice/versions"
    v1, v2, v3 = _record(3, seed=1), _record(5, seed=2), _record(7, seed=3)
    c1 = push_memory_to_hub(v1, repo, token=TOKEN, endpoint=hub.endpoint).oid
    c2 = push_memory_to_hub(v2, repo, token=TOKEN, endpoint=hub.endpoint).oid
    huggingface_hub.HfApi(endpoint=hub.endpoint, token=TOKEN).create_tag(repo, tag="v1.0", revision=c1)
    c3 = push_memory_to_hub(v3, repo, revision="dev", token=TOKEN, endpoint=hub.endpoint).oid  # branch created
    assert hub.commits(repo, revision="main")[:2] == [c2, c1]
    assert hub.commits(repo, revision="dev")[:3] == [c3, c2, c1]
    cache = tmp_path / "cache"
    assert _n_episodes(_load(hub, repo, cache, revision=c1)) == 3
    assert _n_episodes(_load(hub, repo, cache, revision="v1.0")) == 3
    assert _n_episodes(_load(hub, repo, cache)) == 5
    assert _n_episodes(_load(hub, repo, cache, revision="main")) == 5
    assert _n_episodes(_load(hub, repo, cache, revision="dev")) == 7
    _assert_same_memory(v1, _load(hub, repo, cache, revision=c1))
    with pytest.raises(HubNotFoundError, match="revision"):
        _load(hub, repo, cache, revision="no-such-branch")
    with pytest.raises(HubNotFoundError, match="does not exist"):
        _load(hub, "alice/no-such-repo", cache)
    with pytest.raises(MissingFileError, match="not a hippogym memory"):
        api = huggingface_hub.HfApi(endpoint=hub.endpoint, token=TOKEN)
        api.create_repo("alice/plain")
        _load(hub, "alice/plain", cache)


def test_interrupted_push_leaves_branch_unchanged(hub, buffer, tmp_path):
    repo = "alice/flaky"
    old = _record(4, seed=4)
    push_memory_to_hub(old, repo, token=TOKEN, endpoint=hub.endpoint)
    before, files_before = hub.commits(repo), hub.files(repo)

    # 507 is not retried (neither by the client nor by push_memory_to_hub): a clear error, nothing changes.
    hub.fail_next(r"/api/models/alice/flaky/commit/", status=507)
    with pytest.raises(HubPushError, match="507") as exc:
        push_memory_to_hub(buffer, repo, token=TOKEN, endpoint=hub.endpoint)
    assert exc.value.status == 507 and "was not changed" in str(exc.value)
    assert hub.commits(repo) == before and hub.files(repo) == files_before and hub.pending_failures == 0
    # Readers still get the complete previous memory, verified.
    _assert_same_memory(old, _load(hub, repo, tmp_path / "c1"))

    # The retry lands as exactly one commit.
    info = push_memory_to_hub(buffer, repo, token=TOKEN, endpoint=hub.endpoint)
    assert hub.commits(repo) == [info.oid, *before]
    _assert_same_memory(buffer, _load(hub, repo, tmp_path / "c2"))

    # A transient 500 on the commit is retried: still exactly one new commit.
    hub.fail_next(r"/commit/main$", status=500)
    info2 = push_memory_to_hub(old, repo, token=TOKEN, endpoint=hub.endpoint)
    assert hub.commits(repo) == [info2.oid, info.oid, *before]
    statuses = [r["status"] for r in hub.requests if r["path"].endswith("/commit/main")]
    assert statuses[-2:] == [500, 200]


def test_lost_commit_answer_is_detected_and_reported_as_landed(hub, buffer, tmp_path):
    repo = "alice/lost-answer"
    old = _record(4, seed=4)
    push_memory_to_hub(old, repo, token=TOKEN, endpoint=hub.endpoint)
    before = hub.commits(repo)
    # The server commits, then the answer is lost (500): a blind retry would get 412 and claim nothing landed.
    hub.fail_next(r"/commit/main$", status=500, after_processing=True)
    info = push_memory_to_hub(buffer, repo, token=TOKEN, endpoint=hub.endpoint)
    assert hub.commits(repo) == [info.oid, *before]  # exactly one new commit, and it is the one returned
    statuses = [r["status"] for r in hub.requests if r["path"].endswith("/commit/main")]
    assert statuses[-1] == 500 and 412 not in statuses
    _assert_same_memory(buffer, _load(hub, repo, tmp_path / "c1"))


def test_push_after_another_push_says_the_branch_moved(hub, buffer, monkeypatch):
    import hippogym.hubio.push as hub_module

    repo = "alice/raced"
    push_memory_to_hub(_record(3, seed=3), repo, token=TOKEN, endpoint=hub.endpoint)
    stale = hub.commits(repo)[0]
    push_memory_to_hub(_record(4, seed=4), repo, token=TOKEN, endpoint=hub.endpoint)  # the other push
    moved = hub.commits(repo)
    real = hub_module._branch_head
    monkeypatch.setattr(hub_module, "_branch_head", lambda *a, **k: (stale, real(*a, **k)[1]))
    with pytest.raises(HubPushError, match=r"HTTP 412.*branch moved .*another push\). This memory was not committed") as exc:
        push_memory_to_hub(buffer, repo, token=TOKEN, endpoint=hub.endpoint)
    assert exc.value.status == 412 and "Nothing was committed" not in str(exc.value)
    assert hub.commits(repo) == moved


@pytest.fixture
def lfs_hub(tmp_path, monkeypatch):
    """A server sending files of 1 KiB or more through Git LFS, like the Hub; the client does not use Xet."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    with LocalHubServer(root=tmp_path / "lfs-hub", tokens={TOKEN: "alice"}, lfs_threshold=1024) as server:
        yield server


def test_push_through_lfs_and_lfs_failures_are_hub_push_errors(lfs_hub, buffer, tmp_path):
    repo = "alice/lfs"
    old = _record(4, seed=4)
    push_memory_to_hub(old, repo, token=TOKEN, endpoint=lfs_hub.endpoint)
    assert any(entry.get("lfs") for entry in lfs_hub.files(repo).values())  # the large files went through LFS
    assert any(r["method"] == "PUT" and r["path"].startswith("/lfs-upload/") for r in lfs_hub.requests)
    before, files_before = lfs_hub.commits(repo), lfs_hub.files(repo)
    for path, status, method in [
        (r"/lfs-upload/", 507, "PUT"),
        (r"/info/lfs/objects/batch$", 422, "POST"),
        (r"/info/lfs/objects/verify$", 404, "POST"),
    ]:
        lfs_hub.fail_next(path, status=status, method=method)
        with pytest.raises(HubPushError, match=f"HTTP {status}") as exc:
            push_memory_to_hub(buffer, repo, token=TOKEN, endpoint=lfs_hub.endpoint)
        assert not isinstance(exc.value, RuntimeError) or isinstance(exc.value, HippoError)
        assert exc.value.status == status and "was not changed" in str(exc.value), str(exc.value)
        assert lfs_hub.commits(repo) == before and lfs_hub.files(repo) == files_before
        assert lfs_hub.pending_failures == 0
    _assert_same_memory(old, _load(lfs_hub, repo, tmp_path / "c1"))
    info = push_memory_to_hub(buffer, repo, token=TOKEN, endpoint=lfs_hub.endpoint)
    assert lfs_hub.commits(repo) == [info.oid, *before]
    _assert_same_memory(buffer, _load(lfs_hub, repo, tmp_path / "c2"))


def test_tampered_download_is_refused_then_recovers(hub, buffer, tmp_path):
    repo = "alice/tampered"
    push_memory_to_hub(buffer, repo, token=TOKEN, endpoint=hub.endpoint)
    original = huggingface_hub.hf_hub_download(repo, "keys.safetensors", endpoint=hub.endpoint, cache_dir=tmp_path / "x")
    original = Path(original).read_bytes()
    evil = original[:-64] + bytes(b ^ 0x5A for b in original[-64:])  # same size: only SHA-256 tells
    hub.tamper(repo, "keys.safetensors", evil)
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumMismatchError, match="keys.safetensors"):
        _load(hub, repo, cache)
    # pull: the existing memory at OUT is left as it was, and no temp directory is left behind.
    out = tmp_path / "pulled"
    download_memory(buffer.save(tmp_path / "older"), out)
    manifest_before = (out / "manifest.json").read_bytes()
    with pytest.raises(ChecksumMismatchError):
        download_memory(repo, out, endpoint=hub.endpoint, cache_dir=cache, token=TOKEN)
    assert (out / "manifest.json").read_bytes() == manifest_before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".pulled.")) in ([], [".pulled.lock"])
    # The corrupt copy was evicted from the cache: once the server is fixed, the same cache works.
    hub.tamper(repo, "keys.safetensors", original)
    _assert_same_memory(buffer, _load(hub, repo, cache))
    # A tampered manifest is refused too (its own digest no longer matches).
    manifest = json.loads(Path(huggingface_hub.hf_hub_download(
        repo, "manifest.json", endpoint=hub.endpoint, cache_dir=tmp_path / "y")).read_text())
    manifest["counts"]["episodes"] += 0
    manifest["provenance"]["env_id"] = "evil/Env-v0"
    hub.tamper(repo, "manifest.json", json.dumps(manifest).encode())
    with pytest.raises(FormatError):
        _load(hub, repo, tmp_path / "cache2")


def test_download_memory_places_a_conformant_copy(hub, buffer, tmp_path):
    repo = "alice/pull-me"
    push_memory_to_hub(buffer, repo, token=TOKEN, endpoint=hub.endpoint)
    out = download_memory(repo, tmp_path / "out" / "memory", endpoint=hub.endpoint, cache_dir=tmp_path / "c", token=TOKEN)
    assert out == tmp_path / "out" / "memory"
    assert hippo_format.check_conformance(out) == []
    assert "README.md" not in os.listdir(out)
    _assert_same_memory(buffer, HippocampalReplayBuffer.load(out))
    # Replacing an existing memory works; a non-memory directory is never replaced.
    download_memory(repo, out, endpoint=hub.endpoint, cache_dir=tmp_path / "c", token=TOKEN)
    assert sorted(p.name for p in out.parent.iterdir()) == [".memory.lock", "memory"]
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("mine")
    with pytest.raises(TargetExistsError):
        download_memory(repo, junk, endpoint=hub.endpoint, cache_dir=tmp_path / "c", token=TOKEN)
    assert os.listdir(junk) == ["notes.txt"]


def test_refused_pull_leaves_the_cache_complete(hub, buffer, tmp_path, monkeypatch):
    repo = "alice/keep-cache"
    push_memory_to_hub(buffer, repo, token=TOKEN, endpoint=hub.endpoint)
    cache = tmp_path / "cache"
    download_memory(repo, tmp_path / "first", endpoint=hub.endpoint, cache_dir=cache, token=TOKEN)
    cached = sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file())
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("mine")
    seen = len(hub.requests)
    with pytest.raises(TargetExistsError):
        download_memory(repo, junk, endpoint=hub.endpoint, cache_dir=cache, token=TOKEN)
    assert len(hub.requests) == seen  # refused before anything is fetched
    assert os.listdir(junk) == ["notes.txt"]
    assert sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file()) == cached
    # The cache is still complete: an offline pull is served from it.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    out = download_memory(repo, tmp_path / "offline", endpoint=hub.endpoint, cache_dir=cache, token=TOKEN)
    _assert_same_memory(buffer, HippocampalReplayBuffer.load(out))


def test_format_errors_other_than_checksums_never_evict(hub, buffer, tmp_path, monkeypatch):
    import hippogym.integrations.hub as hub_module

    repo = "alice/no-evict"
    push_memory_to_hub(buffer, repo, token=TOKEN, endpoint=hub.endpoint)
    cache = tmp_path / "cache"
    _load(hub, repo, cache)
    cached = sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file())

    def refuse(*args, **kwargs):
        raise hippo_format.SchemaError("refused by the reader, not corrupt")

    monkeypatch.setattr(hub_module, "_load_directory", refuse)
    with pytest.raises(hippo_format.SchemaError):
        _load(hub, repo, cache)
    assert sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file()) == cached


def test_a_hub_cache_snapshot_directory_loads_directly(hub, buffer, tmp_path):
    """The usual idiom: ``load(snapshot_download(repo))``, on the cache's symlinks into its blobs."""
    repo = "alice/snapshot-idiom"
    push_memory_to_hub(buffer, repo, token=TOKEN, endpoint=hub.endpoint)
    snapshot = huggingface_hub.snapshot_download(repo, endpoint=hub.endpoint, cache_dir=tmp_path / "c", token=TOKEN)
    snapshot = Path(snapshot)
    assert (snapshot / "manifest.json").is_symlink()
    _assert_same_memory(buffer, load_memory_from_hub(snapshot))
    _assert_same_memory(buffer, load_memory_from_hub(str(snapshot)))
    _assert_same_memory(buffer, HippocampalReplayBuffer.load(snapshot))


def test_local_paths_and_file_urls(buffer, tmp_path, monkeypatch):
    saved = buffer.save(tmp_path / "mem")
    monkeypatch.chdir(tmp_path)
    reference = load_memory_from_hub(saved)
    for ref in ("./mem", str(saved), f"file://{saved}", saved.as_uri(), "mem"):
        _assert_same_memory(reference, load_memory_from_hub(ref))
    _assert_same_memory(reference, load_memory_from_hub(saved, verify=False))
    with pytest.raises(ValidationError):
        load_memory_from_hub("./mem", revision="main")
    with pytest.raises(MissingFileError):
        load_memory_from_hub("./does-not-exist")
    with pytest.raises(ValidationError):
        load_memory_from_hub("file://remote-host/mem")
    # A string that is neither an existing path nor a valid repo id is reported as such (huggingface_hub's
    # validator decides), not looked up as a missing directory; "$"-style checks would let "\n" through.
    for bad in ("not a repo id", "alice/x\n", "alice/x.git", "alice--x/y", "x" * 97):
        with pytest.raises(ValidationError, match="no valid repo id") as exc:
            load_memory_from_hub(bad)
        assert not isinstance(exc.value, FileNotFoundError)
        with pytest.raises(ValidationError, match="no valid repo id"):
            download_memory(bad, tmp_path / "never")
        with pytest.raises(ValidationError, match="repo_id"):
            push_memory_to_hub(buffer, bad, token=TOKEN, endpoint="http://127.0.0.1:9")
    assert not (tmp_path / "never").exists()
    out = download_memory(saved.as_uri(), tmp_path / "copy")
    _assert_same_memory(reference, load_memory_from_hub(out))
    # A damaged local memory is refused by the full verification.
    data = bytearray((saved / "transitions.arrow").read_bytes())
    data[200] ^= 0xFF
    (saved / "transitions.arrow").write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError):
        load_memory_from_hub("./mem")
    with pytest.raises(ChecksumMismatchError):
        download_memory("./mem", tmp_path / "copy")
    _assert_same_memory(reference, load_memory_from_hub(out))  # the previous copy is intact


def _card_metadata(text: str) -> dict:
    import yaml

    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


def test_memory_card_from_a_directory(buffer, tmp_path):
    saved = buffer.save(tmp_path / "m")
    text = memory_card(saved, repo_id="alice/x")
    meta = _card_metadata(text)
    assert meta["library_name"] == "hippogym" and meta["license"] == "unknown" and ENV_ID in meta["tags"]
    assert {"reinforcement-learning", "episodic-memory", "hippogym"} <= set(meta["tags"])
    files = json.loads((saved / "manifest.json").read_text())["files"]
    # configs: the first (default) config names the transitions table, which the memory holds.
    default = {"config_name": "default", "data_files": [{"split": "train", "path": "transitions.arrow"}]}
    assert meta["configs"][0] == default
    assert [c["config_name"] for c in meta["configs"]] == ["default", "episodes"]
    assert all(f["path"] in files for c in meta["configs"] for f in c["data_files"])
    dataset = _card_metadata(memory_card(saved, repo_id="alice/x", repo_type="dataset", license="cc-by-4.0"))
    assert dataset["license"] == "cc-by-4.0" and dataset["task_categories"] == ["reinforcement-learning"]
    assert dataset["configs"] == meta["configs"] and dataset["library_name"] == "hippogym"
    assert 'repo_type="dataset"' in memory_card(saved, repo_id="alice/x", repo_type="dataset")
    with pytest.raises(ValidationError, match="license"):
        memory_card(saved, license="not a license")
    with pytest.raises(ValidationError, match="repo_type"):
        memory_card(saved, repo_type="bucket")


@pytest.mark.parametrize("compression", [None, "zstd"])
def test_datasets_load_dataset_reads_the_transitions_table(buffer, tmp_path, compression):
    """A local copy of a dataset repo (memory + card): ``datasets.load_dataset(dir)`` follows ``configs:``."""
    datasets = pytest.importorskip("datasets")
    import pyarrow.ipc

    saved = buffer.save(tmp_path / "repo", compression=compression)
    (saved / "README.md").write_text(memory_card(saved, repo_id="alice/x", repo_type="dataset"))
    table = pyarrow.ipc.open_file(str(saved / "transitions.arrow")).read_all()
    loaded = datasets.load_dataset(str(saved), cache_dir=str(tmp_path / "ds-cache"))
    assert list(loaded) == ["train"] and loaded["train"].num_rows == len(buffer) == table.num_rows
    assert loaded["train"].column_names == table.column_names
    assert loaded["train"]["reward"] == table.column("reward").to_pylist()
    episodes = datasets.load_dataset(str(saved), "episodes", cache_dir=str(tmp_path / "ds-cache"))
    assert episodes["train"].num_rows == buffer.num_episodes


def test_push_to_a_dataset_repo_with_a_license(hub, buffer, tmp_path):
    repo = "alice/corridor-data"
    push_memory_to_hub(buffer, repo, token=TOKEN, endpoint=hub.endpoint, repo_type="dataset", license="cc-by-4.0")
    path = huggingface_hub.hf_hub_download(
        repo, "README.md", repo_type="dataset", endpoint=hub.endpoint, cache_dir=tmp_path / "card", token=TOKEN
    )
    card = huggingface_hub.DatasetCard.load(path)
    assert card.data.license == "cc-by-4.0" and card.data.library_name == "hippogym"
    assert card.data.configs[0]["data_files"][0]["path"] == "transitions.arrow"
    _assert_same_memory(buffer, _load(hub, repo, tmp_path / "c", repo_type="dataset"))


def test_missing_huggingface_hub_is_reported(buffer, monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(MissingDependencyError, match=r"hippogym\[hub\]") as exc:
        push_memory_to_hub(buffer, "alice/x")
    assert isinstance(exc.value, ImportError)
    with pytest.raises(MissingDependencyError):
        load_memory_from_hub("alice/x")


def test_unreachable_endpoint_is_a_hub_error(buffer, tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from hippogym.integrations.hub import HubError

    with pytest.raises(HubError, match="could not be reached"):
        push_memory_to_hub(buffer, "alice/x", token=TOKEN, endpoint=f"http://127.0.0.1:{port}")
    with pytest.raises(HubError, match="could not be reached"):
        load_memory_from_hub("alice/x", endpoint=f"http://127.0.0.1:{port}", cache_dir=tmp_path / "c", token=TOKEN)


# --------------------------------------------------------------------------- Minari


_MINARI_CHILD = textwrap.dedent(
    """
    import json, os, sys
    import gymnasium as gym
    import numpy as np
    import minari
    from minari.data_collector.episode_buffer import EpisodeBuffer
    import hippogym

    token, upload_root, download_root = sys.argv[1:4]
    dataset_id = "corridor/expert-v0"
    hippogym.register_envs()
    env = gym.make("hippogym/SparseCorridor-v0", length=8)

    # 1. An expert dataset: a scripted always-right policy with epsilon noise.
    os.environ["MINARI_DATASETS_PATH"] = upload_root
    rng = np.random.default_rng(0)
    episodes = []
    for ep in range(6):
        obs, _ = env.reset(seed=ep)
        observations, actions, rewards, terms, truncs = [obs], [], [], [], []
        done = False
        while not done:
            action = 1 if rng.random() > 0.1 else 0
            obs, reward, terminated, truncated, _ = env.step(action)
            observations.append(obs); actions.append(action); rewards.append(reward)
            terms.append(terminated); truncs.append(truncated)
            done = terminated or truncated
        episodes.append(EpisodeBuffer(id=ep, observations=observations, actions=actions, rewards=rewards,
                                      terminations=terms, truncations=truncs, infos={}))
    minari.create_dataset_from_buffers(
        dataset_id, episodes, env=env, algorithm_name="scripted-right-eps0.1", author="hippogym",
        author_email="hippogym@example.com", code_permalink="https://example.com", description="expert corridor",
    )

    # 2. Minari's own Hub remote (MINARI_REMOTE=hf://alice, HF_ENDPOINT set before import).
    minari.upload_dataset(dataset_id, token=token)
    os.environ["MINARI_DATASETS_PATH"] = download_root
    minari.download_dataset(dataset_id)
    ds = minari.load_dataset(dataset_id)
    print(json.dumps({"episodes": ds.total_episodes, "steps": ds.total_steps,
                      "lengths": [len(e) for e in episodes]}))
    """
)


@pytest.fixture(scope="module")
def minari_download(tmp_path_factory):
    pytest.importorskip("minari")
    pytest.importorskip("h5py")
    tmp = tmp_path_factory.mktemp("minari")
    with LocalHubServer(root=tmp / "hub", tokens={TOKEN: "alice"}) as server:
        script = tmp / "child.py"
        script.write_text(_MINARI_CHILD)
        env = dict(os.environ)
        env.update(
            HF_ENDPOINT=server.endpoint, MINARI_REMOTE="hf://alice", HF_HOME=str(tmp / "hf_home"),
            HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1", PYTHONWARNINGS="ignore",
        )
        env.pop("HF_TOKEN", None)
        result = subprocess.run(
            [sys.executable, str(script), TOKEN, str(tmp / "up"), str(tmp / "down")],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        files = server.files("alice/corridor", repo_type="dataset")
    return {"summary": summary, "down": tmp / "down", "files": files}


def test_minari_dataset_through_the_hub(minari_download):
    summary = minari_download["summary"]
    assert summary["episodes"] == 6 and summary["steps"] == sum(summary["lengths"])
    assert "expert-v0/data/main_data.hdf5" in minari_download["files"]
    assert (minari_download["down"] / "corridor" / "expert-v0" / "data" / "main_data.hdf5").is_file()


def test_minari_download_converts_to_a_memory(minari_download, hub, tmp_path, monkeypatch):
    integration = pytest.importorskip("hippogym.integrations.minari")
    if not hasattr(integration, "memory_from_minari"):
        pytest.skip("hippogym.integrations.minari.memory_from_minari is not available yet")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(minari_download["down"]))
    memory = integration.memory_from_minari("corridor/expert-v0")
    buffer = memory if isinstance(memory, HippocampalReplayBuffer) else HippocampalReplayBuffer.load(memory)
    assert len(buffer) == minari_download["summary"]["steps"]
    assert buffer.num_episodes == minari_download["summary"]["episodes"]
    push_memory_to_hub(buffer, "alice/corridor-expert-memory", token=TOKEN, endpoint=hub.endpoint)
    loaded = _load(hub, "alice/corridor-expert-memory", tmp_path / "cache")
    _assert_same_memory(buffer, loaded)
    assert loaded.provenance.get("dataset_id") == "corridor/expert-v0"
