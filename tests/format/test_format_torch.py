"""The torch surface: conversions and plain safetensors state dicts (bfloat16 included)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import hippo_format
from hippo_format import open_memory, write_memory
from hippo_format import torch as htorch

from .memgen import make_memory_arrays


def test_to_and_from_torch():
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([True, False])}
    tensors = htorch.to_torch(arrays)
    assert tensors["a"].dtype == torch.float32 and tensors["b"].dtype == torch.bool
    tensors["a"][0, 0] = 42  # shared memory for writable arrays
    assert arrays["a"][0, 0] == 42
    back = htorch.from_torch({"x": torch.ones(2, 2, requires_grad=True) * 2})
    assert back["x"].dtype == np.float32 and (back["x"] == 2).all()
    with pytest.raises(hippo_format.SchemaError, match="bfloat16 has no numpy equivalent"):
        htorch.from_torch({"w": torch.zeros(2, dtype=torch.bfloat16)})


def test_read_only_views_are_copied_for_torch(tmp_path):
    path = write_memory(tmp_path / "mem", **make_memory_arrays())
    view = open_memory(path).column("obs")
    tensor = htorch.to_torch({"obs": view})["obs"]
    tensor += 1  # must not fail, must not touch the file
    assert np.array_equal(open_memory(path).column("obs"), view)


def test_state_dict_round_trip_with_bfloat16(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["half"] = torch.randn(5).to(torch.bfloat16)
    state["ints"] = torch.arange(4, dtype=torch.int64)
    state["flag"] = torch.tensor([True, False])
    path = htorch.save_state_dict(tmp_path / "encoder.safetensors", state, metadata={"arch": "mlp"})
    loaded = htorch.load_state_dict(path)
    assert set(loaded) == set(state)
    for name, tensor in state.items():
        assert loaded[name].dtype == tensor.dtype and torch.equal(loaded[name], tensor), name
    reference = load_file(str(path))  # the reference reader agrees
    assert torch.equal(reference["half"], state["half"])
    model.load_state_dict({k: loaded[k] for k in model.state_dict()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["encoder.safetensors"]


def test_state_dict_rejects_nested_values(tmp_path):
    with pytest.raises(hippo_format.SchemaError, match="only flat name -> tensor dicts"):
        htorch.save_state_dict(tmp_path / "x.safetensors", {"state": {"step": 1}})
    assert list(tmp_path.iterdir()) == []


def test_load_state_dict_validates(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage}       ")
    with pytest.raises(hippo_format.CorruptFileError):
        htorch.load_state_dict(bad)
    with pytest.raises(hippo_format.MissingFileError):
        htorch.load_state_dict(tmp_path / "none.safetensors")


def test_read_tensors_from_memory(tmp_path):
    data = make_memory_arrays()
    path = write_memory(tmp_path / "mem", **data)
    tensors = htorch.read_tensors(open_memory(path), "encoder")
    assert torch.equal(tensors["online.weight"], torch.from_numpy(data["tensors"]["encoder"]["online.weight"]))
