"""sample_windows: contiguous runs inside units, uniform over window starts; buffer.stats()."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hippogym import Episode, HippocampalReplayBuffer
from hippogym.errors import EmptyMemoryError, ValidationError


def _buffer(lengths, seed=0):
    buf = HippocampalReplayBuffer(capacity=10_000, embed_dim=8, seed=seed)
    for u, length in enumerate(lengths):
        obs = np.stack([np.full(length + 1, u), np.arange(length + 1)], axis=1).astype(np.float32)
        buf.add_episode(Episode(states=obs, actions=np.zeros(length), rewards=np.arange(length, dtype=np.float32),
                                dones=[0] * (length - 1) + [1], success=u % 2 == 0))
    return buf


def test_windows_are_contiguous_and_never_cross_units():
    buf = _buffer([3, 12, 7, 30])
    w = buf.sample_windows(256, 5)
    obs = w.observations
    assert obs.shape == (256, 5, 2) and w.mask.all()
    assert (obs[:, :, 0] == obs[:, :1, 0]).all()  # one unit per window
    assert (obs[:, 1:, 1] - obs[:, :-1, 1] == 1).all()  # consecutive steps
    assert torch.equal(w.observations[:, 1:], w.next_observations[:, :-1])
    assert torch.equal(obs[:, 0, 1].long(), w.start_steps)
    assert not (obs[:, 0, 0] == 0).any()  # the 3-step unit holds no 5-step window
    assert (w.terminated.sum(1) <= 1).all() and bool(w.terminated[:, :-1].sum() == 0)


def test_every_window_start_is_equally_likely():
    buf = _buffer([6, 24])  # 2 and 20 starts for length 5
    w = buf.sample_windows(22_000, 5)
    starts = (w.observations[:, 0, 0].long() * 100 + w.start_steps).numpy()
    _, counts = np.unique(starts, return_counts=True)
    assert counts.size == 22
    # each of the 22 starts ~1000 draws; a 5-sigma band of a binomial(22000, 1/22)
    assert counts.min() > 1000 - 5 * 31 and counts.max() < 1000 + 5 * 31


def test_short_units_are_padded_and_masked_when_not_strict():
    buf = _buffer([2, 3])
    with pytest.raises(EmptyMemoryError, match="strict=False"):
        buf.sample_windows(4, 5)
    w = buf.sample_windows(64, 5, strict=False)
    assert w.mask.sum(1).tolist() == [int(r) for r in (w.observations[:, 0, 0] + 2).tolist()]
    last = w.mask.sum(1) - 1
    assert bool(w.terminated[torch.arange(64), last].all()) and int(w.terminated.sum()) == 64
    assert torch.equal(w.indices[:, -1], w.indices[torch.arange(64), last])  # padding repeats the last row
    with pytest.raises(ValidationError, match="length"):
        buf.sample_windows(4, 0)


def test_same_seed_same_windows():
    a, b = _buffer([10, 20], seed=3), _buffer([10, 20], seed=3)
    assert torch.equal(a.sample_windows(16, 4).indices, b.sample_windows(16, 4).indices)


def test_stats_summarise_sizes_returns_and_outcomes():
    buf = _buffer([3, 5, 8])
    stats = buf.stats()
    returns = [sum(range(n)) for n in (3, 5, 8)]
    assert (stats["transitions"], stats["units"], stats["total_added"], stats["unit_length_max"]) == (16, 3, 16, 8)
    assert stats["return_mean"] == pytest.approx(np.mean(returns))
    assert stats["return_std"] == pytest.approx(np.std(returns))
    assert stats["success_rate"] == pytest.approx(2 / 3) and stats["mixture_ratio"] == 0.5
    assert HippocampalReplayBuffer(embed_dim=8).stats()["success_rate"] is None


def test_mixture_ratio_is_settable_with_a_float_or_a_schedule():
    buf = _buffer([4])
    buf.mixture_ratio = 0.2
    assert buf.mixture_ratio == 0.2 and buf.config()["mixture_ratio"] == {"type": "constant", "value": 0.2}
    buf.mixture_ratio = {"type": "cosine", "start": 0.0, "end": 1.0, "warmup": 0, "ramp": 8}
    assert buf.mixture_ratio == pytest.approx(0.5)  # 4 transitions added: half way
    with pytest.raises(ValidationError, match="mixture_ratio"):
        buf.mixture_ratio = 1.5
