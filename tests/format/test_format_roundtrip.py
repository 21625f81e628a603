"""Round trips: what goes in through write_memory comes out bit for bit."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from safetensors.numpy import load_file

import hippo_format
from hippo_format import open_memory, write_memory

from .memgen import bit_equal, make_memory_arrays, write_small_memory


def _assert_same_memory(reader: hippo_format.MemoryReader, data: dict) -> None:
    assert reader.num_transitions == len(data["transitions"]["reward"])
    assert reader.num_episodes == len(data["episodes"]["start"])
    assert reader.column_names == list(data["transitions"])
    for name, values in data["transitions"].items():
        assert bit_equal(reader.column(name), values), name
    episodes = reader.episodes()
    for name, values in data["episodes"].items():
        assert bit_equal(episodes[name], values), name
    for stem, tensors in data["tensors"].items():
        assert reader.tensor_names(stem) and set(reader.tensor_names(stem)) == set(tensors)
        for name, values in tensors.items():
            assert bit_equal(reader.tensor(stem, name), values), (stem, name)
    loaded = reader.load_all()
    for name, values in data["transitions"].items():
        assert bit_equal(loaded["transitions"][name], values), name
    for name, values in data["episodes"].items():
        assert bit_equal(loaded["episodes"][name], values), name
    for stem, tensors in data["tensors"].items():
        for name, values in tensors.items():
            assert bit_equal(loaded["tensors"][stem][name], values), (stem, name)


@pytest.mark.parametrize("keys_dtype", [np.float32, np.float16])
def test_round_trip_bit_exact_with_dict_and_image_obs(tmp_path, keys_dtype):
    data = make_memory_arrays(episodes=6, steps=7, image=True, keys_dtype=keys_dtype, seed=3)
    # special float bit patterns must survive
    data["transitions"]["reward"][:3] = [-0.0, np.finfo(np.float32).tiny / 2, np.finfo(np.float32).max]
    data["episodes"]["cost"] = np.linspace(0, 1, 6)  # extra per-episode column
    data["transitions"]["info.flags"] = np.ones((len(data["transitions"]["reward"]), 4), dtype=bool)
    path = write_memory(tmp_path / "mem", extra_files={"index.faiss": b"\x00\x01index"}, **data)
    with open_memory(path, verify="full") as reader:
        _assert_same_memory(reader, data)
        assert reader.column_spec("obs.image") == (np.dtype(np.uint8), (3, 8, 8))
        assert reader.extra_file("index.faiss") == b"\x00\x01index"
        assert reader.extra_file_names == ["index.faiss"]
        manifest = reader.manifest
    assert manifest["format"] == "hippo-memory" and manifest["format_version"] == 1
    assert manifest["counts"] == {"transitions": reader.num_transitions, "episodes": 6}
    assert manifest["encoder"] == data["manifest"]["encoder"]
    assert manifest["spaces"] == data["manifest"]["spaces"]


def test_arrow_types_follow_the_spec(tmp_path):
    path = write_small_memory(tmp_path / "mem", image=True)
    schema = open_memory(path).transitions_table.schema
    assert schema.field("reward").type == pa.float32()
    assert schema.field("terminated").type == pa.bool_()
    assert schema.field("obs.state").type == pa.list_(pa.float32(), 3)
    image_type = schema.field("obs.image").type
    assert image_type.extension_name == "arrow.fixed_shape_tensor"
    assert list(image_type.shape) == [3, 8, 8] and image_type.value_type == pa.uint8()


def test_files_are_readable_by_the_reference_libraries(tmp_path):
    data = make_memory_arrays(episodes=3, steps=4)
    path = write_memory(tmp_path / "mem", **data)
    keys = load_file(str(path / "keys.safetensors"))
    for name, values in data["tensors"]["keys"].items():
        assert bit_equal(keys[name], values)
    with pa.memory_map(str(path / "transitions.arrow")) as source:
        table = pa.ipc.open_file(source).read_all()
    assert bit_equal(table.column("reward").to_numpy(), data["transitions"]["reward"])
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    assert set(manifest["files"]) == {"transitions.arrow", "episodes.arrow", "keys.safetensors", "encoder.safetensors"}


@pytest.mark.parametrize(
    ("compression", "batch_rows"), [("zstd", None), ("lz4", None), ("zstd", 7), (None, 5)]
)
def test_compression_and_batching_round_trip(tmp_path, compression, batch_rows):
    data = make_memory_arrays(episodes=5, steps=6, image=True)
    path = write_memory(tmp_path / "mem", compression=compression, batch_rows=batch_rows, **data)
    with open_memory(path, verify="full") as reader:
        assert reader.compression == compression
        _assert_same_memory(reader, data)
        reader.verify(full=True)
    assert hippo_format.check_conformance(path) == []


def test_compression_shrinks_compressible_data(tmp_path):
    data = make_memory_arrays(episodes=20, steps=50)
    data["transitions"]["obs"] = np.zeros_like(data["transitions"]["obs"])
    plain = write_memory(tmp_path / "plain", **data)
    packed = write_memory(tmp_path / "packed", compression="zstd", **data)
    assert (packed / "transitions.arrow").stat().st_size < (plain / "transitions.arrow").stat().st_size


def test_empty_memory(tmp_path):
    data = make_memory_arrays(episodes=0)
    path = write_memory(tmp_path / "mem", **data)
    with open_memory(path, verify="full") as reader:
        assert reader.num_transitions == 0 and reader.num_episodes == 0
        assert reader.column("obs").shape == (0, 3)
        assert reader.tensor("keys", "embeddings").shape == (0, 4)
        reader.load_all()
        reader.verify()
    assert hippo_format.check_conformance(path) == []


def test_big_endian_and_non_contiguous_inputs_are_normalized(tmp_path):
    data = make_memory_arrays(episodes=2, steps=3)
    obs = data["transitions"]["obs"]
    data["transitions"]["obs"] = obs.astype(">f4")
    wide = np.zeros((obs.shape[0], obs.shape[1] * 2), dtype=np.float32)
    wide[:, ::2] = data["transitions"]["next_obs"]
    data["transitions"]["next_obs"] = wide[:, ::2]
    data["tensors"]["keys"]["embeddings"] = data["tensors"]["keys"]["embeddings"].astype(">f4")
    path = write_memory(tmp_path / "mem", **data)
    reader = open_memory(path)
    assert reader.column("obs").dtype == np.float32
    np.testing.assert_array_equal(reader.column("obs"), obs)
    np.testing.assert_array_equal(reader.column("next_obs"), wide[:, ::2])
    assert reader.tensor("keys", "embeddings").dtype == np.dtype("<f4")


def test_resave_replaces_and_cleans_stale_leftovers(tmp_path):
    target = tmp_path / "mem"
    write_small_memory(target, seed=1)
    stale_tmp = tmp_path / ".mem.tmp-deadbeef"
    stale_tmp.mkdir()
    (stale_tmp / "manifest.json").write_text("{broken")
    stale_old = tmp_path / ".mem.old-deadbeef"
    stale_old.mkdir()
    other = tmp_path / ".other.tmp-1234"
    other.mkdir()
    # readers are not confused by the leftovers
    assert open_memory(target).manifest["store"] == {"seed": 1}
    write_small_memory(target, seed=2)
    assert open_memory(target, verify="full").manifest["store"] == {"seed": 2}
    assert not stale_tmp.exists() and not stale_old.exists()
    assert other.exists(), "leftovers of other memories are not ours to delete"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".mem.lock", ".other.tmp-1234", "mem"]


def test_manifest_from_reader_can_be_saved_back(tmp_path):
    data = make_memory_arrays()
    first = write_memory(tmp_path / "a", **data)
    manifest = open_memory(first).manifest
    data["manifest"] = manifest
    second = write_memory(tmp_path / "b", producer=("hippogym", "9.9"), **data)
    again = open_memory(second).manifest
    assert again["producer"] == {"name": "hippogym", "version": "9.9"}
    assert again["encoder"] == manifest["encoder"]
    assert again["files"] == manifest["files"]


def test_numpy_values_in_manifest_are_converted(tmp_path):
    data = make_memory_arrays()
    data["manifest"]["embed_dim"] = np.int64(4)
    data["manifest"]["store"] = {"scale": np.float32(0.5), "ids": np.arange(3)}
    path = write_memory(tmp_path / "mem", **data)
    manifest = open_memory(path).manifest
    assert manifest["embed_dim"] == 4
    assert manifest["store"] == {"scale": 0.5, "ids": [0, 1, 2]}


def test_refuses_to_replace_a_directory_that_is_not_a_memory(tmp_path):
    target = tmp_path / "precious"
    target.mkdir()
    (target / "thesis.tex").write_text("do not delete")
    with pytest.raises(hippo_format.TargetExistsError) as info:
        write_small_memory(target)
    assert isinstance(info.value, FileExistsError)
    assert (target / "thesis.tex").read_text() == "do not delete"
    (tmp_path / "file").write_text("x")
    with pytest.raises(hippo_format.TargetExistsError):
        write_small_memory(tmp_path / "file")


def test_empty_existing_directory_is_replaced(tmp_path):
    target = tmp_path / "mem"
    target.mkdir()
    write_small_memory(target)
    assert open_memory(target).num_episodes == 4


def test_nested_extra_files(tmp_path):
    path = write_small_memory(tmp_path / "mem", extra_files={"faiss/index.faiss": b"abc", "notes.txt": b"hi"})
    reader = open_memory(path, verify="full")
    assert reader.extra_file_names == ["faiss/index.faiss", "notes.txt"]
    assert reader.extra_file("faiss/index.faiss") == b"abc"
    assert hippo_format.check_conformance(path) == []


def test_nonfinite_tensors_allowed_on_request(tmp_path):
    data = make_memory_arrays()
    data["tensors"]["keys"]["priorities"][0] = np.inf
    with pytest.raises(hippo_format.NonFiniteValueError, match=r"tensors\['keys'\]\['priorities'\]"):
        write_memory(tmp_path / "mem", **data)
    path = write_memory(tmp_path / "mem", allow_nonfinite_tensors=True, **data)
    # reading refuses them by default, and reads them when asked to
    with pytest.raises(hippo_format.NonFiniteValueError, match=r"keys\.safetensors: tensor 'priorities': row 0"):
        open_memory(path).tensor("keys", "priorities")
    assert np.isinf(open_memory(path, check_finite=False).tensor("keys", "priorities")[0])
    assert np.isinf(open_memory(path).tensor("keys", "priorities", check_finite=False)[0])
