"""Segmenter.segment: offline cuts equal the streaming cuts; pieces are slices of the input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from segment_streams import run  # noqa: E402  (tests/segmentation on sys.path)

from hippogym import Episode, FixedWindowSegmenter, RewardEventSegmenter, TerminalSegmenter
from hippogym.errors import ValidationError


@pytest.mark.parametrize(
    "make", [TerminalSegmenter, lambda: FixedWindowSegmenter(4, overlap=1), lambda: RewardEventSegmenter(0.5, 2)]
)
def test_offline_cuts_equal_streaming_cuts(make):
    rewards = [[0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 0]]
    streamed = run(make(), [11], rewards=rewards)
    whole = TerminalSegmenter().segment(run(TerminalSegmenter(), [11], rewards=rewards)[0])[0]
    offline = make().segment(whole)
    assert [(e.start_step, len(e)) for e in offline] == [(e.start_step, len(e)) for e in streamed]
    for a, b in zip(offline, streamed):
        assert torch.equal(a.states, b.states) and torch.equal(a.next_states, b.next_states)
        assert torch.equal(a.rewards, b.rewards) and torch.equal(a.terminated, b.terminated)


def test_pieces_keep_targets_infos_metadata_and_the_open_end():
    ep = Episode(states=torch.arange(7.0)[:, None], actions=torch.zeros(6, dtype=torch.int64), rewards=torch.ones(6),
                 infos={"k": torch.arange(6)}, returns=torch.arange(6.0), episode_id=9, start_step=100,
                 metadata={"task": "t"})
    pieces = FixedWindowSegmenter(4).segment(ep)
    assert [(p.start_step, len(p)) for p in pieces] == [(100, 4), (104, 2)]
    assert pieces[1].infos["k"].tolist() == [4, 5] and pieces[1].returns.tolist() == [4.0, 5.0]
    assert pieces[0].metadata == {"task": "t"} and pieces[0].actions.dtype == torch.int64
    assert not pieces[1].terminated.any() and not pieces[1].truncated.any()  # the input was open-ended
    with pytest.raises(ValidationError, match="Episode"):
        TerminalSegmenter().segment(np.zeros(3))
