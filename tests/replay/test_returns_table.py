"""Per-row returns-to-go follow the store through inserts, evictions and moves."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hippogym import Episode, MemoryStore
from hippogym.errors import ValidationError
from hippogym.replay.returns_table import ReturnTable


def _episode(rewards: list[float], terminated: bool, marker: float = 0.0) -> Episode:
    n = len(rewards)
    term = torch.zeros(n, dtype=torch.bool)
    trunc = torch.zeros(n, dtype=torch.bool)
    (term if terminated else trunc)[-1] = True
    obs = torch.full((n + 1, 2), marker)
    obs[:, 1] = torch.arange(n + 1, dtype=torch.float32)
    return Episode(
        observations=obs, actions=torch.zeros(n, 1), rewards=torch.tensor(rewards), terminated=term, truncated=trunc
    )


def _keys(n: int) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.ones(n, 4), dim=1)


def _by_hand(rewards: list[float], gamma: float) -> list[float]:
    out, g = [], 0.0
    for r in reversed(rewards):
        g = r + gamma * g
        out.append(g)
    return out[::-1]


def test_returns_and_tails_of_known_episodes() -> None:
    store = MemoryStore(embed_dim=4, capacity=64, eviction="fifo")
    table = ReturnTable(store, gamma=0.9)
    a = [0.0, 1.0, 0.0, 2.0]
    b = [1.0, 1.0, 1.0]
    store.add(_episode(a, terminated=True), _keys(4))
    store.add(_episode(b, terminated=False), _keys(3))
    np.testing.assert_allclose(table.returns(np.arange(7)), _by_hand(a, 0.9) + _by_hand(b, 0.9), rtol=1e-6)
    tails = table.tails(np.arange(7))
    # Terminated unit: nothing to bootstrap. Truncated one: gamma^(L - t), tail row = its last.
    np.testing.assert_allclose(tails.discounts, [0, 0, 0, 0, 0.9**3, 0.9**2, 0.9], rtol=1e-6)
    assert tails.rows.tolist() == [3, 3, 3, 3, 6, 6, 6]


def test_follows_eviction_and_rebuild_matches_incremental() -> None:
    store = MemoryStore(embed_dim=4, capacity=10, eviction="fifo")
    table = ReturnTable(store, gamma=0.5)
    rng = np.random.default_rng(0)
    for i in range(12):
        rewards = rng.normal(size=int(rng.integers(1, 5))).round(3).tolist()
        store.add(_episode(rewards, terminated=bool(i % 2), marker=float(i)), _keys(len(rewards)))
        # Every live unit's rows hold exactly the by-hand returns of that unit.
        for slot in store.live_slots().tolist():
            start, length = int(store.unit_start[slot]), int(store.unit_length[slot])
            got = table.returns(np.arange(start, start + length))
            want = _by_hand(store.rewards[start : start + length].tolist(), 0.5)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    incremental = table.table.copy()
    table.on_reset()
    rows, _ = store.rows_of(store.live_slots())
    np.testing.assert_allclose(table.table[rows.numpy()], incremental[rows.numpy()], rtol=1e-6)


def test_bad_gamma_is_refused() -> None:
    with pytest.raises(ValidationError, match="gamma"):
        ReturnTable(MemoryStore(embed_dim=4, capacity=8), gamma=1.5)
