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


def _two_units_buffer():
    import torch

    from hippogym import Episode, HippocampalReplayBuffer, MemoryStore

    buffer = HippocampalReplayBuffer(MemoryStore(embed_dim=8, capacity=1_000, seed=0), seed=0)
    buffer.add_episode(Episode(states=torch.randn(4, 2), actions=torch.zeros(3, 1), rewards=torch.tensor([0.0, 0.0, 1.0]),
                               terminated=torch.tensor([False, False, True])))
    buffer.add_episode(Episode(states=torch.randn(3, 2), actions=torch.zeros(2, 1), rewards=torch.tensor([1.0, 1.0])))
    return buffer


def test_saved_memories_carry_returns_to_go_and_value_target_settings(tmp_path):
    import hippo_format
    from hippogym import HippocampalReplayBuffer

    buffer = _two_units_buffer()
    buffer.use_value_targets(gamma=0.5, n_steps=3)
    buffer.save(tmp_path / "m")
    with hippo_format.open_memory(tmp_path / "m") as reader:
        assert reader.column("return_to_go").tolist() == [0.25, 0.5, 1.0, 1.5, 1.0]  # by hand, gamma 0.5
        assert reader.column("return_complete").tolist() == [True, True, True, False, False]
        assert reader.manifest["returns"]["gamma"] == 0.5 and reader.manifest["returns"]["source"] == "value_targets"
    loaded = HippocampalReplayBuffer.load(tmp_path / "m")
    assert (loaded.targets.gamma, loaded.targets.n_steps, loaded.targets.table is not None) == (0.5, 3, True)
    assert loaded.sample(4).discounts is not None  # the targets apply again without a call


def test_without_value_targets_returns_use_the_default_discount(tmp_path):
    import hippo_format
    from hippogym import HippocampalReplayBuffer
    from hippogym.returns import RETURNS_GAMMA

    _two_units_buffer().save(tmp_path / "m")
    with hippo_format.open_memory(tmp_path / "m") as reader:
        assert reader.manifest["returns"] == {
            "gamma": RETURNS_GAMMA, "source": "default",
            "columns": {"return_to_go": "transitions", "return_complete": "transitions"},
        }
        assert reader.column("return_to_go")[0] == pytest.approx(RETURNS_GAMMA**2)
    assert HippocampalReplayBuffer.load(tmp_path / "m").targets is None


def test_bad_saved_value_targets_are_named():
    from hippogym.errors import ValidationError
    from hippogym.replay.persist import read_sampling_kwargs

    with pytest.raises(ValidationError, match=r"sampling\.value_targets\.gamma"):
        read_sampling_kwargs({"mixture_ratio": 0.5, "value_targets": {"gamma": 2.0, "n_steps": 1}})
    with pytest.raises(ValidationError, match=r"sampling\.value_targets\.n_steps"):
        read_sampling_kwargs({"mixture_ratio": 0.5, "value_targets": {"gamma": 0.9, "n_steps": 0}})
    assert read_sampling_kwargs({"mixture_ratio": 0.5})["value_targets"] is None  # saved before value targets were kept
