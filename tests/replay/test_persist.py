"""replay/persist.py: whole-buffer save/load, and its progress bar for large memories."""

from __future__ import annotations

import logging
import sys

import pytest
import torch

from hippogym import Episode, HippocampalReplayBuffer
from hippogym.replay import persist


def _buffer() -> HippocampalReplayBuffer:
    buffer = HippocampalReplayBuffer(seed=0)
    for i in range(3):
        buffer.add_episode(Episode(observations=torch.randn(9, 3), actions=torch.zeros(8), rewards=torch.full((8,), float(i))))
    return buffer


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "hippogym.progress"]


@pytest.fixture
def no_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # the fallback logs at INFO


def test_load_takes_the_class_and_round_trips(tmp_path):
    buffer = _buffer()
    persist.save_buffer(buffer, tmp_path / "m")
    loaded = persist.load_buffer(HippocampalReplayBuffer, tmp_path / "m")
    assert type(loaded) is HippocampalReplayBuffer and len(loaded) == len(buffer) == 24
    a, b = buffer.sample(16), loaded.sample(16)
    assert torch.equal(a.indices, b.indices) and torch.equal(a.rewards, b.rewards)


def test_progress_true_counts_the_stages_of_save_and_load(tmp_path, caplog, no_tqdm):
    buffer = _buffer()
    with caplog.at_level(logging.INFO, logger="hippogym.progress"):
        buffer.save(tmp_path / "m", progress=True)
        HippocampalReplayBuffer.load(tmp_path / "m", progress=True)
    lines = _lines(caplog)
    assert any(line.startswith("save m: 3/3 stage") for line in lines), lines
    assert lines[-1].startswith("load m: 3/3 stage"), lines


def test_small_memories_show_no_bar_by_default_and_large_ones_do(tmp_path, caplog, monkeypatch, no_tqdm):
    buffer = _buffer()
    with caplog.at_level(logging.INFO, logger="hippogym.progress"):
        buffer.save(tmp_path / "m")
        HippocampalReplayBuffer.load(tmp_path / "m")
    assert _lines(caplog) == []
    monkeypatch.setattr(persist, "LARGE_MEMORY", 10)
    with caplog.at_level(logging.INFO, logger="hippogym.progress"):
        buffer.save(tmp_path / "m")
        HippocampalReplayBuffer.load(tmp_path / "m")
        buffer.save(tmp_path / "q", progress=False)
    lines = _lines(caplog)
    assert list(dict.fromkeys(line.split(":")[0] for line in lines)) == ["save m", "load m"], lines
