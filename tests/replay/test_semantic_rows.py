"""Semantic draws by priority inside a retrieved unit (SemanticConfig(rows="priority"))."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hippogym import Episode, HippocampalReplayBuffer, MemoryStore
from hippogym.errors import ValidationError
from hippogym.replay.batch import SampleMode
from hippogym.replay.settings import PrioritizedSpec, SemanticConfig


def buffer_with_one_unit(rows="priority"):
    buffer = HippocampalReplayBuffer(
        MemoryStore(embed_dim=8, capacity=100, seed=0), mixture_ratio=1.0, seed=0,
        sampler=PrioritizedSpec(alpha=1.0, beta=0.0), semantic=SemanticConfig(top_k=1, rows=rows),
    )
    buffer.add_episode(Episode(states=torch.randn(5, 3), actions=torch.zeros(4, 1), rewards=torch.zeros(4)))
    return buffer


def test_rows_inside_a_retrieved_unit_follow_their_priorities():
    buffer = buffer_with_one_unit()
    buffer.update_priorities(torch.arange(4), torch.tensor([0.0, 1.0, 0.0, 3.0]))
    query = buffer.memory.obs["obs"][0]
    counts = np.zeros(4)
    probs = {}
    for _ in range(200):
        batch = buffer.sample(64, query_state=query)
        assert bool((batch.modes == SampleMode.SEMANTIC).all())
        np.add.at(counts, batch.indices.numpy(), 1)
        probs.update(zip(batch.indices.tolist(), batch.probabilities.tolist()))
    share = counts / counts.sum()
    eps = 1e-6  # the sampler's floor on priorities
    expected = np.array([eps, 1 + eps, eps, 3 + eps]) / (4 + 4 * eps)
    assert share == pytest.approx(expected, abs=0.01)  # 12,800 draws
    for row, p in probs.items():  # the reported probability is the exact one
        assert p == pytest.approx(expected[row], rel=1e-4)


def test_uniform_rows_stay_uniform_and_priority_rows_need_prioritized_draws():
    buffer = buffer_with_one_unit(rows="uniform")
    buffer.update_priorities(torch.arange(4), torch.tensor([0.0, 1.0, 0.0, 3.0]))
    batch = buffer.sample(4_000, query_state=buffer.memory.obs["obs"][0])
    share = np.bincount(batch.indices.numpy(), minlength=4) / 4_000
    assert share == pytest.approx([0.25] * 4, abs=0.03)
    assert batch.probabilities.tolist() == pytest.approx([0.25] * 4_000)
    with pytest.raises(ValidationError, match="semantic.rows"):
        HippocampalReplayBuffer(MemoryStore(embed_dim=8, capacity=100), semantic=SemanticConfig(rows="priority"))
    with pytest.raises(ValidationError, match="semantic.rows"):
        SemanticConfig(rows="best")


def test_the_setting_survives_save_and_load(tmp_path):
    buffer = buffer_with_one_unit()
    buffer.save(tmp_path / "m")
    assert HippocampalReplayBuffer.load(tmp_path / "m").semantic.rows == "priority"
