"""memory/projection.py: principal-component views of the stored keys."""

from __future__ import annotations

import pytest
import torch

from hippogym import Episode, HippocampalReplayBuffer, KeyProjection, MemoryStore, pca_keys
from hippogym.errors import EmptyMemoryError, ValidationError


def _buffer(units: int = 6) -> HippocampalReplayBuffer:
    buffer = HippocampalReplayBuffer(MemoryStore(embed_dim=16, capacity=1000, seed=0), seed=0)
    gen = torch.Generator().manual_seed(0)
    for i in range(units):
        obs = torch.randn(9, 3, generator=gen) + 4.0 * (i % 2)
        buffer.add_episode(Episode(observations=obs, actions=torch.zeros(8), rewards=torch.full((8,), float(i % 2))))
    return buffer


def test_pca_keys_projects_every_row_with_its_unit_and_return():
    buffer = _buffer()
    view = pca_keys(buffer.memory, n_components=3)
    assert isinstance(view, KeyProjection)
    assert view.coords.shape == (48, 3) and view.components.shape == (3, 16) and view.rows.shape == (48,)
    # The axes are orthonormal, their variance shares are sorted and sum to at most 1.
    assert torch.allclose(view.components @ view.components.T, torch.eye(3), atol=1e-5)
    ev = view.explained_variance
    assert bool((ev[:-1] >= ev[1:]).all()) and 0 < float(ev.sum()) <= 1.0 + 1e-6
    # Coordinates are the centred keys on those axes.
    keys = buffer.memory.keys[view.rows].float()
    assert torch.allclose(view.coords, (keys - view.mean) @ view.components.T, atol=1e-4)
    assert sorted(set(view.returns.tolist())) == [0.0, 8.0]
    # Two clusters of observations, two returns: the first axis separates them.
    first = view.coords[:, 0]
    assert (first[view.returns == 8.0].mean() - first[view.returns == 0.0].mean()).abs() > first.std()


def test_pca_keys_samples_with_a_seed_and_refuses_bad_input():
    buffer = _buffer()
    a, b = pca_keys(buffer.memory, max_rows=10, seed=1), pca_keys(buffer.memory, max_rows=10, seed=1)
    assert a.rows.shape == (10,) and torch.equal(a.rows, b.rows) and torch.equal(a.coords, b.coords)
    with pytest.raises(ValidationError, match="n_components"):
        pca_keys(buffer.memory, n_components=0)
    with pytest.raises(EmptyMemoryError):
        pca_keys(MemoryStore(embed_dim=16, capacity=10))
