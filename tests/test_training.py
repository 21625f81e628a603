"""training.py: the wake/sleep loop for agents without Stable-Baselines3."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import hippogym
from hippogym import HippocampalReplayBuffer, MemoryStore, WakeSleepTrainer
from hippogym.errors import ValidationError
from hippogym.training import TrainingLog


class LinearQ:
    """A real (tiny) learner: Q-learning on one-hot corridor cells, from the buffer's batches."""

    def __init__(self, obs_dim: int, epsilon: float = 0.3, seed: int = 0) -> None:
        self.q = np.zeros((obs_dim, 2))
        self.epsilon, self.rng = epsilon, np.random.default_rng(seed)
        self.batches: list = []

    def act(self, obs):
        if self.rng.random() < self.epsilon:
            return int(self.rng.integers(2))
        values = np.asarray(obs) @ self.q
        return int(self.rng.choice(np.flatnonzero(values == values.max())))

    def update(self, batch):
        self.batches.append(batch)
        obs, nxt = batch.observations.numpy(), batch.next_observations.numpy()
        act = batch.actions.numpy().astype(int).reshape(-1)
        target = batch.rewards.numpy() + 0.9 * (1 - batch.terminated.numpy().astype(float)) * (nxt @ self.q).max(1)
        err = target - (obs @ self.q)[np.arange(len(act)), act]
        np.add.at(self.q.T, act, 0.5 * err[:, None] * obs / len(act))
        return {"td_error": float(np.abs(err).mean())}

    def greedy_success(self, env) -> bool:
        obs, _ = env.reset(seed=123)
        for _ in range(50):
            obs, reward, terminated, truncated, _ = env.step(int(np.argmax(np.asarray(obs) @ self.q)))
            if terminated or truncated:
                return reward > 0
        return False


def _env(length: int = 6):
    return gym.make("hippogym/SparseCorridor-v0", length=length, max_episode_steps=4 * length)


def _buffer(mixture: float = 0.5) -> HippocampalReplayBuffer:
    return HippocampalReplayBuffer(MemoryStore(embed_dim=16, capacity=20_000, seed=0), mixture_ratio=mixture, seed=0)


def test_a_learner_without_sb3_learns_the_corridor_with_wake_and_sleep():
    torch.manual_seed(0)
    env, agent, buffer = _env(), LinearQ(6), _buffer()
    env.reset(seed=0)
    trainer = WakeSleepTrainer(agent, buffer, batch_size=32, learning_starts=100, consolidate_every=500,
                               consolidate_steps=10, consolidate_batch=32)
    log = trainer.train(env, 2000)
    assert isinstance(log, TrainingLog) and log.steps == 2000 and log.updates == 1900
    assert [c["step"] for c in log.consolidations] == [500, 1000, 1500, 2000]
    # Every recorded transition is a real step (finished episodes plus the one in progress).
    assert len(buffer) == buffer.memory.total_added == sum(log.episode_lengths)  # the open episode is not stored yet
    # Batches carried semantic draws (the current observation was the query) and the agent learned.
    assert any(int((b.modes == 1).sum()) > 0 for b in agent.batches[-10:])
    assert agent.greedy_success(_env()) and "td_error" in log.update_metrics


def test_background_sleep_is_applied_during_and_at_the_end():
    env, agent, buffer = _env(), LinearQ(6), _buffer()
    log = WakeSleepTrainer(agent, buffer, batch_size=16, learning_starts=50, consolidate_every=200,
                           consolidate_steps=20, consolidate_batch=32, background=True).train(env, 1000)
    assert not buffer.consolidation_pending and log.consolidations
    assert buffer.consolidator.steps_done == 20 * len(log.consolidations)
    assert all(c["keys_refreshed"] > 0 and c["train_s"] > 0 for c in log.consolidations)


@pytest.mark.parametrize(("schedule", "expected_calls", "steps_each"), [("periodic", 2, 50), ("interleaved", 20, 5)])
def test_schedules_split_the_same_sleep_differently(schedule, expected_calls, steps_each):
    log = WakeSleepTrainer(LinearQ(6), _buffer(0.0), learning_starts=10_000, consolidate_every=500,
                           consolidate_steps=50, consolidate_batch=16, schedule=schedule).train(_env(), 1000)
    assert len(log.consolidations) == expected_calls and {c["steps"] for c in log.consolidations} == {steps_each}


def test_adaptive_sleeps_at_least_every_consolidate_every_steps():
    log = WakeSleepTrainer(LinearQ(6), _buffer(0.0), learning_starts=10_000, consolidate_every=200,
                           consolidate_steps=5, consolidate_batch=16, schedule="adaptive").train(_env(), 800)
    steps = [c["step"] for c in log.consolidations]
    assert steps and all(b - a <= 200 for a, b in zip([0] + steps, steps))


def test_bad_arguments_are_refused():
    buffer = _buffer()
    with pytest.raises(ValidationError, match="agent"):
        WakeSleepTrainer(object(), buffer)
    with pytest.raises(ValidationError, match="schedule"):
        WakeSleepTrainer(LinearQ(6), buffer, schedule="sometimes")
    with pytest.raises(ValidationError, match="batch_size"):
        WakeSleepTrainer(LinearQ(6), buffer, batch_size=0)
    with pytest.raises(ValidationError, match="total_steps"):
        WakeSleepTrainer(LinearQ(6), buffer).train(_env(), 0)
    assert hippogym.WakeSleepTrainer is WakeSleepTrainer
