"""Reading memories from strangers: bounded allocations, regular files only, typed errors (SPEC.md section 12)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import hippo_format
from hippo_format import LimitExceededError, LoadLimits, check_conformance, errors, open_memory
from hippo_format.limits import json_depth, numpy_dtype_from_name

from .memgen import rewrite_manifest, write_small_memory


@pytest.fixture
def mem(tmp_path: Path) -> Path:
    return write_small_memory(tmp_path / "mem")


def _codes(problems: list[str]) -> set[str]:
    return {p[1 : p.index("]")] for p in problems}


def test_json_depth_prescan_is_exact_and_ignores_strings():
    assert json_depth(b"1") == 0 and json_depth(b"[]") == 1 and json_depth(b'{"a": [[1], {"b": []}]}') == 4
    assert json_depth(json.dumps({"s": "[[[[{{{{", "t": ['\\"[[', "\\\\"]}).encode()) == 2
    assert json_depth(b"[" * 5000 + b"]" * 5000) == 5000


def test_deeply_nested_manifest_is_refused_before_parsing(mem):
    rewrite_manifest(mem, lambda d: d.update(store={"deep": json.loads("[" * 200 + "]" * 200)}))
    with pytest.raises(LimitExceededError, match="nested more than 64 levels"):
        open_memory(mem, verify="full")
    assert "L1" in _codes(check_conformance(mem))
    # the limit is configurable, and then the memory opens (and its manifest copies without RecursionError)
    reader = open_memory(mem, verify="full", limits=LoadLimits(max_json_depth=1000))
    assert len(json.dumps(reader.manifest)) > 400


def test_fifo_manifest_does_not_hang(mem):
    (mem / "manifest.json").unlink()
    os.mkfifo(mem / "manifest.json")
    outcome: list[BaseException] = []
    thread = threading.Thread(target=lambda: _catch(outcome, lambda: open_memory(mem)), daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "open_memory hung on a FIFO"
    assert isinstance(outcome[0], errors.ManifestError) and "FIFO" in str(outcome[0])
    assert _codes(check_conformance(mem)) == {"L2"}


def test_fifo_data_file_is_refused(mem):
    (mem / "index.faiss").unlink()
    os.mkfifo(mem / "index.faiss")
    with pytest.raises(errors.CorruptFileError, match="expected a regular file, found a FIFO"):
        open_memory(mem)
    assert "L2" in _codes(check_conformance(mem))


def _catch(out: list[BaseException], fn) -> None:
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001 - collected for the assertion
        out.append(exc)


def test_file_name_with_trailing_newline_is_refused(mem):
    (mem / "index.faiss").rename(mem / "index.faiss\n")

    def rename(doc):
        doc["files"]["index.faiss\n"] = doc["files"].pop("index.faiss")

    rewrite_manifest(mem, rename, rehash=False)
    with pytest.raises(errors.UnsafePathError, match="index.faiss"):
        open_memory(mem)


def test_hub_cache_snapshot_symlinks_to_blobs_are_followed(tmp_path):
    """huggingface_hub's cache: snapshots/<rev>/<file> are relative links to ../../blobs/<hash>."""
    source = write_small_memory(tmp_path / "src")
    repo = tmp_path / "hub" / "models--alice--mem"
    snapshot = repo / "snapshots" / ("a" * 40)
    (repo / "blobs").mkdir(parents=True)
    for file in sorted(source.rglob("*")):
        if file.is_file():
            rel = file.relative_to(source)
            blob = repo / "blobs" / f"blob{len(list((repo / 'blobs').iterdir()))}"
            blob.write_bytes(file.read_bytes())
            link = snapshot / rel
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(blob, link.parent))
    reader = open_memory(snapshot, verify="full")
    assert reader.num_transitions == open_memory(source).num_transitions
    reader.load_all()
    assert check_conformance(snapshot) == []
    # but a link out of the blobs directory is still refused
    outside = tmp_path / "secret.txt"
    outside.write_bytes((snapshot / "index.faiss").read_bytes())
    (snapshot / "index.faiss").unlink()
    (snapshot / "index.faiss").symlink_to(outside)
    with pytest.raises(errors.UnsafePathError, match="outside the memory directory"):
        open_memory(snapshot)


def test_crafted_allocation_request_is_bounded_by_the_files(mem):
    """What a hippogym loader does with store.config.capacity: ask the reader before allocating."""
    rewrite_manifest(mem, lambda d: d["store"].update(capacity=300_000_000))
    reader = open_memory(mem, verify="full")
    capacity = reader.manifest["store"]["capacity"]
    with pytest.raises(LimitExceededError, match=r"store\.capacity: asks for 38,400,000,000 bytes") as exc:
        reader.check_allocation("store.capacity", capacity * 128)
    assert exc.value.field == "store.capacity"
    reader.check_allocation("store.capacity", 10_000 * 128)  # a sane capacity is fine
    # charges add up: many fields cannot each take the whole budget
    half = reader.budget.remaining // 2 + 1
    reader.check_allocation("a", half)
    with pytest.raises(LimitExceededError, match="already granted"):
        reader.check_allocation("b", half)
    # allocations mirroring a file are bounded by that file (encoder widths vs encoder.safetensors)
    weights = reader.tensor_nbytes("encoder")
    reader.check_allocation("encoder.hidden", weights, backed_by="encoder")
    with pytest.raises(LimitExceededError, match="the file that backs it holds"):
        reader.check_allocation("encoder.hidden", 2 * 20000 * 20000 * 4, backed_by="encoder")
    # a trusted source can raise the limits
    big = open_memory(mem, limits=LoadLimits(allocation_floor_bytes=64 << 30))
    big.check_allocation("store.capacity", capacity * 128)


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"type": "Box", "dtype": "float32", "shape": [30000, 30000], "low": 0, "high": 1}, "900,000,000 elements"),
        ({"type": "MultiBinary", "n": [100000, 100000]}, "10,000,000,000 elements"),
        ({"type": "Box", "dtype": "float32", "shape": [1] * 40, "low": 0, "high": 1}, "40 dimensions"),
    ],
)
def test_huge_spaces_are_refused_before_building(mem, space, message):
    pytest.importorskip("gymnasium")
    with pytest.raises(LimitExceededError, match=message):
        hippo_format.space_from_json(space)
    rewrite_manifest(mem, lambda d: d["spaces"].update(observation_space=space))
    assert "L5" in _codes(check_conformance(mem))


def test_nested_spaces_depth_is_limited():
    pytest.importorskip("gymnasium")
    space: dict = {"type": "Discrete", "n": 2}
    for _ in range(70):
        space = {"type": "Tuple", "spaces": [space]}
    with pytest.raises(LimitExceededError, match="nested more than 64"):
        hippo_format.space_from_json(space)


def test_schema_claiming_more_than_the_buffers_hold_is_refused(mem, monkeypatch):
    """Rows x row bytes of every column must fit in the buffers the message headers declare."""
    import dataclasses

    import hippo_format._arrow as arrow

    real = arrow.scan_ipc_file

    def shrunk(data, where):
        layout = real(data, where)
        return dataclasses.replace(layout, decoded_bytes=layout.decoded_bytes // 10)

    monkeypatch.setattr(arrow, "scan_ipc_file", shrunk)
    with pytest.raises(
        errors.TruncatedFileError, match=r"rows of the declared columns need [\d,]+ bytes, but the file's"
    ):
        open_memory(mem)


def test_row_size_limit(mem):
    with pytest.raises(LimitExceededError, match="column 'obs.image' rows are uint8\\[3, 8, 8\\]"):
        open_memory(write_small_memory(mem.parent / "img", image=True), limits=LoadLimits(max_row_bytes=100))


def test_compressed_table_declaring_a_huge_decoded_size_is_refused(tmp_path):
    path = write_small_memory(tmp_path / "mem", compression="zstd")
    limits = LoadLimits(allocation_floor_bytes=1, max_compression_ratio=0.1)
    with pytest.raises(LimitExceededError, match="compressed buffers declare"):
        open_memory(path, limits=limits)
    assert "L3" in _codes(check_conformance(path, limits=limits))
    open_memory(path).load_all()  # the defaults accept it


def test_compressed_batches_in_a_table_declared_uncompressed_are_refused(tmp_path):
    plain = write_small_memory(tmp_path / "plain")
    zstd = write_small_memory(tmp_path / "zstd", compression="zstd")
    (plain / "transitions.arrow").write_bytes((zstd / "transitions.arrow").read_bytes())
    rewrite_manifest(plain)
    with pytest.raises(
        errors.CorruptFileError, match="compressed record batches but the manifest declares compression null"
    ):
        open_memory(plain, verify="full")
    assert "A2" in _codes(check_conformance(plain))


@pytest.mark.parametrize("name", ["float32", "np.float32", "torch.float32", "float", "long", "bool", "uint8"])
def test_dtype_allow_list_accepts(name):
    assert numpy_dtype_from_name(name, "store.action_dtype").kind in "fiub"


@pytest.mark.parametrize("name", ["load", "torch.load", "float32\n", "object", "<f4", 3, None, "complex64"])
def test_dtype_allow_list_refuses(name):
    with pytest.raises(errors.SchemaError, match="store.action_dtype: expected a dtype name") as exc:
        numpy_dtype_from_name(name, "store.action_dtype")
    assert exc.value.field == "store.action_dtype"


def test_torch_dtype_allow_list():
    torch = pytest.importorskip("torch")
    from hippo_format.torch import torch_dtype_from_name

    assert torch_dtype_from_name("torch.bfloat16", "f") is torch.bfloat16
    assert torch_dtype_from_name("float32", "f") is torch.float32
    with pytest.raises(errors.SchemaError, match="got 'load'"):
        torch_dtype_from_name("load", "store.config.action_dtype")


@pytest.mark.parametrize(
    ("column", "where"), [("reward", "transitions.arrow: column 'reward'"), ("obs", "column 'obs'")]
)
def test_nan_is_refused_on_load_naming_the_column(tmp_path, column, where):
    from .memgen import make_memory_arrays

    data = make_memory_arrays()
    path = tmp_path / "mem"
    hippo_format.write_memory(path, **data)
    table_path = path / "transitions.arrow"
    table = pa.ipc.open_file(pa.BufferReader(table_path.read_bytes())).read_all()
    values = np.array(data["transitions"][column])
    values.reshape(-1)[3] = np.nan
    index = table.schema.get_field_index(column)
    field = table.schema.field(index)
    array = (
        pa.array(values)
        if values.ndim == 1
        else pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])
    )
    table = table.set_column(index, field, array)
    with pa.ipc.new_file(str(table_path), table.schema) as writer:
        writer.write_table(table)
    rewrite_manifest(path)
    reader = open_memory(path, verify="full")  # opening reads no data
    with pytest.raises(errors.NonFiniteValueError, match=where) as exc:
        reader.load_all()
    assert column in exc.value.field
    with pytest.raises(errors.NonFiniteValueError, match=where):
        reader.column(column)
    assert np.isnan(reader.column(column, check_finite=False)).any()
    assert np.isnan(open_memory(path, check_finite=False).load_all()["transitions"][column]).any()


def test_nan_keys_are_refused_on_load(tmp_path):
    from .memgen import make_memory_arrays

    data = make_memory_arrays()
    data["tensors"]["keys"]["embeddings"][2, 1] = np.nan
    path = hippo_format.write_memory(tmp_path / "mem", allow_nonfinite_tensors=True, **data)
    with pytest.raises(errors.NonFiniteValueError, match=r"keys\.safetensors: tensor 'embeddings': row 2"):
        open_memory(path).read_tensors("keys")
    with pytest.raises(errors.NonFiniteValueError, match="embeddings"):
        open_memory(path).load_all()


def test_writer_refuses_sections_nested_too_deep_for_readers(tmp_path):
    from .memgen import make_memory_arrays

    data = make_memory_arrays()
    data["manifest"]["store"] = {"deep": json.loads("[" * 100 + "]" * 100)}
    with pytest.raises(errors.ManifestError, match=r"manifest\['store'\]: nested more than"):
        hippo_format.write_memory(tmp_path / "mem", **data)


def test_load_limits_are_validated():
    with pytest.raises(ValueError, match="max_json_depth"):
        LoadLimits(max_json_depth=0)
    with pytest.raises(TypeError, match="LoadLimits"):
        open_memory(".", limits={"max_json_depth": 3})
