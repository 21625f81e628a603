"""ChangePointSegmenter: cuts after anomalous observation jumps and at max_length."""

from __future__ import annotations

import numpy as np
import pytest

from hippogym import ChangePointSegmenter, Episode
from hippogym.errors import ValidationError


def _walk(rng, steps, jumps):
    x = np.cumsum(rng.normal(0, 0.1, size=(steps + 1, 3)), axis=0)
    for t in jumps:
        x[t + 1 :] += 25.0  # the step t -> t + 1 jumps
    return x.astype(np.float32)


def test_streaming_cuts_after_each_jump_step():
    rng = np.random.default_rng(0)
    x = _walk(rng, 60, jumps=[20, 41])
    seg = ChangePointSegmenter(threshold=3.0, min_length=5, max_length=1000)
    eps = []
    for t in range(60):
        eps += seg.add(x[t], 0, 0.0, t == 59, False, x[t + 1])
    assert [(e.start_step, len(e)) for e in eps] == [(0, 21), (21, 21), (42, 18)]


def test_max_length_and_min_length_bound_segments():
    rng = np.random.default_rng(1)
    x = _walk(rng, 30, jumps=[2])
    seg = ChangePointSegmenter(threshold=3.0, min_length=4, max_length=10)
    eps = []
    for t in range(30):
        eps += seg.add(x[t], 0, 0.0, t == 29, False, x[t + 1])
    # the jump at step 2 comes before min_length (and before 2 jumps were seen): no early cut
    assert [len(e) for e in eps] == [10, 10, 10]
    with pytest.raises(ValidationError, match="max_length"):
        ChangePointSegmenter(min_length=8, max_length=4)
    with pytest.raises(ValidationError, match="threshold"):
        ChangePointSegmenter(threshold=0)


def test_offline_uses_the_episode_statistics_like_the_seed():
    rng = np.random.default_rng(2)
    x = _walk(rng, 50, jumps=[3, 30])
    ep = Episode(states=x, actions=np.zeros(50), rewards=np.ones(50), truncated=[0] * 49 + [1], episode_id=4)
    seg = ChangePointSegmenter(threshold=3.0, min_length=2, max_length=1000)
    pieces = seg.segment(ep)
    # the jump at step 3 is found offline (streaming would not have seen 2 jumps before it)
    assert [(p.start_step, len(p)) for p in pieces] == [(0, 4), (4, 27), (31, 19)]
    assert all(p.episode_id == 4 for p in pieces) and bool(pieces[-1].truncated[-1])
    assert sum(p.episode_return for p in pieces) == ep.episode_return
