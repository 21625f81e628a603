"""replay/stats.py: the buffer's summary numbers, from its memory's bookkeeping."""

from __future__ import annotations

import pytest
import torch

from hippogym import Episode, HippocampalReplayBuffer
from hippogym.replay.stats import buffer_stats


def test_stats_count_units_lengths_and_returns():
    buffer = HippocampalReplayBuffer(seed=0)
    assert buffer_stats(buffer)["transitions"] == 0
    for n, r in ((4, 1.0), (6, 0.0)):
        rewards = torch.full((n,), r)
        buffer.add_episode(Episode(observations=torch.randn(n + 1, 3), actions=torch.zeros(n), rewards=rewards))
    stats = buffer_stats(buffer)
    assert stats["transitions"] == 10 and stats["units"] == 2
    assert stats["unit_length_mean"] == pytest.approx(5.0) and stats["unit_length_max"] == 6
    assert stats["return_mean"] == pytest.approx(2.0)  # returns 4.0 and 0.0
    assert buffer.stats() == stats
