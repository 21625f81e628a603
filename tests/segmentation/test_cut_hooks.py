"""hippogym/segmentation/cut_hooks.py: the overridable cut hooks and how a segmenter calls them."""

from __future__ import annotations

import numpy as np
import pytest
from segment_streams import run  # noqa: E402  (tests/segmentation on sys.path)

from hippogym import FixedWindowSegmenter, Segmenter
from hippogym.errors import ValidationError
from hippogym.segmentation.cut_hooks import CutHooks


def _batch(lengths):
    n = len(lengths)
    return np.asarray(lengths), np.zeros(n), np.zeros(n, bool), np.zeros(n, bool), [None] * n


def test_defaults_never_cut_early_and_carry_nothing():
    hooks = CutHooks()
    assert hooks.should_cut(5, 1.0, False, False, None) is False
    assert hooks.should_cut_batch(*_batch([1, 2, 3])).tolist() == [False, False, False]
    assert hooks.overlap_after_cut(4) == 0
    assert Segmenter.should_cut is CutHooks.should_cut  # the base class keeps the defaults


def test_a_per_step_override_is_called_once_per_row_by_the_batch_form():
    calls = []

    class Long(CutHooks):
        def should_cut(self, length, reward, terminated, truncated, info):
            calls.append(length)
            return length >= 3

    assert Long().should_cut_batch(*_batch([1, 3, 4])).tolist() == [False, True, True]
    assert calls == [1, 3, 4]


def test_custom_should_cut_hook():
    class EveryOther(Segmenter):
        def should_cut(self, length, reward, terminated, truncated, info):
            return info is not None and info.get("cut", False)

    seg = EveryOther()
    eps = run(seg, [5], infos=lambda e, t, last: {"cut": t == 1})
    assert [(e.start_step, len(e)) for e in eps] == [(0, 2), (2, 3)]
    # Vector-style infos reach the per-row hook too.
    seg = EveryOther()
    out = seg.add_batch(
        np.zeros((2, 1)),
        np.zeros(2),
        np.zeros(2),
        [False, False],
        [False, False],
        np.zeros((2, 1)),
        infos={"cut": np.array([True, False])},
    )
    assert len(out) == 1 and out[0].states.shape == (1, 1)


def test_a_batch_only_override_drives_the_per_step_path():
    class EveryThird(Segmenter):
        def should_cut_batch(self, lengths, rewards, terminated, truncated, infos):
            return lengths % 3 == 0

    eps = run(EveryThird(), [7])
    assert [(e.start_step, len(e)) for e in eps] == [(0, 3), (3, 3), (6, 1)]


def test_a_batch_hook_of_the_wrong_shape_is_rejected():
    class Wrong(Segmenter):
        def should_cut_batch(self, lengths, rewards, terminated, truncated, infos):
            return np.zeros(lengths.shape[0] + 1, dtype=bool)

    seg = Wrong()
    with pytest.raises(ValidationError) as info:
        for _ in range(2):  # the first step goes through add_batch, the second takes the fast path
            seg.add(np.zeros(2), 0, 0.0, False, False, np.zeros(2))
    assert info.value.field == "should_cut_batch()"


def test_the_shipped_twins_and_overlap_carry_rows_over():
    seg = FixedWindowSegmenter(3, overlap=1)
    assert seg.overlap_after_cut(3) == 1
    eps = run(seg, [5])
    assert [(e.start_step, len(e)) for e in eps] == [(0, 3), (2, 3)]

    class BadOverlap(FixedWindowSegmenter):
        def overlap_after_cut(self, length):
            return length

    with pytest.raises(ValidationError):
        run(BadOverlap(2), [4])
