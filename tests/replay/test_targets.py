"""Targets of sampled rows: one-step, n-step and returns-to-go over stored units."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hippogym import Episode, MemoryStore
from hippogym.errors import ValidationError
from hippogym.replay.targets import ValueTargets


def _store() -> MemoryStore:
    store = MemoryStore(embed_dim=4, capacity=32, eviction="fifo")
    keys = torch.nn.functional.normalize(torch.ones(5, 4), dim=1)
    # Unit A: 5 rows, terminated at the end; unit B: 3 rows, truncated.
    store.add(
        Episode(
            observations=torch.arange(6.0).reshape(6, 1),
            actions=torch.zeros(5, 1),
            rewards=torch.tensor([1.0, 0.0, 0.0, 0.0, 10.0]),
            terminated=[0, 0, 0, 0, 1],
        ),
        keys,
    )
    store.add(
        Episode(
            observations=torch.arange(4.0).reshape(4, 1) + 100,
            actions=torch.zeros(3, 1),
            rewards=torch.tensor([1.0, 2.0, 3.0]),
            truncated=[0, 0, 1],
        ),
        keys[:3],
    )
    return store


def test_one_step_is_the_stored_transition() -> None:
    t = ValueTargets(_store(), gamma=0.5, n_steps=1).compute(np.array([0, 4, 6, 7]))
    assert t.rewards.tolist() == [1.0, 10.0, 2.0, 3.0]
    assert t.next_rows.tolist() == [0, 4, 6, 7]
    assert t.terminated.tolist() == [False, True, False, False]
    assert t.truncated.tolist() == [False, False, False, True]
    assert t.discounts.tolist() == [0.5] * 4


def test_n_step_by_hand() -> None:
    t = ValueTargets(_store(), gamma=0.5, n_steps=3, returns=False).compute(np.array([0, 3, 5, 6]))
    # Row 0: 1 + 0 + 0 over 3 rows -> bootstrap from row 2; row 3: 0 + 0.5*10 stops at the terminal.
    assert t.rewards.tolist() == pytest.approx([1.0, 5.0, 1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3])
    assert t.next_rows.tolist() == [2, 4, 7, 7]
    assert t.terminated.tolist() == [False, True, False, False]
    assert t.truncated.tolist() == [False, False, True, True]
    assert t.discounts.tolist() == pytest.approx([0.125, 0.25, 0.125, 0.25])
    assert t.returns is None and t.tail_rows is None


def test_returns_to_go_and_tails_by_hand() -> None:
    t = ValueTargets(_store(), gamma=0.5).compute(np.array([0, 4, 5, 7]))
    assert t.returns.tolist() == pytest.approx([1 + 10 / 16, 10.0, 1 + 1 + 0.75, 3.0])
    assert t.return_discounts.tolist() == pytest.approx([0.0, 0.0, 0.125, 0.5])
    assert t.tail_rows.tolist() == [4, 4, 7, 7]


def test_bad_knobs() -> None:
    with pytest.raises(ValidationError, match="n_steps"):
        ValueTargets(_store(), n_steps=0)
    with pytest.raises(ValidationError, match="gamma"):
        ValueTargets(_store(), gamma=-0.1)
