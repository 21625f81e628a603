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


def test_health_reports_sharpness_dispersion_collapse_and_drift():
    from hippogym.integrations.tensorboard import key_drift

    buffer = _buffer()
    scalars = health_scalars(buffer)
    for name in ("retrieval_sharpness", "key_dispersion", "collapse_score", "key_drift"):
        assert name in scalars and math.isfinite(scalars[name]), (name, scalars)
    assert 0.0 <= scalars["retrieval_sharpness"] <= 1.0
    assert scalars["collapse_score"] == pytest.approx(1.0 - scalars["effective_rank"])
    assert key_drift(buffer) == pytest.approx(0.0, abs=1e-6)  # keys were just written by this encoder
    # Train the online encoder and move the key encoder without refreshing the keys: they drift.
    with torch.no_grad():
        for p in buffer.encoder.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    assert key_drift(buffer) > 0.01
    with pytest.raises(EmptyMemoryError):
        key_drift(HippocampalReplayBuffer(seed=0))


class _Recorder:
    def __init__(self) -> None:
        self.scalars: list[tuple[str, float, int]] = []

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.scalars.append((tag, value, step))


def test_consolidate_writes_its_losses_and_metrics_to_a_tb_writer(tmp_path):
    buffer = _buffer()
    rec = _Recorder()
    buffer.consolidate(steps=12, batch_size=16, report_quality=True, tb_writer=rec, tb_log_every=5)
    steps = [s for tag, _, s in rec.scalars if tag == "hippo/consolidation/loss"]
    assert steps == [0, 5, 10, 11]  # every 5th step and the last, at the consolidator's global step
    tags = {tag for tag, _, _ in rec.scalars}
    assert {"hippo/consolidation/refresh_s", "hippo/consolidation/retrieval_sharpness"} <= tags
    rec2 = _Recorder()
    buffer.consolidate(steps=3, batch_size=16, tb_writer=rec2, tb_log_every=10)
    assert [s for tag, _, s in rec2.scalars if tag == "hippo/consolidation/loss"] == [12, 14]
    writer = tensorboard.SummaryWriter(str(tmp_path))  # the real writer takes them too
    buffer.consolidate(steps=2, batch_size=16, tb_writer=writer)
    writer.close()
    assert list(tmp_path.iterdir())
    with pytest.raises(ValidationError, match="tb_writer"):
        buffer.consolidate(steps=1, batch_size=16, tb_writer=object())
