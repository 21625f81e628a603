"""JSON round trip of gymnasium spaces."""

from __future__ import annotations

import json
from collections import OrderedDict

import numpy as np
import pytest
from gymnasium import spaces

import hippo_format
from hippo_format import space_from_json, space_to_json

SPACES = [
    spaces.Box(low=-1.0, high=1.0, shape=(3,), dtype=np.float32),
    spaces.Box(low=np.array([-np.inf, 0.0, -0.0]), high=np.array([np.inf, 1e30, 2.5]), dtype=np.float64),
    spaces.Box(low=0, high=255, shape=(3, 8, 8), dtype=np.uint8),
    spaces.Box(low=np.array([[1, 2], [3, 4]], dtype=np.int32), high=np.int32(9), dtype=np.int32),
    spaces.Box(low=0.0, high=1.0, shape=(), dtype=np.float16),
    spaces.Discrete(5),
    spaces.Discrete(3, start=-1),
    spaces.MultiDiscrete([3, 4, 5]),
    spaces.MultiDiscrete(np.array([[2, 3], [4, 5]]), start=np.array([[0, 1], [-1, 2]])),
    spaces.MultiBinary(6),
    spaces.MultiBinary([2, 3]),
    spaces.Dict(OrderedDict([("state", spaces.Box(-1, 1, (4,), np.float32)), ("image", spaces.Box(0, 255, (3, 8, 8), np.uint8))])),
    spaces.Tuple([spaces.Discrete(2), spaces.Dict({"x": spaces.MultiBinary(3)})]),
]


def _same(a, b) -> None:
    assert type(a) is type(b)
    if isinstance(a, spaces.Box):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.low.tobytes() == b.low.tobytes() and a.high.tobytes() == b.high.tobytes()
    elif isinstance(a, spaces.Dict):
        assert list(a.spaces) == list(b.spaces)
        for key in a.spaces:
            _same(a[key], b[key])
    elif isinstance(a, spaces.Tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=False):
            _same(x, y)
    else:
        assert a == b
        if isinstance(a, spaces.MultiDiscrete):
            assert a.dtype == b.dtype and (a.start == b.start).all()


@pytest.mark.parametrize("space", SPACES, ids=lambda s: type(s).__name__)
def test_round_trip(space):
    data = space_to_json(space)
    text = json.dumps(data, allow_nan=False)  # strict JSON, no NaN/Infinity tokens
    _same(space, space_from_json(json.loads(text)))


def test_uniform_bounds_are_scalars_and_infinities_strings():
    data = space_to_json(spaces.Box(-np.inf, np.inf, (2, 2), np.float32))
    assert data == {"type": "Box", "dtype": "float32", "shape": [2, 2], "low": "-inf", "high": "inf"}
    mixed = space_to_json(spaces.Box(np.array([0.0, 1.0]), np.array([1.0, np.inf]), dtype=np.float64))
    assert mixed["low"] == [0.0, 1.0] and mixed["high"] == [1.0, "inf"]


def test_unsupported_space():
    with pytest.raises(hippo_format.UnsupportedSpaceError, match=r"space type Text \(gymnasium.spaces.text\) has no JSON form"):
        space_to_json(spaces.Text(5))
    with pytest.raises(hippo_format.UnsupportedSpaceError, match="'Graph' is not a supported space type"):
        space_from_json({"type": "Graph"})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2], "expected a JSON object"),
        ({"type": "Box", "dtype": "object", "shape": [1], "low": 0, "high": 1}, r"space.dtype: expected one of"),
        ({"type": "Box", "dtype": "float32", "shape": [2], "low": [0.0], "high": 1}, r"space.low: nested list has shape \[1\], expected \[2\]"),
        ({"type": "Box", "dtype": "float32", "shape": [2], "low": "minus", "high": 1}, "expected a number or one of"),
        ({"type": "Discrete", "n": "3"}, r"space.n: expected an integer"),
        ({"type": "Dict", "spaces": [1]}, "expected an object of name -> space"),
        ({"type": "Tuple", "spaces": [{"type": "Nope"}]}, r"space.spaces\[0\].type: 'Nope'"),
        ({"type": "Discrete", "n": -3}, "gymnasium rejected the description"),
    ],
)
def test_malformed_json(data, message):
    with pytest.raises(hippo_format.SpaceError, match=message):
        space_from_json(data)
