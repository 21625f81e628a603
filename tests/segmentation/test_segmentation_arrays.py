"""Input conversion and checks (hippogym.segmentation.arrays), and the old import paths of its names."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hippogym.segmentation.base as base
from hippogym.errors import ValidationError
from hippogym.segmentation import arrays
from hippogym.segmentation.arrays import (
    InfoRows,
    add_row_axis,
    as_flags,
    check_info_keys,
    check_stream,
    flatten_observation,
    leaves,
    to_numpy,
    vector_info_row,
)


@pytest.mark.parametrize("name", ["SUCCESS_KEY", "ArrayObservation", "flatten_observation", "to_numpy"])
def test_names_keep_their_old_import_path(name):
    assert getattr(base, name) is getattr(arrays, name)
    assert name in base.__all__


def test_to_numpy_converts_tensors_and_rejects_non_numeric_values():
    out = to_numpy(torch.arange(3), "x")
    assert isinstance(out, np.ndarray) and out.tolist() == [0, 1, 2]
    assert to_numpy([[1.5, 2.0]], "x").shape == (1, 2)
    for bad in ("left", np.array(["a"]), [object()]):
        with pytest.raises(ValidationError) as info:
            to_numpy(bad, "action")
        assert info.value.field == "action"


def test_flatten_observation_joins_nested_keys_sorted():
    flat = flatten_observation({"b": np.zeros(2), "a": {"y": 1.0, "x": [1, 2]}}, "obs")
    assert list(flat) == ["a.x", "a.y", "b"]
    assert flat["a.x"].tolist() == [1, 2] and flat["a.y"].shape == ()
    assert isinstance(flatten_observation(np.ones(3), "obs"), np.ndarray)


@pytest.mark.parametrize(
    ("value", "field", "fragment"),
    [
        ({}, "obs", "non-empty dict"),
        ({"a": {"b": 1.0}, "a.b": 2.0}, "obs keys", "unique"),
        ({"a/b": 1.0}, "obs keys", "without '/'"),
        ({"a": "text"}, "obs['a']", "numeric"),
    ],
)
def test_flatten_observation_rejects_bad_dicts(value, field, fragment):
    with pytest.raises(ValidationError, match=fragment) as info:
        flatten_observation(value, "obs")
    assert info.value.field == field


def test_info_rows_over_lists_and_vector_info_dicts():
    rows = InfoRows([{"a": 1}, None], 2)
    assert len(rows) == 2 and rows[0] == {"a": 1} and rows[1] is None
    vector = {
        "a": np.array([1, 2]), "_a": np.array([True, False]), "b": np.array([3, 4]), "nested": {"c": np.array([5, 6])}
    }
    rows = InfoRows(vector, 2)
    assert rows[0] == {"a": 1, "b": 3, "nested": {"c": 5}}
    assert rows[1] == {"b": 4, "nested": {"c": 6}}  # the mask hides `a` in row 1
    assert vector_info_row(vector, 1) == rows[1]
    assert InfoRows(None, 3)[2] is None


def test_checks_name_the_field():
    assert check_info_keys(["x", "y", "x"]) == ("x", "y")
    for bad, fragment in (("xy", "sequence"), ([""], "non-empty")):
        with pytest.raises(ValidationError, match=fragment) as info:
            check_info_keys(bad)
        assert info.value.field == "info_keys"
    assert check_stream(np.int64(3)) == 3
    for bad in (-1, True, 1.0):
        with pytest.raises(ValidationError) as info:
            check_stream(bad)
        assert info.value.field == "stream"
    assert as_flags([1, 0], "terminated", 2).tolist() == [True, False]
    with pytest.raises(ValidationError, match="3 flags") as info:
        as_flags([1, 0], "terminated", 3)
    assert info.value.field == "terminated"


def test_row_axis_and_leaves():
    assert add_row_axis(np.zeros(3)).shape == (1, 3)
    assert {k: v.shape for k, v in add_row_axis({"a": np.zeros(2)}).items()} == {"a": (1, 2)}
    names = [name for name, _ in leaves({"a": np.zeros(1), "b": np.zeros(1)}, "next_obs")]
    assert names == ["next_obs.a", "next_obs.b"]
    assert [name for name, _ in leaves(np.zeros(1), "obs")] == ["obs"]
