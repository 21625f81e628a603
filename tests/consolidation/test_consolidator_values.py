"""Consolidator(value=...): the reward target compares unit returns or per-transition returns-to-go."""

from __future__ import annotations

import pytest
import torch

from hippogym import Consolidator, DualEncoder, Episode, MemoryStore
from hippogym.errors import ValidationError


def store_with_two_units():
    store = MemoryStore(embed_dim=8, capacity=100, seed=0)
    keys = torch.nn.functional.normalize(torch.randn(5, 8), dim=1)
    store.add(Episode(states=torch.randn(4, 2), actions=torch.zeros(3, 1), rewards=torch.tensor([0.0, 0.0, 1.0]),
                      terminated=torch.tensor([False, False, True])), keys[:3])
    store.add(Episode(states=torch.randn(3, 2), actions=torch.zeros(2, 1), rewards=torch.tensor([2.0, 0.0])), keys[3:])
    return store


def test_values_are_unit_returns_or_returns_to_go_by_hand():
    store = store_with_two_units()
    rows = torch.arange(5)
    unit = Consolidator(DualEncoder(input_dim=4, embed_dim=8), seed=0)
    assert unit.values(store, rows).tolist() == [1.0, 1.0, 1.0, 2.0, 2.0]
    rtg = Consolidator(DualEncoder(input_dim=4, embed_dim=8), value="return_to_go", gamma=0.5, seed=0)
    assert rtg.values(store, rows).tolist() == [0.25, 0.5, 1.0, 2.0, 0.0]
    # Recomputed when the memory changes, not before.
    store.add(Episode(states=torch.randn(2, 2), actions=torch.zeros(1, 1), rewards=torch.tensor([4.0])),
              torch.nn.functional.normalize(torch.randn(1, 8), dim=1))
    assert rtg.values(store, torch.tensor([5])).tolist() == [4.0]


def test_return_to_go_consolidation_runs_and_round_trips():
    from hippogym.encoders.features import TransitionFeaturizer
    from hippogym.types import ObservationLayout

    store = store_with_two_units()
    encoder = DualEncoder(input_dim=4, embed_dim=8)
    consolidator = Consolidator(encoder, value="return_to_go", gamma=0.9, seed=0)
    featurizer = TransitionFeaturizer(ObservationLayout.infer(torch.zeros(1, 2)), (1,))
    metrics = consolidator.consolidate(store, featurizer, steps=3, batch_size=4)
    assert metrics["steps"] == 3 and torch.isfinite(torch.tensor(metrics["loss"]))
    clone = Consolidator.from_config(encoder, consolidator.config())
    assert (clone.value, clone.gamma) == ("return_to_go", 0.9)
    old = {k: v for k, v in consolidator.config().items() if k not in ("value", "gamma")}  # saved before
    assert Consolidator.from_config(encoder, old).value == "unit_return"
    with pytest.raises(ValidationError, match="value"):
        Consolidator(encoder, value="td")
    with pytest.raises(ValidationError, match="gamma"):
        Consolidator(encoder, gamma=1.5)
