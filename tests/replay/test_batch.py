"""ReplayBatch: a NamedTuple that also reads like the seed's dict batches."""

from __future__ import annotations

import pytest
import torch

from hippogym.replay.batch import SEED_KEYS, ReplayBatch


def _batch():
    return ReplayBatch(*(torch.full((3,), float(i)) for i in range(len(ReplayBatch._fields))))


def test_seed_keys_and_field_names_read_the_same_tensors():
    b = _batch()
    assert b["states"] is b.observations and b["next_states"] is b.next_observations
    assert b["sample_modes"] is b.modes and b["sampling_probs"] is b.probabilities
    for name in ReplayBatch._fields:
        assert b[name] is getattr(b, name)
    assert torch.equal(b["dones"], b.terminated.float())
    assert set(SEED_KEYS.values()) <= set(ReplayBatch._fields)


def test_it_stays_a_tuple():
    b = _batch()
    obs, actions, *_ = b
    assert obs is b.observations and b[1] is actions and len(b[2:4]) == 2
    assert b._replace(rewards=torch.zeros(3))["rewards"].sum() == 0
    assert "states" in b and "semantic_probs" not in b and list(b.keys())[-1] == "dones"
    assert b.get("semantic_probs", "none") == "none"
    with pytest.raises(KeyError, match="semantic_probs"):
        b["semantic_probs"]
