"""Conformance: memories written by write_memory satisfy every mechanically checkable MUST of SPEC.md,
and the checker catches violations."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from hippo_format import check_conformance, write_memory
from hippo_format._manifest import dump_manifest

from .memgen import make_memory_arrays, read_table, rewrite_manifest, write_small_memory

SPEC = Path(__file__).parents[2] / "hippo_format" / "SPEC.md"


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"image": True},
        {"dict_obs": True, "keys_dtype": np.float16},
        {"compression": "zstd"},
        {"compression": "lz4", "batch_rows": 3},
        {"episodes": 0},
        {"episodes": 1, "steps": 1},
    ],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default",
)
def test_writer_output_conforms(tmp_path, options):
    path = write_small_memory(tmp_path / "mem", **options)
    assert check_conformance(path) == []


def test_every_checked_rule_is_in_the_spec():
    """The rule ids the checker reports are the ids SPEC.md defines."""
    import inspect

    import hippo_format.conformance as conformance

    used = set(re.findall(r'report\.add\("([A-Z]\d+)"', inspect.getsource(conformance)))
    defined = set(re.findall(r"\*\*([A-Z]\d+)\*\*", SPEC.read_text(encoding="utf-8")))
    assert used and used <= defined, used - defined


def _codes(problems: list[str]) -> set[str]:
    return {p[1 : p.index("]")] for p in problems}


@pytest.fixture
def mem(tmp_path: Path) -> Path:
    return write_small_memory(tmp_path / "mem")


def test_detects_unlisted_file(mem):
    (mem / "stray.bin").write_bytes(b"?")
    assert _codes(check_conformance(mem)) == {"D3"}


def test_detects_wrong_checksum_and_size(mem):
    path = mem / "index.faiss"
    path.write_bytes(path.read_bytes()[::-1] + b"x")
    problems = check_conformance(mem)
    assert _codes(problems) == {"M7"} and len(problems) == 3  # bytes, sha256, xxh3_128


def test_detects_a_wrong_fast_digest_alone(mem):
    rewrite_manifest(mem, lambda d: d["files"]["index.faiss"].__setitem__("xxh3_128", "0" * 32))
    problems = check_conformance(mem)
    assert _codes(problems) == {"M7"} and len(problems) == 1 and "xxh3_128" in str(problems[0])


def test_detects_manifest_digest_problems(mem):
    raw = (mem / "manifest.json").read_bytes()
    (mem / "manifest.json").write_bytes(raw.replace(b'"Test-v0"', b'"Test-v9"'))
    assert _codes(check_conformance(mem)) == {"M9"}
    doc = json.loads(raw)
    digest = doc.pop("manifest_sha256")
    doc = {"manifest_sha256": digest, **doc}
    (mem / "manifest.json").write_text(json.dumps(doc), encoding="utf-8")
    assert "M9" in _codes(check_conformance(mem))


def test_detects_manifest_field_problems(mem):
    def mutate(d: dict) -> None:
        d["format_version"] = 2
        d["producer"] = {"name": "x"}
        d["created"] = "2024-01-01T00:00:00"  # no UTC offset
        d["counts"]["episodes"] = 5
        d.pop("compression")
        d["embed_dim"] = "4"
        d["row_aligned"]["keys"]["embeddings"] = "episodes"

    rewrite_manifest(mem, mutate)
    assert _codes(check_conformance(mem)) == {"M2", "M3", "M4", "M5", "M6", "M8", "M10"}


def test_detects_compressed_buffers_declared_uncompressed(tmp_path):
    path = write_small_memory(tmp_path / "mem", compression="zstd")
    rewrite_manifest(path, lambda d: d.update(compression=None))
    assert _codes(check_conformance(path)) == {"A2"}


def test_detects_nan_tiling_and_type_problems(mem):
    table = read_table(mem / "transitions.arrow")
    reward = table.column("reward").to_numpy().copy()
    reward[2] = np.nan
    table = table.set_column(table.schema.get_field_index("reward"), pa.field("reward", pa.float32(), nullable=False), pa.array(reward))
    table = table.append_column("comment", pa.array(["hello"] * table.num_rows))
    with pa.ipc.new_file(str(mem / "transitions.arrow"), table.schema) as writer:
        writer.write_table(table)
    episodes = read_table(mem / "episodes.arrow")
    length = episodes.column("length").to_numpy().copy()
    length[0] += 1
    episodes = episodes.set_column(2, pa.field("length", pa.int64(), nullable=False), pa.array(length))
    with pa.ipc.new_file(str(mem / "episodes.arrow"), episodes.schema) as writer:
        writer.write_table(episodes)
    rewrite_manifest(mem)
    assert _codes(check_conformance(mem)) == {"A3", "A4", "E2"}


def test_detects_stream_format_instead_of_file_format(mem):
    table = read_table(mem / "episodes.arrow")
    with pa.ipc.new_stream(str(mem / "episodes.arrow"), table.schema) as writer:
        writer.write_table(table)
    rewrite_manifest(mem)
    assert _codes(check_conformance(mem)) == {"A1"}


def test_detects_invalid_safetensors(mem):
    header = b'{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}'
    (mem / "keys.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 4)
    rewrite_manifest(mem, lambda d: d.pop("row_aligned"))
    assert _codes(check_conformance(mem)) == {"S1"}


def test_detects_unsafe_and_missing_entries(mem):
    def mutate(d: dict) -> None:
        d["files"]["../outside"] = {"sha256": "0" * 64, "bytes": 0}
        d["files"]["ghost.bin"] = {"sha256": "0" * 64, "bytes": 0}

    rewrite_manifest(mem, mutate)
    assert _codes(check_conformance(mem)) == {"D4", "M7"}


def test_detects_broken_manifest(tmp_path, mem):
    (mem / "manifest.json").write_bytes(b"\xff{")
    assert _codes(check_conformance(mem)) == {"M1"}
    (mem / "manifest.json").write_bytes(dump_manifest({"a": 1})[:-3])
    assert _codes(check_conformance(mem)) == {"M1"}
    assert _codes(check_conformance(tmp_path / "missing")) == {"D1"}


def test_writer_sets_uncompressed_single_batch_by_default(tmp_path):
    data = make_memory_arrays(episodes=50, steps=20)
    path = write_memory(tmp_path / "mem", **data)
    with pa.memory_map(str(path / "transitions.arrow")) as source:
        reader = pa.ipc.open_file(source)
        assert reader.num_record_batches == 1
    assert json.loads((path / "manifest.json").read_text())["compression"] is None
