"""Version 0 memories (pre-release layout) are upgraded in memory on open, read-only."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import hippo_format
from hippo_format import migrations, open_memory

from .memgen import bit_equal, make_memory_arrays


def _write_v0(path: Path, data: dict) -> None:
    """Write the version-0 layout by hand: transitions in episodes.arrow, 'version' key, no episode table."""
    path.mkdir()
    table = pa.table(
        {
            name: (
                pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])
                if values.ndim == 2
                else pa.array(values)
            )
            for name, values in data["transitions"].items()
        }
    )
    with pa.ipc.new_file(str(path / "episodes.arrow"), table.schema) as writer:
        writer.write_table(table)
    keys = data["tensors"]["keys"]["embeddings"]
    from safetensors.numpy import save_file

    save_file({"embeddings": keys}, str(path / "keys.safetensors"))
    files = {}
    for name in ("episodes.arrow", "keys.safetensors"):
        raw = (path / name).read_bytes()
        files[name] = {"sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw)}
    manifest = {
        "format": "hippo-memory",
        "version": 0,
        "producer": {"name": "hippogym", "version": "0.0.1"},
        "created": "2024-01-01T00:00:00+00:00",
        "num_transitions": len(data["transitions"]["reward"]),
        "files": files,
        "embed_dim": 4,
    }
    (path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


@pytest.fixture
def v0(tmp_path: Path) -> tuple[Path, dict]:
    data = make_memory_arrays(episodes=5, steps=4)
    path = tmp_path / "old"
    _write_v0(path, data)
    return path, data


def test_v0_memory_opens_through_the_migration(v0):
    path, data = v0
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    for verify in ("size", "full", "none"):
        reader = open_memory(path, verify=verify)
        assert reader.format_version_on_disk == 0
        manifest = reader.manifest
        assert manifest["format_version"] == 1 and manifest["migrated_from"] == 0
        assert "version" not in manifest and "num_transitions" not in manifest
        assert manifest["counts"] == {"transitions": 24, "episodes": 5}
        for name, values in data["transitions"].items():
            assert bit_equal(reader.column(name), values), name
        episodes = reader.episodes()
        for name in ("episode_id", "start", "length"):
            assert bit_equal(episodes[name], data["episodes"][name]), name
        np.testing.assert_allclose(episodes["return"], data["episodes"]["return"], rtol=1e-12)
        assert (episodes["success"] == -1).all()
        assert reader.tensor_files == ["keys"]
        loaded = reader.load_all()
        assert bit_equal(loaded["tensors"]["keys"]["embeddings"], data["tensors"]["keys"]["embeddings"])
        reader.verify(full=True)
    # read-only: nothing on disk changed
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before


def test_v0_refused_without_migration(v0):
    path, _ = v0
    with pytest.raises(hippo_format.UnsupportedVersionError, match="format version 0, older than 1; open it with migrate=True"):
        open_memory(path, migrate=False)


def test_resaving_a_migrated_memory_writes_version_1(tmp_path, v0):
    path, data = v0
    reader = open_memory(path)
    loaded = reader.load_all()
    out = hippo_format.write_memory(
        tmp_path / "new",
        manifest=reader.manifest,
        transitions=loaded["transitions"],
        episodes=loaded["episodes"],
        tensors=loaded["tensors"],
    )
    assert hippo_format.check_conformance(out) == []
    new = open_memory(out, verify="full")
    assert new.format_version_on_disk == 1 and "migrated_from" not in new.manifest
    assert new.manifest["embed_dim"] == 4


def test_registry_refuses_duplicates_and_reports_gaps(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="already registered"):
        migrations.register_migration(0)(lambda manifest, ctx: manifest)
    monkeypatch.setattr(migrations, "_REGISTRY", {})
    with pytest.raises(hippo_format.UnsupportedVersionError, match="no migration from it is registered"):
        migrations.migrate_manifest({"version": 0}, 0, tmp_path)


def test_migration_must_return_the_next_version(tmp_path, monkeypatch):
    monkeypatch.setattr(migrations, "_REGISTRY", {})
    migrations.register_migration(0)(lambda manifest, ctx: dict(manifest, format_version=5))
    with pytest.raises(hippo_format.ManifestError, match="returned format_version 5, expected 1"):
        migrations.migrate_manifest({"version": 0}, 0, tmp_path)


def test_episodes_from_ids():
    ids = np.array([4, 4, 4, 9, 9, 4], dtype=np.int64)
    reward = np.array([1, 2, 3, 4, 5, 6], dtype=np.float32)
    episodes = migrations.episodes_from_ids(ids, reward)
    assert episodes["episode_id"].tolist() == [4, 9, 4]
    assert episodes["start"].tolist() == [0, 3, 5]
    assert episodes["length"].tolist() == [3, 2, 1]
    assert episodes["return"].tolist() == [6.0, 9.0, 6.0]
    empty = migrations.episodes_from_ids(np.zeros(0, np.int64), np.zeros(0, np.float32))
    assert all(len(v) == 0 for v in empty.values())
