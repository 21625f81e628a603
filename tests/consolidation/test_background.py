"""consolidation/background.py: consolidation trained on a worker thread, applied later."""

from __future__ import annotations

import pytest
import torch

from hippogym import Consolidator, DualEncoder, Episode, HippocampalReplayBuffer, MemoryStore
from hippogym.consolidation.background import BackgroundConsolidation
from hippogym.errors import EmptyMemoryError, HippoError, ValidationError


def _buffer(seed: int = 0) -> HippocampalReplayBuffer:
    torch.manual_seed(seed)
    enc = DualEncoder(input_dim=5, embed_dim=16)
    cons = Consolidator(enc, seed=seed)
    buffer = HippocampalReplayBuffer(MemoryStore(embed_dim=16, capacity=2000, seed=seed), enc, consolidator=cons, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    for i in range(12):
        obs = torch.randn(11, 3, generator=gen)
        buffer.add_episode(Episode(observations=obs, actions=torch.zeros(10), rewards=torch.full((10,), float(i % 3))))
    return buffer


def test_background_equals_a_synchronous_call_made_at_start():
    sync, bg = _buffer(), _buffer()
    expected = sync.consolidate(steps=20, batch_size=32)
    job = bg.consolidate(steps=20, batch_size=32, background=True)
    assert isinstance(job, BackgroundConsolidation)
    metrics = bg.apply_consolidation(wait=True)
    assert metrics["steps"] == 20 and metrics["keys_refreshed"] == len(bg) and metrics["train_s"] > 0
    assert metrics["loss"] == pytest.approx(expected["loss"], rel=1e-5)
    for a, b in zip(sync.encoder.state_dict().values(), bg.encoder.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6)
    assert int(bg.encoder.version) == int(sync.encoder.version) == 20
    assert torch.allclose(torch.as_tensor(sync.memory.keys_np), torch.as_tensor(bg.memory.keys_np), atol=1e-5)
    assert bg.consolidator.steps_done == 20 and bg.apply_consolidation() is None  # nothing pending


def test_the_buffer_keeps_working_while_it_trains():
    buffer = _buffer()
    before = {k: v.clone() for k, v in buffer.encoder.state_dict().items()}
    job = buffer.consolidate(steps=30, batch_size=32, background=True)
    # Meanwhile: sampling, retrieval and inserts use the weights the encoder had.
    buffer.sample(16, query_state=torch.zeros(3))
    buffer.add_episode(Episode(observations=torch.randn(6, 3), actions=torch.zeros(5), rewards=torch.ones(5)))
    assert all(torch.equal(before[k], v) for k, v in buffer.encoder.state_dict().items())
    job.wait()
    assert job.done() and not job.applied
    # The next consolidate applies the pending one first, then runs its own.
    metrics = buffer.consolidate(steps=5, batch_size=32)
    assert job.applied and buffer.consolidator.steps_done == 35 and metrics["keys_refreshed"] == len(buffer) == 125
    with pytest.raises(HippoError, match="already been applied"):
        job.apply()


def test_bad_arguments_and_an_empty_memory_are_refused():
    buffer = _buffer()
    with pytest.raises(ValidationError, match="steps"):
        BackgroundConsolidation(buffer.consolidator, buffer.memory, buffer.featurizer, steps=-1)
    with pytest.raises(ValidationError, match="batch_size"):
        BackgroundConsolidation(buffer.consolidator, buffer.memory, buffer.featurizer, batch_size=1)
    with pytest.raises(EmptyMemoryError):
        BackgroundConsolidation(buffer.consolidator, MemoryStore(embed_dim=16, capacity=10), buffer.featurizer)
