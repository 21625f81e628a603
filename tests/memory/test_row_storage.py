"""RowStorageMixin: row storage allocated small, grown by doubling up to capacity, exact after growth."""

from __future__ import annotations

import torch

from hippogym import Episode, MemoryStore
from hippogym.memory.rows import grown


def test_row_storage_grows_as_rows_are_used_and_keeps_what_it_holds():
    from hippogym.memory.row_storage import INITIAL_ROWS

    big = MemoryStore(embed_dim=8, capacity=1_000_000, seed=0)
    full = MemoryStore(embed_dim=8, capacity=20_000, seed=0)  # reaches its capacity
    g = torch.Generator().manual_seed(0)
    first = Episode(states=torch.randn(101, 3, generator=g), actions=torch.zeros(100, 1), rewards=torch.ones(100))
    keys = torch.nn.functional.normalize(torch.randn(100, 8, generator=g), dim=1)
    big.add(first, keys)
    assert big.rows_allocated == INITIAL_ROWS and big.keys.shape[0] == INITIAL_ROWS  # not 1M rows up front
    episodes = [
        (Episode(states=torch.randn(101, 3, generator=g), actions=torch.zeros(100, 1), rewards=torch.randn(100, generator=g)),
         torch.nn.functional.normalize(torch.randn(100, 8, generator=g), dim=1))
        for _ in range(260)
    ]
    for ep, k in episodes:
        big.add(ep, k)
        full.add(ep, k)
    assert big.rows_allocated == 32_768 >= big.high_water == 26_100  # doubled as needed, not more
    assert full.rows_allocated == 20_000  # never past capacity, then the ring wraps
    last = torch.arange(big.high_water - 100, big.high_water)
    assert torch.equal(big.gather(last)["observations"], episodes[-1][0].states)
    assert torch.equal(big.keys[last], episodes[-1][1].to(big.keys.dtype))
    clone = MemoryStore(embed_dim=8, capacity=1_000_000)
    clone.load_state_dict(big.state_dict())
    assert clone.rows_allocated == big.rows_allocated
    assert torch.equal(clone.sample_rows(500), big.sample_rows(500))


def test_grown_keeps_rows_and_zero_fills():
    t = torch.arange(6).reshape(3, 2)
    out = grown(t, 5)
    assert out.shape == (5, 2) and torch.equal(out[:3], t) and not out[3:].any() and out.dtype == t.dtype
