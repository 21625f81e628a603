"""EpisodeIngestor: the one hand-over path of recorders, the SB3 adapter and the Minari loaders."""

from __future__ import annotations

import gc

import pytest
import torch

from hippogym import Episode, HippocampalReplayBuffer
from hippogym.errors import ValidationError
from hippogym.replay.ingest import EpisodeIngestor, ingest_pending


def _ep(n: int, width: int = 2, value: float = 0.0) -> Episode:
    return Episode(observations=torch.full((n + 1, width), value), actions=torch.zeros(n), rewards=torch.ones(n))


def test_every_one_hands_each_unit_over_at_once_in_order():
    buffer = HippocampalReplayBuffer(seed=0)
    ingest = EpisodeIngestor(buffer)
    assert ingest.put([_ep(3), _ep(4)]) == [0, 1]
    assert ingest.put([]) == [] and ingest.pending == 0
    assert (ingest.units_ingested, ingest.transitions_ingested) == (2, 7)
    assert len(buffer) == 7


def test_queue_waits_for_every_transitions_then_hands_over_together():
    buffer = HippocampalReplayBuffer(seed=0)
    ingest = EpisodeIngestor(buffer, every=10)
    assert ingest.put([_ep(4)]) == [0]  # the first unit fixes the memory's layout: no queue yet
    assert ingest.put([_ep(4)]) == [] and ingest.put([_ep(4)]) == []
    assert ingest.pending == 2 and buffer.num_episodes == 1
    assert ingest.put([_ep(4)]) == [1, 2, 3]  # 12 >= 10 transitions waiting
    assert ingest.pending == 0 and ingest.units_ingested == 4


def test_a_bad_unit_is_refused_when_queued_and_nothing_waiting_is_lost():
    buffer = HippocampalReplayBuffer(seed=0)
    ingest = EpisodeIngestor(buffer, every=100)
    ingest.put([_ep(3)])
    ingest.put([_ep(3)])
    with pytest.raises(ValidationError):
        ingest.put([_ep(3, width=5)])  # wrong observation width
    assert ingest.pending == 1
    assert ingest.flush() == [1] and buffer.num_episodes == 2


def test_lowering_every_hands_the_queue_over_first():
    buffer = HippocampalReplayBuffer(seed=0)
    ingest = EpisodeIngestor(buffer, every=100)
    ingest.put([_ep(3)])
    ingest.put([_ep(3, value=1.0)])
    ingest.every = 1
    assert ingest.put([_ep(3, value=2.0)]) == [1, 2]
    assert [float(buffer.episode(i).states[0, 0]) for i in (1, 2)] == [1.0, 2.0]


def test_ingest_pending_and_garbage_collection_hand_queued_units_over():
    buffer = HippocampalReplayBuffer(seed=0)
    ingest = EpisodeIngestor(buffer, every=100)
    ingest.put([_ep(3)])
    ingest.put([_ep(3)])
    assert ingest_pending(HippocampalReplayBuffer(seed=1)) == []  # another buffer: untouched
    assert ingest_pending(buffer) == [1]
    ingest.put([_ep(3)])
    del ingest
    gc.collect()
    assert buffer.num_episodes == 3


@pytest.mark.parametrize("every", [0, -1, 1.5, True, "10"])
def test_every_is_validated_under_the_callers_name(every):
    with pytest.raises(ValidationError, match="ingest_every"):
        EpisodeIngestor(HippocampalReplayBuffer(seed=0), every, name="ingest_every")


def test_buffer_must_accept_episodes():
    with pytest.raises(ValidationError, match="buffer"):
        EpisodeIngestor(object())
