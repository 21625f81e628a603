"""hippogym/wrappers/recording.py: the parts the single and vector recorders share."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from hippogym import Episode, FixedWindowSegmenter, TerminalSegmenter
from hippogym.errors import ValidationError
from hippogym.wrappers.recording import (
    SUCCESS_INFO_KEYS,
    RecorderSink,
    make_segmenter,
    note_source,
    success_alias,
)


def test_success_alias_copies_success_to_is_success_and_its_mask():
    assert SUCCESS_INFO_KEYS == ("is_success", "success")
    info = {"success": np.array([True, False]), "_success": np.array([True, True]), "x": 1}
    out = success_alias(info)
    assert out is not info and "is_success" in out and "is_success" not in info
    assert out["is_success"].tolist() == [True, False] and out["_is_success"].tolist() == [True, True]
    assert out["x"] == 1
    untouched = {"is_success": True, "success": False}
    assert success_alias(untouched) is untouched  # is_success present: nothing to alias
    plain = {"x": 1}
    assert success_alias(plain) is plain


def test_make_segmenter_defaults_to_terminal_and_merges_info_keys():
    seg = make_segmenter(None, ("a", "b"))
    assert type(seg) is TerminalSegmenter and seg.info_keys == ("a", "b")
    mine = FixedWindowSegmenter(3, info_keys=("b",))
    assert make_segmenter(mine, ("a", "b")) is mine
    assert mine.info_keys == ("b", "a")
    with pytest.raises(ValidationError):
        make_segmenter(None, "a")  # a str is not a sequence of keys here
    with pytest.raises(ValidationError):
        make_segmenter(object(), ())


class _Buffer:
    def __init__(self) -> None:
        self.provenance: dict = {}
        self.spaces: dict = {}
        self.added: list = []

    def add_episode(self, episode):
        self.added.append(episode)
        return len(self.added) - 1

    def add_episodes(self, episodes):
        return [self.add_episode(e) for e in episodes]


def test_note_source_fills_only_empty_fields():
    buffer = _Buffer()
    obs_space, act_space = spaces.Box(-1.0, 1.0, (2,), np.float32), spaces.Discrete(3)
    note_source(buffer, gym.spec("CartPole-v1"), obs_space, act_space)
    assert buffer.provenance == {"env_id": "CartPole-v1"}
    assert buffer.spaces == {"observation_space": obs_space, "action_space": act_space}
    note_source(buffer, None, spaces.Discrete(5), spaces.Discrete(5))  # known spaces are kept
    assert buffer.spaces["action_space"] == act_space
    note_source(object(), None, obs_space, act_space)  # a buffer without those dicts: left alone


class _Recorder(RecorderSink):
    def __init__(self, buffer, every: int) -> None:
        self._init_sink(buffer, every)

    def store(self, episodes):
        return self._store(episodes)

    def drain(self):
        return self._drain()


def _unit(steps: int) -> Episode:
    return Episode(observations=torch.zeros(steps + 1, 2), actions=torch.zeros(steps), rewards=torch.ones(steps))


def test_recorder_sink_batches_units_and_counts_them():
    buffer = _Buffer()
    rec = _Recorder(buffer, every=5)
    assert rec.buffer is buffer and rec.ingest_every == 5
    assert rec.store([_unit(2), _unit(2)]) == []  # 4 transitions wait: below ingest_every
    assert rec.pending_episodes == 2 and rec.episodes_recorded == 0 and not buffer.added
    ids = rec.store([_unit(3)])
    assert ids == [0, 1, 2] and rec.pending_episodes == 0
    assert (rec.episodes_recorded, rec.transitions_recorded) == (3, 7)
    rec.ingest_every = 100
    rec.store([_unit(1)])
    assert rec.drain() == [3] and rec.transitions_recorded == 8
