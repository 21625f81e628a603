from __future__ import annotations

import pytest
import torch

from hippogym import Consolidator, DualEncoder, Episode, HippocampalReplayBuffer, MemoryStore
from hippogym.consolidation import reward_targets
from hippogym.errors import EmptyMemoryError, ValidationError


def planted(n=160, T=12, rate=0.06, seed=0, shift=3.0):
    """Smooth trajectories; rare successes (+1 at the end) run through a shifted region of state space."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        success = bool(torch.rand(1, generator=g) < rate) or i in (3, 50)
        s = torch.cumsum(torch.randn(T + 1, 6, generator=g) * 0.3, 0) + torch.randn(1, 6, generator=g)
        if success:
            s[:, 0] += shift
        r = torch.zeros(T)
        r[-1] = 1.0 if success else 0.0
        out.append(Episode(states=s, actions=torch.randn(T, 1, generator=g), rewards=r, success=success))
    return out


def test_consolidation_improves_reward_alignment_on_planted_rare_successes():
    torch.manual_seed(0)
    enc = DualEncoder(input_dim=8, embed_dim=32, momentum=0.99)
    cons = Consolidator(enc, temperature=0.07, reward_weight=0.5, lr=1e-3, seed=0)
    buffer = HippocampalReplayBuffer(MemoryStore(embed_dim=32, capacity=5000, seed=0), enc, consolidator=cons, seed=0)
    buffer.add_episodes(planted())
    m = buffer.consolidate(steps=300, batch_size=128, report_quality=True)
    assert m["reward_alignment"] > m["before_reward_alignment"] + 0.2
    assert m["success_precision"] > m["before_success_precision"]
    assert m["success_precision"] > 2 * m["success_base_rate"]
    assert m["effective_rank"] > 0.05  # not collapsed
    assert m["staleness_max"] == 0 and m["keys_refreshed"] == buffer.memory.num_transitions
    assert 0 < m["refresh_share"] < 1 and m["steps_per_s"] > 0


def test_reward_weight_zero_is_plain_temporal_infonce():
    returns = torch.tensor([0.0, 0.0, 1.0, 5.0])
    t = reward_targets(returns, "rank")
    assert torch.allclose(t.sum(1), torch.ones(4))
    assert t[0, 1] > t[0, 2] > t[0, 3]  # closer returns get more target mass
    raw = reward_targets(returns, "raw")
    assert torch.allclose(raw.sum(1), torch.ones(4))
    with pytest.raises(ValidationError):
        reward_targets(returns, "softmax")


def test_rolling_refresh_bounds_staleness():
    enc = DualEncoder(input_dim=8, embed_dim=16)
    cons = Consolidator(enc, refresh="rolling", refresh_fraction=0.5, seed=0)
    buffer = HippocampalReplayBuffer(encoder=enc, consolidator=cons, embed_dim=16, capacity=2000, seed=0)
    buffer.add_episodes(planted(n=20))
    first = buffer.consolidate(steps=5, batch_size=16, report_quality=True)
    assert first["stale_fraction"] == pytest.approx(0.5, abs=0.05)
    second = buffer.consolidate(steps=5, batch_size=16, report_quality=True)
    assert second["staleness_max"] <= 5  # every key re-encoded within 2 calls


def test_auto_refresh_is_full_on_small_memories_and_bounded_on_large_ones():
    enc = DualEncoder(input_dim=8, embed_dim=16)
    small = HippocampalReplayBuffer(MemoryStore(embed_dim=16, capacity=2000, seed=0), enc,
                                    consolidator=Consolidator(enc, seed=0), seed=0)
    small.add_episodes(planted(n=20))  # 240 transitions <= refresh_rows (16,384): a full refresh
    assert small.consolidator.refresh == "auto"
    m = small.consolidate(steps=3, batch_size=16)
    assert m["keys_refreshed"] == 240 and m["stale_fraction"] == 0.0

    enc = DualEncoder(input_dim=8, embed_dim=16)
    cons = Consolidator(enc, refresh_rows=100, seed=0)
    buffer = HippocampalReplayBuffer(MemoryStore(embed_dim=16, capacity=2000, seed=0), enc, consolidator=cons, seed=0)
    buffer.add_episodes(planted(n=20))  # 20 units of 12 steps
    seen = []
    for _ in range(3):
        m = buffer.consolidate(steps=2, batch_size=16)
        # Whole units until 100 rows are reached: 9 units of 12 = 108 rows per call, oldest keys first.
        assert m["keys_refreshed"] == 108
        seen.append(m["stale_fraction"])
    assert seen[0] == pytest.approx(132 / 240) and seen[1] == pytest.approx(132 / 240)
    # After ceil(240 / 108) = 3 calls every key has been re-encoded at least once since the first call.
    versions = buffer.memory.key_version[buffer.memory.rows_of(buffer.memory.live_slots())[0]]
    assert int(versions.min()) >= 2 and int(buffer.encoder.version) == 6
    with pytest.raises(ValidationError, match="refresh_rows"):
        Consolidator(enc, refresh_rows=0)


def test_validation_and_empty_memory():
    enc = DualEncoder(input_dim=8, embed_dim=16)
    with pytest.raises(ValidationError, match="temperature"):
        Consolidator(enc, temperature=0)
    with pytest.raises(ValidationError, match="reward_weight"):
        Consolidator(enc, reward_weight=1.5)
    buffer = HippocampalReplayBuffer(encoder=enc, embed_dim=16, capacity=100)
    with pytest.raises(EmptyMemoryError):
        buffer.consolidate(steps=1)


def test_consolidator_state_round_trip_resumes_identically():
    def run(resume: bool):
        torch.manual_seed(1)
        enc = DualEncoder(input_dim=8, embed_dim=16)
        cons = Consolidator(enc, seed=0)
        buffer = HippocampalReplayBuffer(encoder=enc, consolidator=cons, embed_dim=16, capacity=2000, seed=0)
        buffer.add_episodes(planted(n=30))
        buffer.consolidate(steps=5, batch_size=16)
        if resume:
            state = buffer.state_dict()
            enc2 = DualEncoder(input_dim=8, embed_dim=16)
            cons2 = Consolidator(enc2, seed=99)
            buffer = HippocampalReplayBuffer(encoder=enc2, consolidator=cons2, embed_dim=16, capacity=2000, seed=7)
            buffer.load_state_dict(state)
        buffer.consolidate(steps=5, batch_size=16)
        return buffer.encoder.state_dict(), buffer.memory.keys.clone()

    (w1, k1), (w2, k2) = run(False), run(True)
    assert all(torch.equal(w1[n], w2[n]) for n in w1)
    assert torch.equal(k1, k2)


def test_progress_reports_steps_and_changes_nothing(caplog, monkeypatch):
    import logging
    import sys

    def run(progress):
        torch.manual_seed(0)
        enc = DualEncoder(input_dim=8, embed_dim=16)
        cons = Consolidator(enc, seed=0)
        buffer = HippocampalReplayBuffer(encoder=enc, consolidator=cons, embed_dim=16, capacity=2000, seed=0)
        buffer.add_episodes(planted(n=20))
        return cons.consolidate(buffer.memory, buffer.featurizer, steps=20, batch_size=16, progress=progress)

    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # no tqdm: the fallback logs
    with caplog.at_level(logging.INFO, logger="hippogym.progress"):
        shown = run(True)
    lines = [r.getMessage() for r in caplog.records if r.name == "hippogym.progress"]
    assert any(line.startswith("consolidate: 10/20 step") for line in lines)
    assert lines[-1].startswith("consolidate: 20/20 step in ")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hippogym.progress"):
        quiet = run(False)
    assert not [r for r in caplog.records if r.name == "hippogym.progress"]
    assert shown["loss_first"] == quiet["loss_first"] and shown["loss_last"] == quiet["loss_last"]
