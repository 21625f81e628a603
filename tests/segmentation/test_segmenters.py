"""The shipped segmenters: TerminalSegmenter, FixedWindowSegmenter, RewardEventSegmenter."""

from __future__ import annotations

import numpy as np
import torch
from segment_streams import run, steps_of  # noqa: E402  (tests/segmentation on sys.path)

from hippogym import (
    FixedWindowSegmenter,
    RewardEventSegmenter,
    TerminalSegmenter,
)


def test_terminal_segmenter_emits_whole_episodes_with_real_next_obs():
    seg = TerminalSegmenter()
    eps = run(seg, [3, 5, 2], ends={1: "truncated"})
    assert [len(e) for e in eps] == [3, 5, 2]
    assert [e.episode_id for e in eps] == [0, 1, 2]
    assert all(e.start_step == 0 for e in eps)
    assert torch.equal(eps[1].next_states[-1], torch.tensor([1.0, 5.0]))  # the real final next obs
    assert eps[1].final_next_state_known
    assert bool(eps[1].truncated[-1]) and not bool(eps[1].terminated.any())  # truncation is not termination
    assert bool(eps[0].terminated[-1]) and not bool(eps[0].truncated.any())
    assert eps[0].actions.tolist() == [0, 1, 2] and eps[0].actions.dtype == torch.int64
    assert eps[0].rewards.tolist() == [0.0, 1.0, 2.0]
    assert torch.equal(eps[2].states[1:], eps[2].next_states[:-1])
    assert seg.pending() == 0 and seg.flush() == []


def test_fixed_window_cuts_every_n_and_at_episode_end():
    seg = FixedWindowSegmenter(4)
    eps = run(seg, [10, 3])
    assert [(e.episode_id, e.start_step, len(e)) for e in eps] == [(0, 0, 4), (0, 4, 4), (0, 8, 2), (1, 0, 3)]
    assert [bool(e.terminated[-1]) for e in eps] == [False, False, True, True]
    assert steps_of(eps[1]) == [4, 5, 6, 7]
    assert torch.equal(eps[0].next_states[-1], torch.tensor([0.0, 4.0]))  # bootstrap continues into the next window


def test_fixed_window_overlap():
    seg = FixedWindowSegmenter(4, overlap=2)
    eps = run(seg, [9])
    assert [(e.start_step, len(e)) for e in eps] == [(0, 4), (2, 4), (4, 4), (6, 3)]
    assert steps_of(eps[3]) == [6, 7, 8]
    assert {e.episode_id for e in eps} == {0}


def test_fixed_window_flush_does_not_repeat_overlap_only_data():
    seg = FixedWindowSegmenter(3, overlap=1)
    out = []
    for t in range(3):
        out += seg.add(np.array([0.0, t]), 0, 0.0, False, False, np.array([0.0, t + 1]))
    assert len(out) == 1 and seg.pending() == 0
    assert seg.flush() == []  # only the carried-over step is left, already emitted
    out += seg.add(np.array([0.0, 3]), 0, 0.0, False, False, np.array([0.0, 4]))
    flushed = seg.flush()
    assert [(e.start_step, steps_of(e)) for e in flushed] == [(2, [2, 3])]
    assert not bool(flushed[0].terminated.any() or flushed[0].truncated.any())


def test_reward_event_segmenter():
    seg = RewardEventSegmenter(threshold=0.5, min_length=2)
    rewards = [[0, 1, 0, 0, -1, 0, 0.2, 1]]
    eps = run(seg, [8], rewards=rewards)
    # event at t=1 (length 2 >= 2) cuts; t=4 (-1) cuts; 0.2 is below threshold; t=7 ends the episode.
    assert [(e.start_step, len(e)) for e in eps] == [(0, 2), (2, 3), (5, 3)]
    assert eps[0].rewards[-1] == 1 and eps[1].rewards[-1] == -1
    seg = RewardEventSegmenter(min_length=3)
    eps = run(seg, [6], rewards=[[1, 0, 1, 0, 0, 0]])
    assert [(e.start_step, len(e)) for e in eps] == [(0, 3), (3, 3)]  # the first event was too early
