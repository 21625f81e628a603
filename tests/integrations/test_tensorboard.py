"""integrations/tensorboard.py: health scalars and the key projector, alone and through HippoCallback."""

from __future__ import annotations

import math

import pytest
import torch

from hippogym import Episode, HippocampalReplayBuffer
from hippogym.errors import EmptyMemoryError, ValidationError
from hippogym.integrations.tensorboard import health_scalars, write_health, write_key_projector

tensorboard = pytest.importorskip("torch.utils.tensorboard")


def _buffer(units: int = 6) -> HippocampalReplayBuffer:
    buffer = HippocampalReplayBuffer(seed=0)
    gen = torch.Generator().manual_seed(0)
    for i in range(units):
        buffer.add_episode(Episode(observations=torch.randn(9, 3, generator=gen), actions=torch.zeros(8),
                                   rewards=torch.full((8,), float(i % 2))))
    return buffer


def test_health_scalars_measure_the_key_space_and_contents():
    scalars = health_scalars(_buffer())
    for name in ("effective_rank", "mean_cosine", "staleness_mean", "reward_alignment", "transitions", "units"):
        assert name in scalars and math.isfinite(scalars[name]), (name, scalars)
    assert scalars["transitions"] == 48 and scalars["units"] == 6 and 0 < scalars["effective_rank"] <= 1
    assert health_scalars(HippocampalReplayBuffer(seed=0)) == {}
    with pytest.raises(ValidationError, match="buffer"):
        health_scalars(object())


def test_write_health_and_the_projector(tmp_path):
    writer = tensorboard.SummaryWriter(str(tmp_path))
    buffer = _buffer()
    scalars = write_health(writer, buffer, step=3)
    assert write_key_projector(writer, buffer, n=20) == 20
    writer.close()
    assert (tmp_path / "projector_config.pbtxt").exists()
    (meta,) = tmp_path.rglob("metadata.tsv")
    lines = meta.read_text().splitlines()
    assert lines[0].split("\t") == ["unit", "return", "outcome", "step"] and len(lines) == 21
    assert {line.split("\t")[2] for line in lines[1:]} <= {"success", "failure", "unknown"}
    assert scalars and list(tmp_path.glob("events.out.tfevents.*"))
    with pytest.raises(EmptyMemoryError):
        write_key_projector(writer, HippocampalReplayBuffer(seed=0))
    with pytest.raises(ValidationError, match="n"):
        write_key_projector(writer, buffer, n=0)


def test_hippo_callback_records_health_and_writes_the_projector(tmp_path):
    pytest.importorskip("stable_baselines3")
    import gymnasium as gym
    from stable_baselines3 import DQN
    from stable_baselines3.common.logger import configure

    from hippogym.integrations.sb3 import HippoCallback, HippoReplayBuffer

    model = DQN("MlpPolicy", gym.make("CartPole-v1"), replay_buffer_class=HippoReplayBuffer, learning_starts=32,
                batch_size=16, buffer_size=1000, seed=0)
    model.set_logger(configure(str(tmp_path), ["csv", "tensorboard"]))
    model.learn(200, callback=HippoCallback(log_every=50, health_every=50, projector_every=100))
    header = (tmp_path / "progress.csv").read_text().splitlines()[0].split(",")
    assert "hippo/health/effective_rank" in header and "hippo/memory_transitions" in header
    assert list(tmp_path.rglob("metadata.tsv")) and (tmp_path / "projector_config.pbtxt").exists()
