"""Every error type, triggered on purpose, with a message that says what to fix."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import xxhash

import hippo_format
from hippo_format import errors, open_memory, write_memory

from .memgen import make_memory_arrays, read_table, rewrite_manifest, write_small_memory


@pytest.fixture
def mem(tmp_path: Path) -> Path:
    return write_small_memory(tmp_path / "mem")


def test_error_hierarchy():
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.FormatError) and issubclass(cls, ValueError), name
        assert cls.__doc__, name
    assert issubclass(errors.MissingFileError, FileNotFoundError)
    assert issubclass(errors.TruncatedFileError, errors.CorruptFileError)
    assert issubclass(errors.NonFiniteValueError, errors.SchemaError)


# ---------------------------------------------------------------- versions
def test_newer_version_is_refused(mem):
    rewrite_manifest(mem, lambda d: d.update(format_version=2))
    with pytest.raises(errors.UnsupportedVersionError, match=r"format_version 2 is newer.*upgrade hippo_format"):
        open_memory(mem)


def test_other_format_name_is_refused(mem):
    rewrite_manifest(mem, lambda d: d.update(format="not-hippo"))
    with pytest.raises(errors.UnsupportedVersionError, match="'format' is 'not-hippo', expected 'hippo-memory'"):
        open_memory(mem)


def test_unknown_old_version_is_refused(mem):
    rewrite_manifest(mem, lambda d: d.update(format_version=-1))
    with pytest.raises(errors.UnsupportedVersionError, match="unknown format version -1"):
        open_memory(mem)


# ---------------------------------------------------------------- missing files
def test_missing_listed_file(mem):
    (mem / "keys.safetensors").unlink()
    with pytest.raises(errors.MissingFileError, match=r"keys\.safetensors: missing, but manifest\.json lists it") as info:
        open_memory(mem)
    assert isinstance(info.value, FileNotFoundError)


def test_missing_manifest_and_directory(tmp_path, mem):
    with pytest.raises(errors.MissingFileError, match="no such memory directory"):
        open_memory(tmp_path / "nowhere")
    (mem / "manifest.json").unlink()
    with pytest.raises(errors.MissingFileError, match="manifest.json: missing"):
        open_memory(mem)


def test_required_table_not_listed(mem):
    rewrite_manifest(mem, lambda d: d["files"].pop("episodes.arrow"))
    with pytest.raises(errors.ManifestError, match="'files' must list 'episodes.arrow'"):
        open_memory(mem)


# ---------------------------------------------------------------- checksums and truncation
def test_bit_flip_is_caught_by_full_verification_only(mem):
    path = mem / "keys.safetensors"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x40
    path.write_bytes(bytes(data))
    open_memory(mem)  # same size: the cheap check passes by design
    with pytest.raises(errors.ChecksumMismatchError, match=r"keys\.safetensors: XXH3-128 is [0-9a-f]{32}.*records") as info:
        open_memory(mem, verify="full")
    assert "restore it or re-save" in str(info.value)
    with pytest.raises(errors.ChecksumMismatchError, match=r"keys\.safetensors: SHA-256 is [0-9a-f]{64}.*records"):
        open_memory(mem, verify="sha256")
    with pytest.raises(errors.ChecksumMismatchError):
        open_memory(mem).verify(full=True)
    with pytest.raises(errors.ChecksumMismatchError, match="SHA-256"):
        open_memory(mem).verify(full=True, sha256=True)


def test_manifests_record_both_digests_and_a_manifest_without_the_fast_one_is_checked_by_sha256(mem):
    files = json.loads((mem / "manifest.json").read_text())["files"]
    for name, entry in files.items():
        data = (mem / name).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["xxh3_128"] == xxhash.xxh3_128(data).hexdigest()
    # A version-1 manifest written before XXH3 was recorded: full verification falls back to SHA-256.
    rewrite_manifest(mem, lambda d: [entry.pop("xxh3_128") for entry in d["files"].values()])
    open_memory(mem, verify="full")
    path = mem / "keys.safetensors"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(errors.ChecksumMismatchError, match="SHA-256"):
        open_memory(mem, verify="full")


@pytest.mark.parametrize("bad", ["ABC", "0" * 31, "g" * 32, 7])
def test_a_malformed_fast_digest_is_a_manifest_error(mem, bad):
    rewrite_manifest(mem, lambda d: d["files"]["keys.safetensors"].__setitem__("xxh3_128", bad))
    with pytest.raises(errors.ManifestError, match=r"files\['keys.safetensors'\]\.xxh3_128 must be 32 lowercase hex"):
        open_memory(mem)


def test_manifest_edit_is_caught_by_full_verification(mem):
    raw = (mem / "manifest.json").read_bytes()
    (mem / "manifest.json").write_bytes(raw.replace(b'"Test-v0"', b'"Test-v1"'))
    assert open_memory(mem).manifest["provenance"]["env_id"] == "Test-v1"
    with pytest.raises(errors.ChecksumMismatchError, match="manifest.json: content digest"):
        open_memory(mem, verify="full")


def test_grown_file_is_a_checksum_mismatch(mem):
    with open(mem / "index.faiss", "ab") as f:
        f.write(b"more")
    with pytest.raises(errors.ChecksumMismatchError, match=r"index\.faiss: \d+ bytes, but manifest.json records \d+"):
        open_memory(mem)


def test_truncated_arrow_file(mem):
    path = mem / "transitions.arrow"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(errors.TruncatedFileError, match=r"transitions\.arrow: \d+ bytes, but manifest\.json records \d+; the file is truncated"):
        open_memory(mem)
    with pytest.raises(errors.CorruptFileError, match=r"transitions\.arrow: cannot read it as an Arrow IPC file"):
        open_memory(mem, verify="none")


def test_truncated_safetensors_file(mem):
    path = mem / "keys.safetensors"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(errors.TruncatedFileError, match=r"keys\.safetensors"):
        open_memory(mem)
    with pytest.raises(errors.TruncatedFileError, match=r"keys\.safetensors: tensor '\w+': data ends at byte \d+"):
        open_memory(mem, verify="none")
    path.write_bytes(b"\x01\x02")
    with pytest.raises(errors.TruncatedFileError, match="too short for a safetensors file"):
        open_memory(mem, verify="none")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b"{not json", "not valid UTF-8 JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"t": {"dtype": "Q9", "shape": [1], "data_offsets": [0, 4]}}', "unknown dtype 'Q9'"),
        (b'{"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}', "needs 8 bytes but data_offsets span 4"),
        (b'{"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "t": {}}', "repeats the key 't'"),
        (b'{"t": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}', "shape must be a list of non-negative"),
        (b'{"t": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}', "starts at data byte 4, expected 0"),
        (b'{"__metadata__": {"a": 1}}', "'__metadata__' must map strings to strings"),
    ],
)
def test_corrupt_safetensors_header(mem, header, message):
    body = header + b" " * (-len(header) % 8)
    (mem / "keys.safetensors").write_bytes(struct.pack("<Q", len(body)) + body + b"\0" * 8)
    rewrite_manifest(mem)
    with pytest.raises(errors.CorruptFileError, match=message):
        open_memory(mem)


def test_absurd_header_length(mem):
    (mem / "keys.safetensors").write_bytes(struct.pack("<Q", 2**63) + b"{}")
    rewrite_manifest(mem)
    with pytest.raises(errors.CorruptFileError, match="header length field says"):
        open_memory(mem)


def test_garbage_arrow_file(mem):
    (mem / "episodes.arrow").write_bytes(b"ARROW1\0\0" + os.urandom(200) + b"ARROW1")
    rewrite_manifest(mem)
    with pytest.raises(errors.CorruptFileError, match=r"episodes\.arrow: cannot read it as an Arrow IPC file"):
        open_memory(mem)


# ---------------------------------------------------------------- schema
def test_wrong_dtype_at_write(tmp_path):
    data = make_memory_arrays()
    data["transitions"]["reward"] = data["transitions"]["reward"].astype(np.float64)
    with pytest.raises(
        errors.SchemaError, match=r"column 'reward' must be float32 with one value per row, found float64\[\]; convert it"
    ):
        write_memory(tmp_path / "mem", **data)
    assert not (tmp_path / "mem").exists()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["transitions"].pop("action"), "required column 'action' is missing"),
        (lambda d: d["transitions"].pop("next_obs"), "at least one 'obs'"),
        (lambda d: d["transitions"].update(next_obs=d["transitions"]["next_obs"][:, :2].copy()), "'obs' is float32\\[3\\] but 'next_obs' is float32\\[2\\]"),
        (lambda d: d["transitions"].update(step=np.zeros((23, 2), np.int32)), "column 'step' must be int32 with one value per row, found int32\\[2\\]"),
        (lambda d: d["transitions"].update(obs=np.zeros((23, 3), dtype=np.complex64)), "dtype complex64 is not supported"),
        (lambda d: d["transitions"].update(action=[[0.0]] * 23), "expected a numpy.ndarray, got list"),
        (lambda d: d["episodes"].update(success=np.full(4, 2, np.int8)), "'success' row 0 is 2; allowed values are -1"),
        (lambda d: d["episodes"].pop("return"), "required column 'return'"),
        (lambda d: d["tensors"]["keys"].update(bad=np.zeros(2, dtype=object)), r"tensors\['keys'\]\['bad'\]: dtype object cannot be stored"),
    ],
)
def test_schema_errors_at_write(tmp_path, mutate, message):
    data = make_memory_arrays()
    mutate(data)
    with pytest.raises(errors.SchemaError, match=message):
        write_memory(tmp_path / "mem", **data)


def test_wrong_dtype_on_disk(mem):
    path = mem / "transitions.arrow"
    table = read_table(path)
    i = table.schema.get_field_index("reward")
    table = table.set_column(i, "reward", table.column("reward").cast(pa.float64()))
    with pa.ipc.new_file(str(path), table.schema) as writer:
        writer.write_table(table)
    rewrite_manifest(mem)
    with pytest.raises(errors.SchemaError, match=r"transitions\.arrow: column 'reward' must be float32 .* found float64"):
        open_memory(mem)


def test_unsupported_arrow_type_on_disk(mem):
    path = mem / "transitions.arrow"
    table = read_table(path).append_column("note", pa.array(["x"] * 23))
    with pa.ipc.new_file(str(path), table.schema) as writer:
        writer.write_table(table)
    rewrite_manifest(mem)
    with pytest.raises(errors.SchemaError, match="column 'note': expected a bool/int/uint/float primitive.*found type string"):
        open_memory(mem)


@pytest.mark.parametrize("column", ["reward", "obs", "next_obs"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nonfinite_values_rejected_at_write(tmp_path, column, value):
    data = make_memory_arrays()
    data["transitions"][column].reshape(len(data["transitions"]["reward"]), -1)[5, 0] = value
    with pytest.raises(errors.NonFiniteValueError, match=rf"transitions\['{column}'\]: row 5 holds"):
        write_memory(tmp_path / "mem", **data)


def test_nonfinite_return_rejected(tmp_path):
    data = make_memory_arrays()
    data["episodes"]["return"][1] = np.nan
    with pytest.raises(errors.NonFiniteValueError, match=r"episodes\['return'\]: row 1"):
        write_memory(tmp_path / "mem", **data)


def test_float16_overflowing_sum_is_not_a_false_positive(tmp_path):
    data = make_memory_arrays(keys_dtype=np.float16)
    data["tensors"]["keys"]["embeddings"][:] = np.float16(60000)
    write_memory(tmp_path / "mem", **data)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_float16_nonfinite_values_are_found_by_their_bits(tmp_path, value):
    data = make_memory_arrays(keys_dtype=np.float16)
    keys = data["tensors"]["keys"]["embeddings"]
    keys[:] = np.float16(65504)  # the largest finite float16: all exponent bits but one set
    keys[3, 1] = value
    with pytest.raises(errors.NonFiniteValueError, match=r"row 3 holds"):
        write_memory(tmp_path / "mem", **data)
    keys[3, 1] = np.float16(-65504)
    write_memory(tmp_path / "mem", **data)


# ---------------------------------------------------------------- counts
def test_inconsistent_counts_in_manifest(mem):
    rewrite_manifest(mem, lambda d: d["counts"].update(transitions=999))
    with pytest.raises(errors.InconsistentCountsError, match=r"transitions\.arrow: has 23 rows but manifest\.json counts\.transitions says 999"):
        open_memory(mem)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["episodes"]["length"].__setitem__(0, 4), "episode row 1 starts at transition 5, expected 4"),
        (lambda d: d["episodes"]["start"].__setitem__(2, 0), "episode row 2 starts at transition 0"),
        (lambda d: d["episodes"]["length"].__setitem__(3, 99), "has length 99, more than the 23 transitions"),
        (lambda d: d["episodes"]["length"].__setitem__(3, 4), r"cover transitions \[0, 22\) but the transition table has 23"),
        (lambda d: d["episodes"]["episode_id"].__setitem__(1, 77), "transition row 5 has episode_id 10 but the episode row covering it has episode_id 77"),
        (lambda d: d["transitions"].update(reward=d["transitions"]["reward"][:-1]), "column 'reward' has 22 rows but column 'episode_id' has 23"),
        (lambda d: d["tensors"]["keys"].update(embeddings=np.zeros((3, 4), np.float32)), r"shape \[3, 4\] but it is declared row-aligned with the 23 transitions"),
    ],
)
def test_inconsistent_counts_at_write(tmp_path, mutate, message):
    data = make_memory_arrays()
    mutate(data)
    with pytest.raises(errors.InconsistentCountsError, match=message):
        write_memory(tmp_path / "mem", **data)


def test_row_aligned_tensor_mismatch_on_disk(mem):
    rewrite_manifest(mem, lambda d: d["row_aligned"]["keys"].update(embeddings="episodes"))
    with pytest.raises(errors.InconsistentCountsError, match=r"tensor 'embeddings' has shape \[23, 4\].*4 episodes"):
        open_memory(mem)


def test_episode_table_not_tiling_on_disk(mem):
    path = mem / "episodes.arrow"
    table = read_table(path)
    starts = table.column("start").to_numpy().copy()
    starts[1] += 1
    table = table.set_column(table.schema.get_field_index("start"), pa.field("start", pa.int64(), nullable=False), pa.array(starts))
    with pa.ipc.new_file(str(path), table.schema) as writer:
        writer.write_table(table)
    rewrite_manifest(mem)
    with pytest.raises(errors.InconsistentCountsError, match="episode row 1 starts at transition 6, expected 5"):
        open_memory(mem)


# ---------------------------------------------------------------- manifest
def test_non_utf8_manifest(mem):
    (mem / "manifest.json").write_bytes(b'{"format": "hippo-memory\xff\xfe"}')
    with pytest.raises(errors.ManifestError, match=r"manifest\.json: not valid UTF-8 \(byte 24"):
        open_memory(mem)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"format": "hippo-memory",', "not valid JSON"),
        (b"[1, 2, 3]", "expected a JSON object at the top level, found list"),
        (b'{"format": "hippo-memory", "format": "x"}', "key 'format' appears twice"),
        (b'{"format": "hippo-memory", "format_version": NaN}', "non-standard JSON constant NaN"),
        (b'{"format_version": 1}', "field 'format' is missing"),
        (b'{"format": "hippo-memory", "format_version": "1"}', "'format_version' must be an integer, found '1'"),
    ],
)
def test_malformed_manifest(mem, raw, message):
    (mem / "manifest.json").write_bytes(raw)
    with pytest.raises(errors.ManifestError, match=message):
        open_memory(mem)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["counts"].update(transitions="21"), "counts.transitions must be a non-negative integer, found '21'"),
        (lambda d: d.update(producer="me"), "'producer' must be an object with string 'name' and 'version'"),
        (lambda d: d.update(created="yesterday"), "'created' is 'yesterday', not an ISO 8601 timestamp"),
        (lambda d: d.update(compression="gzip"), "'compression' must be null or one of"),
        (lambda d: d.pop("compression"), "field 'compression' is missing"),
        (lambda d: d.update(created="2024-01-01T00:00:00"), "it must carry a UTC offset"),
        (lambda d: d.update(embed_dim=-3), "'embed_dim' must be a non-negative integer or null"),
        (lambda d: d.update(encoder=[1, 2]), "'encoder' must be a JSON object or null, found list"),
        (lambda d: d["files"]["keys.safetensors"].update(sha256="ABC"), r"files\['keys.safetensors'\].sha256 must be 64 lowercase hex"),
        (lambda d: d["files"]["keys.safetensors"].update(bytes=-1), "must be a non-negative integer"),
        (lambda d: d.update(files=[]), "field 'files' must be an object"),
        (lambda d: d["files"].update({"manifest.json": d["files"]["index.faiss"]}), "must not list the manifest itself"),
    ],
)
def test_manifest_field_types(mem, mutate, message):
    rewrite_manifest(mem, mutate)
    with pytest.raises(errors.ManifestError, match=message):
        open_memory(mem)


def test_unserializable_manifest_section_at_write(tmp_path):
    data = make_memory_arrays()
    data["manifest"]["store"] = {"fn": object()}
    with pytest.raises(errors.ManifestError, match=r"manifest\['store'\]: cannot be stored as JSON"):
        write_memory(tmp_path / "mem", **data)
    data["manifest"]["store"] = {"x": float("nan")}
    with pytest.raises(errors.ManifestError, match="finite numbers"):
        write_memory(tmp_path / "mem", **data)


# ---------------------------------------------------------------- paths
@pytest.mark.parametrize(
    "name", ["../evil.bin", "a/../../evil.bin", "/etc/passwd", "C:evil", "a\\b", "./x", "a//b", ".hidden", ""]
)
def test_unsafe_names_in_manifest(mem, name):
    def add(d: dict) -> None:
        d["files"][name] = {"sha256": "0" * 64, "bytes": 0}

    rewrite_manifest(mem, add, rehash=False)
    with pytest.raises(errors.UnsafePathError):
        open_memory(mem, verify="none")


def test_symlink_escaping_the_directory(tmp_path, mem):
    outside = tmp_path / "secret.txt"
    outside.write_bytes(b"top secret")
    (mem / "index.faiss").unlink()
    (mem / "index.faiss").symlink_to(outside)
    rewrite_manifest(mem)
    with pytest.raises(errors.UnsafePathError, match=r"index\.faiss resolves to .*secret\.txt, outside the memory directory"):
        open_memory(mem)


def test_symlink_inside_the_directory_is_fine(mem):
    (mem / "real.bin").write_bytes(b"data")
    (mem / "link.bin").symlink_to("real.bin")

    def add(d: dict) -> None:
        for name in ("real.bin", "link.bin"):
            d["files"][name] = {"sha256": hashlib.sha256(b"data").hexdigest(), "bytes": 4}

    rewrite_manifest(mem, add)
    assert open_memory(mem, verify="full").extra_file("link.bin") == b"data"


def test_unsafe_extra_file_names_at_write(tmp_path):
    data = make_memory_arrays()
    for name in ("../x", "/abs", "manifest.json", "transitions.arrow", "keys.safetensors"):
        with pytest.raises(errors.UnsafePathError):
            write_memory(tmp_path / "mem", extra_files={name: b"x"}, **data)


def test_bad_arguments(tmp_path):
    data = make_memory_arrays()
    with pytest.raises(hippo_format.FormatError, match="compression: expected None or one of"):
        write_memory(tmp_path / "mem", compression="gzip", **data)
    with pytest.raises(ValueError, match="verify must be one of"):
        open_memory(tmp_path, verify="sometimes")
