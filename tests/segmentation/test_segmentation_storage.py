"""Per-stream row storage (hippogym.segmentation.storage)."""

from __future__ import annotations

import numpy as np
import pytest

import hippogym.segmentation.base as base
from hippogym import FixedWindowSegmenter, Segmenter, TerminalSegmenter
from hippogym.errors import ValidationError
from hippogym.segmentation.storage import SegmentStorage


def test_storage_grows_amortised():
    seg = TerminalSegmenter()
    for t in range(1000):
        seg.add(np.full(3, t, np.float32), 0, 0.0, False, False, np.full(3, t + 1, np.float32))
    assert 1000 <= seg._capacity <= 2048
    (ep,) = seg.flush()
    assert len(ep) == 1000 and ep.states[:, 0].tolist() == list(range(1000))


def test_segmenter_is_a_segment_storage():
    assert issubclass(Segmenter, SegmentStorage)
    assert base.SegmentStorage is SegmentStorage  # reachable from the old module too


def test_pending_counts_only_rows_not_yet_emitted():
    seg = FixedWindowSegmenter(3, overlap=1)
    for t in range(4):
        seg.add(np.array([t], np.float32), 0, 0.0, False, False, np.array([t + 1], np.float32))
    # Cut after step 3 (rows 0-2), one row carried over, then step 3 written: 1 new row pending.
    assert seg.pending() == 1 and seg.pending(0) == 1 and seg.pending(5) == 0
    (ep,) = seg.flush()
    assert ep.start_step == 2 and ep.states[:, 0].tolist() == [2.0, 3.0]  # the carried row leads
    assert seg.pending() == 0


def test_new_streams_grow_the_storage_without_touching_old_rows():
    seg = TerminalSegmenter()
    seg.add(np.array([1.0]), 0, 0.0, False, False, np.array([2.0]), stream=0)
    seg.add(np.array([9.0]), 0, 0.0, False, False, np.array([10.0]), stream=6)
    assert seg.num_streams >= 7 and seg.pending() == 2
    first, second = seg.flush()
    assert first.states[:, 0].tolist() == [1.0] and second.states[:, 0].tolist() == [9.0]


def test_reset_clears_one_stream_only():
    seg = TerminalSegmenter()
    for s in (0, 1):
        seg.add(np.array([float(s)]), 0, 0.0, False, False, np.array([1.0]), stream=s)
    seg.reset(1)
    assert seg.pending(0) == 1 and seg.pending(1) == 0
    (ep,) = seg.flush()
    assert ep.states[:, 0].tolist() == [0.0]


def test_bad_overlap_hook_is_reported():
    class BadOverlap(FixedWindowSegmenter):
        def overlap_after_cut(self, length):
            return length  # must be < length

    seg = BadOverlap(2)
    seg.add(np.zeros(1), 0, 0.0, False, False, np.zeros(1))
    with pytest.raises(ValidationError, match="overlap_after_cut") as info:
        seg.add(np.zeros(1), 0, 0.0, False, False, np.zeros(1))
    assert info.value.field == "overlap_after_cut()"
