from __future__ import annotations

import pytest
import torch

from hippogym import Episode, HippocampalReplayBuffer, RampSchedule, SampleMode
from hippogym.errors import EmptyMemoryError, HippoError, ValidationError


def filled(seed=0, n=30, T=10, **kw):
    buffer = HippocampalReplayBuffer(capacity=5000, embed_dim=16, seed=seed, **kw)
    g = torch.Generator().manual_seed(0)
    for i in range(n):
        buffer.add_episode(Episode(states=torch.randn(T + 1, 3, generator=g), actions=torch.randint(0, 2, (T,), generator=g),
                                   rewards=torch.randn(T, generator=g), truncated=[0] * (T - 1) + [1]))
    return buffer


def test_batch_is_typed_and_mixture_counts_match():
    buffer = filled(mixture_ratio=0.25)
    batch = buffer.sample(64, query_state=torch.randn(3))
    assert int((batch.modes == SampleMode.SEMANTIC).sum()) == 16
    assert batch.observations.shape == (64, 3) and batch.actions.dtype == torch.int64
    assert batch.terminated.dtype == torch.bool and batch.truncated.any() and not batch.terminated.any()
    assert torch.equal(batch.next_observations[batch.modes == 0], buffer.memory.next_obs["obs"][batch.indices[batch.modes == 0]])
    assert (batch.probabilities > 0).all() and torch.equal(batch.weights, torch.ones(64))
    uniform = buffer.sample(32)
    assert (uniform.modes == SampleMode.UNIFORM).all()
    assert torch.allclose(uniform.probabilities, torch.full((32,), 1 / len(buffer)))


def test_semantic_draws_come_from_retrieved_units():
    buffer = filled(mixture_ratio=1.0, top_k=2, exact_sampling=True)
    q = torch.randn(3)
    retrieved = set(buffer.retrieve(q, 2).episode_ids[0].tolist())
    batch = buffer.sample(50, query_state=q)
    assert set(batch.episode_ids.tolist()) <= retrieved


def test_probabilities_are_a_distribution_over_the_mixture():
    buffer = filled(n=5, T=4, mixture_ratio=0.5, top_k=2)
    q = torch.randn(3)
    batch = buffer.sample(8, query_state=q)
    # Exact check: probability of every stored row under the mixture sums to 1.
    store = buffer.memory
    rows, _ = store.rows_of(store.live_slots())
    rows = rows.numpy()
    p = buffer._mixture_probabilities(rows, store.row_slot.numpy()[rows], 0.5, buffer._recall(q, 2))
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-6)
    by_row = dict(zip(rows.tolist(), p.tolist()))
    expected = torch.tensor([by_row[int(r)] for r in batch.indices], dtype=torch.float64)
    assert torch.allclose(batch.probabilities.double(), expected, atol=1e-7)


def test_same_seed_same_batches_and_batched_queries():
    a, b = filled(seed=3), filled(seed=3)
    qa = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    for _ in range(3):
        x, y = a.sample(32, query_state=qa), b.sample(32, query_state=qa)
        assert torch.equal(x.indices, y.indices)
    c = filled(seed=4)
    assert not torch.equal(c.sample(32, query_state=qa).indices, filled(seed=3).sample(32, query_state=qa).indices)


def test_ramp_schedule_follows_env_steps():
    buffer = filled(n=1, T=10, mixture_ratio=RampSchedule(0.2, 0.5, warmup=10, ramp=20))
    assert buffer.mixture_ratio == 0.2
    buffer.add_episode(Episode(states=torch.randn(11, 3), actions=torch.zeros(10, dtype=torch.int64), rewards=torch.zeros(10)))
    assert buffer.mixture_ratio == pytest.approx(0.35)  # 20 steps: halfway through the ramp
    buffer.add_episode(Episode(states=torch.randn(11, 3), actions=torch.zeros(10, dtype=torch.int64), rewards=torch.zeros(10)))
    assert buffer.mixture_ratio == pytest.approx(0.5)


def test_prioritized_sampling_follows_priorities():
    buffer = filled(prioritized=True, alpha=1.0, n=10)
    batch = buffer.sample(64)
    assert (batch.modes == SampleMode.PRIORITIZED).all()
    target = batch.indices[0]
    pri = torch.full((64,), 1e-4)
    pri[batch.indices == target] = 100.0
    buffer.update_priorities(batch.indices, pri)
    after = buffer.sample(256)
    assert float((after.indices == target).float().mean()) > 0.5
    assert float(after.weights[after.indices == target].max()) < 1.0  # IS weights down-weight it
    with pytest.raises(ValidationError):
        buffer.update_priorities(batch.indices, torch.full((64,), float("nan")))
    with pytest.raises(HippoError):
        filled().update_priorities(batch.indices, pri)


def test_errors():
    buffer = HippocampalReplayBuffer(capacity=100, embed_dim=16)
    with pytest.raises(EmptyMemoryError):
        buffer.sample(4)
    buffer = filled()
    with pytest.raises(ValidationError, match="batch_size"):
        buffer.sample(0)
    with pytest.raises(ValidationError, match="query_state"):
        buffer.sample(4, query_state=torch.randn(7))
    with pytest.raises(ValidationError, match="query_state"):
        buffer.sample(4, query_state=torch.tensor([float("nan"), 0.0, 0.0]))
    with pytest.raises(KeyError):
        buffer.episode(10_000)


def test_state_dict_round_trip_gives_the_same_batches():
    a = filled(seed=5, prioritized=True)
    a.update_priorities(torch.arange(10), torch.arange(10).float())
    b = HippocampalReplayBuffer(capacity=5000, embed_dim=16, seed=0, prioritized=True)
    b.load_state_dict(a.state_dict())
    q = torch.randn(3)
    for _ in range(3):
        x, y = a.sample(16, query_state=q), b.sample(16, query_state=q)
        assert torch.equal(x.indices, y.indices) and torch.equal(x.probabilities, y.probabilities)


def test_consolidator_kwargs_configure_the_default_consolidator():
    buffer = filled(consolidator_kwargs={"temperature": 0.05, "reward_weight": 1.0, "reward_mode": "raw"})
    buffer.consolidate(steps=1, batch_size=8)
    assert (buffer.consolidator.temperature, buffer.consolidator.reward_weight) == (0.05, 1.0)
    assert buffer.consolidator.reward_mode == "raw"
    from hippogym import Consolidator, DualEncoder

    with pytest.raises(ValidationError, match="consolidator_kwargs"):
        enc = DualEncoder(input_dim=6, embed_dim=16)
        HippocampalReplayBuffer(encoder=enc, consolidator=Consolidator(enc), consolidator_kwargs={"temperature": 0.1})


def test_consolidate_progress_reaches_the_consolidator(caplog, monkeypatch):
    import logging
    import sys

    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # no tqdm: the fallback logs
    buffer = filled()
    with caplog.at_level(logging.INFO, logger="hippogym.progress"):
        buffer.consolidate(steps=4, batch_size=16, progress=True)
    lines = [r.getMessage() for r in caplog.records if r.name == "hippogym.progress"]
    assert lines and lines[-1].startswith("consolidate: 4/4 step")
