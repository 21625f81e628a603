"""Episodic value estimates against hand-computed neighbours and reductions."""

from __future__ import annotations

import math

import pytest
import torch

from hippogym.errors import DimensionMismatchError, ValidationError
from hippogym.replay.value import episodic_values


def _unit(*rows: list[float]) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.tensor(rows, dtype=torch.float32), dim=1)


KEYS = _unit([1, 0, 0], [0.8, 0.6, 0], [0, 1, 0], [0, 0, 1])
RETURNS = torch.tensor([1.0, 4.0, 2.0, 8.0])


def test_max_mean_kernel_by_hand() -> None:
    q = torch.tensor([[1.0, 0.0, 0.0]])
    # Similarities to the query: 1.0, 0.8, 0.0, 0.0 -> the two nearest are rows 0 and 1.
    for mode, expected in [("max", 4.0), ("mean", 2.5)]:
        out = episodic_values(q, KEYS, RETURNS, k=2, mode=mode)
        assert out.rows.tolist() == [[0, 1]]
        assert out.count.tolist() == [2]
        assert out.values.item() == pytest.approx(expected)
    # Kernel: squared distances 0 and 2 - 2 * 0.8 = 0.4; weights 1 / (d + 1e-3).
    w0, w1 = 1 / 1e-3, 1 / (0.4 + 1e-3)
    out = episodic_values(q, KEYS, RETURNS, k=2, mode="kernel")
    assert out.values.item() == pytest.approx((w0 * 1.0 + w1 * 4.0) / (w0 + w1), rel=1e-4)
    assert out.similarities[0].tolist() == pytest.approx([1.0, 0.8])


def test_queries_are_normalised_and_batched() -> None:
    q = torch.tensor([[5.0, 0.0, 0.0], [0.0, 0.0, 0.3]])
    out = episodic_values(q, KEYS, RETURNS, k=1, mode="max")
    assert out.rows[:, 0].tolist() == [0, 3]
    assert out.values.tolist() == [1.0, 8.0]


def test_same_action_only() -> None:
    q = torch.tensor([[1.0, 0.0, 0.0]])
    actions = torch.tensor([0, 1, 1, 0])
    out = episodic_values(q, KEYS, RETURNS, k=2, mode="max", actions=actions, query_actions=torch.tensor([0]))
    # Only rows 0 and 3 took action 0.
    assert sorted(out.rows[0].tolist()) == [0, 3]
    assert out.values.item() == 8.0
    none = episodic_values(q, KEYS, RETURNS, k=2, actions=actions, query_actions=torch.tensor([7]))
    assert none.count.tolist() == [0]
    assert math.isnan(none.values.item())
    assert none.rows.tolist() == [[-1, -1]]


def test_fewer_eligible_than_k_pads() -> None:
    q = torch.tensor([[1.0, 0.0, 0.0]])
    actions = torch.tensor([0, 1, 1, 1])
    out = episodic_values(q, KEYS, RETURNS, k=3, mode="mean", actions=actions, query_actions=torch.tensor([0]))
    assert out.count.tolist() == [1]
    assert out.rows.tolist() == [[0, -1, -1]]
    assert out.values.item() == 1.0


@pytest.mark.parametrize("chunk", [1, 2, 3, 1000])
def test_chunked_search_equals_one_pass(chunk: int) -> None:
    g = torch.Generator().manual_seed(0)
    keys = torch.nn.functional.normalize(torch.randn(257, 16, generator=g), dim=1)
    returns = torch.randn(257, generator=g)
    q = torch.randn(9, 16, generator=g)
    full = episodic_values(q, keys, returns, k=5, mode="kernel", chunk=100_000)
    part = episodic_values(q, keys, returns, k=5, mode="kernel", chunk=chunk)
    assert torch.equal(full.rows, part.rows)
    assert torch.allclose(full.values, part.values)
    # The rows are the exact top-5 by cosine.
    sims = torch.nn.functional.normalize(q, dim=1) @ keys.T
    assert torch.equal(full.rows, sims.topk(5, dim=1).indices)


def test_empty_memory_gives_nan() -> None:
    out = episodic_values(torch.ones(2, 3), torch.zeros(0, 3), torch.zeros(0), k=4)
    assert out.count.tolist() == [0, 0]
    assert torch.isnan(out.values).all()


def test_bad_input_is_named() -> None:
    q = torch.ones(1, 3)
    with pytest.raises(DimensionMismatchError, match="queries"):
        episodic_values(torch.ones(1, 4), KEYS, RETURNS)
    with pytest.raises(DimensionMismatchError, match="returns"):
        episodic_values(q, KEYS, RETURNS[:3])
    with pytest.raises(ValidationError, match="returns"):
        episodic_values(q, KEYS, torch.tensor([1.0, float("nan"), 0.0, 0.0]))
    with pytest.raises(ValidationError, match="mode"):
        episodic_values(q, KEYS, RETURNS, mode="median")
    with pytest.raises(ValidationError, match="k"):
        episodic_values(q, KEYS, RETURNS, k=0)
    with pytest.raises(ValidationError, match="actions"):
        episodic_values(q, KEYS, RETURNS, actions=torch.zeros(4))
    with pytest.raises(ValidationError, match="queries"):
        episodic_values(torch.ones(1, 3, dtype=torch.int64), KEYS, RETURNS)


def test_buffer_episodic_values_read_the_returns_the_memory_stored_by_hand():
    from hippogym import Episode, HippocampalReplayBuffer, MemoryStore

    buffer = HippocampalReplayBuffer(MemoryStore(embed_dim=16, capacity=100, seed=0), seed=0)
    states = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    buffer.add_episode(Episode(states=states, actions=torch.tensor([0, 1, 0]), rewards=torch.tensor([0.0, 0.0, 1.0]),
                               terminated=torch.tensor([False, False, True])))
    buffer.add_episode(Episode(states=states[:3] + 10, actions=torch.tensor([1, 1]), rewards=torch.tensor([5.0, 5.0])))
    own = buffer.episodic_values(states[:3], k=1, gamma=0.5)  # each state's nearest is itself
    assert own.values.tolist() == [0.25, 0.5, 1.0] and own.rows[:, 0].tolist() == [0, 1, 2]
    # Only transitions that took action 1: returns 0.5 (row 1), 5 + 0.5 * 5 = 7.5 and 5; the best.
    best = buffer.episodic_values(states[:1], k=3, mode="max", gamma=0.5, actions=[1])
    assert best.values.tolist() == [7.5] and sorted(best.rows[0].tolist()) == [1, 3, 4]
    buffer.use_value_targets(gamma=0.5)
    assert buffer.episodic_values(states[:3], k=1).values.tolist() == [0.25, 0.5, 1.0]  # the targets' table
