"""The seed README's snippets run as written, with ``hippotorch`` renamed ``hippogym``.

The seed is hippotorch's README (https://github.com/domezsolt/hippotorch, ``README.md``: Quickstart,
the SB3 adapter, Portable Brains). Each snippet below is that text with only the package renamed.
Where a snippet cannot run exactly as printed, the test says why:

* The Quickstart calls ``agent.update(batch)`` on an ``agent`` it never defines (the user's own
  learner): the test supplies one, which reads the batch by the seed's keys.
* The SB3 snippet's ``add`` line is a comment; a second test runs it with one env's unbatched arrays.
* The Hub snippet needs a Hub: the test points ``huggingface_hub`` at the local Hub-compatible
  server (``tests/hubserver``), logged in as ``user`` through ``HF_TOKEN``. Nothing leaves the machine.

The migration table (``docs/migrating_from_hippotorch.md``) must cover every top-level name of
hippotorch 0.5.0 (``hippotorch.__all__``, 37 names), checked at the end.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

QUICKSTART = '''
import torch
from hippogym import Episode, DualEncoder, MemoryStore, Consolidator, HippocampalReplayBuffer

state_dim, action_dim = 4, 1
input_dim = state_dim + action_dim + 1  # +1 for reward

# 1) Encoder and memory
encoder = DualEncoder(input_dim=input_dim, embed_dim=128, momentum=0.995)
memory = MemoryStore(embed_dim=128, capacity=50_000)

# 2) Reward-aware consolidator (sleep phase optimizer)
consolidator = Consolidator(encoder, temperature=0.07, reward_weight=0.5)

# 3) Hybrid replay buffer (semantic + uniform)
buffer = HippocampalReplayBuffer(memory=memory, encoder=encoder, mixture_ratio=0.3,
                                 consolidator=consolidator)

# 4) Record an episode (toy tensors)
T = 32
states = torch.randn(T, state_dim)
actions = torch.randn(T, action_dim)
rewards = torch.randn(T)
dones = torch.zeros(T, dtype=torch.bool)
episode = Episode(states=states, actions=actions, rewards=rewards, dones=dones)
buffer.add_episode(episode)

# 5) Sample with semantic + uniform mixing
query_state = torch.cat([states[0], torch.zeros(action_dim), rewards[0].unsqueeze(0)])
batch = buffer.sample(batch_size=64, query_state=query_state, top_k=5)
agent.update(batch)

# 6) Periodic consolidation ("sleep")
metrics = buffer.consolidate(steps=50, batch_size=64, report_quality=True)
print(metrics)
'''

SB3 = '''
from hippogym import SB3ReplayBufferWrapper, TerminalSegmenter
sb3_buffer = SB3ReplayBufferWrapper(buffer, segmenter=TerminalSegmenter())
# sb3_buffer.add(obs, next_obs, action, reward, done)
'''

HUB = '''
from hippogym import (
    DualEncoder,
    HippocampalReplayBuffer,
    MemoryStore,
    push_memory_to_hub,
    load_memory_from_hub,
)

obs_dim = 42
encoder = DualEncoder(input_dim=obs_dim, embed_dim=128)
memory = MemoryStore(embed_dim=128, capacity=2048)

# Push to hub (requires real hub backend, e.g., huggingface_hub)
push_memory_to_hub(memory, repo_id="user/fetch-reach-expert", private=False)

# Later, load
restored = load_memory_from_hub("user/fetch-reach-expert")

# Or operate via the buffer convenience wrappers
buffer = HippocampalReplayBuffer(memory=memory, encoder=encoder)
buffer.save_to_hub("user/fetch-reach-expert")
restored_memory = buffer.load_memory_from_hub("user/fetch-reach-expert")
'''

#: hippotorch 0.5.0's ``__all__`` (the names a seed user may import from the top level).
SEED_NAMES = (
    "Episode rollout_to_episode EpisodeSegmenter FixedWindowSegmenter GoalAchievementSegmenter "
    "ChangePointSegmenter TerminalSegmenter EpisodeEncoderBackbone DualEncoder VisualEpisodeEncoder "
    "Consolidator HippocampalReplayBuffer SampleMode SamplingConfig SB3ReplayBufferWrapper MemoryStore "
    "WakeSleepTrainer MemoryHealthReport RegressionResult IdentityDualEncoder run_replay_regression "
    "linear_mixture_schedule cosine_mixture_schedule DQNAgent DQNConfig pca_keys pca_keys_with_rewards "
    "log_memory_pca MemoryProjector ProjectionResult visualize_attention_weights IntrinsicConsolidator "
    "push_memory_to_hub load_memory_from_hub query QueryResult HippotorchMemoryWrapper"
).split()


class _Agent:
    """Stands in for the user's learner: reads the batch the seed's way (``batch["states"]``, ...)."""

    def __init__(self) -> None:
        self.seen: list[dict] = []

    def update(self, batch) -> None:
        keys = ("states", "actions", "rewards", "next_states", "dones", "weights")
        self.seen.append({k: batch[k] for k in keys})


def _run(code: str, namespace: dict) -> dict:
    exec(compile(code, "seed-README", "exec"), namespace)  # noqa: S102 - fixed text above
    return namespace


def test_quickstart_runs_as_written_and_the_batch_reads_by_seed_keys(capsys):
    agent = _Agent()
    ns = _run(QUICKSTART, {"agent": agent})
    (seen,) = agent.seen
    assert seen["states"].shape == (64, 4) and seen["next_states"].shape == (64, 4)
    assert seen["actions"].shape == (64, 1) and seen["rewards"].shape == (64,) and seen["dones"].shape == (64,)
    assert int((ns["batch"].modes == 1).sum()) == round(0.3 * 64)  # mixture_ratio=0.3 semantic draws
    assert np.isfinite(ns["metrics"]["loss"]) and "loss" in capsys.readouterr().out


def test_sb3_snippet_runs_as_written():
    ns = _run(QUICKSTART, {"agent": _Agent()})
    _run(SB3, ns)
    assert ns["sb3_buffer"].hippo is ns["buffer"]


def test_sb3_add_with_one_envs_unbatched_arrays():
    ns = _run(QUICKSTART, {"agent": _Agent()})
    _run(SB3, ns)
    before = len(ns["buffer"])
    obs, next_obs = np.zeros(4, np.float32), np.ones(4, np.float32)
    action, reward, done = np.zeros(1, np.float32), 1.0, True
    ns.update(obs=obs, next_obs=next_obs, action=action, reward=reward, done=done)
    _run("sb3_buffer.add(obs, next_obs, action, reward, done)", ns)
    assert len(ns["buffer"]) == before + 1


@pytest.fixture
def local_hub(tmp_path, monkeypatch):
    pytest.importorskip("huggingface_hub")
    import huggingface_hub.constants
    from hubserver import LocalHubServer

    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.chdir(tmp_path)
    with LocalHubServer(root=tmp_path / "hub", tokens={"user-token": "user"}) as server:
        monkeypatch.setenv("HF_TOKEN", "user-token")
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        # What HF_ENDPOINT sets when huggingface_hub is imported (it was imported before this test).
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", server.endpoint)
        monkeypatch.setattr(
            huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE",
            server.endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        )
        yield server


def test_hub_snippet_runs_as_written(local_hub):
    ns = _run(HUB, {})
    assert len(ns["restored"]) == 0  # the empty memory went to the Hub and came back
    from hippogym import MemoryStore

    # buffer.load_memory_from_hub replaces the buffer's memory in place and returns it, as the seed did.
    assert isinstance(ns["restored_memory"], MemoryStore)
    assert ns["buffer"].memory is ns["restored_memory"] and ns["restored_memory"] is not ns["memory"]
    assert [r["status"] for r in local_hub.requests if r["method"] == "POST"]


def test_hub_snippet_with_a_non_empty_memory(local_hub):
    """The same snippet, one line added (an episode stored before the push): the rest runs as written."""
    filled = HUB.replace(
        "memory = MemoryStore(embed_dim=128, capacity=2048)\n",
        "memory = MemoryStore(embed_dim=128, capacity=2048)\n"
        "HippocampalReplayBuffer(memory=memory, encoder=encoder).add_episode(__import__('hippogym').Episode("
        "states=torch.zeros(4, 40), actions=torch.zeros(3, 1), rewards=torch.ones(3)))\n",
    )
    assert filled != HUB
    ns = _run(filled, {"torch": torch})
    assert len(ns["restored"]) == 3 and len(ns["restored_memory"]) == 3
    assert local_hub.requests and any(r["status"] == 200 for r in local_hub.requests)


def test_migration_table_covers_every_seed_name():
    text = (ROOT / "docs" / "migrating_from_hippotorch.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([A-Za-z0-9_]+)`", text, re.M)
    assert sorted(set(rows) & set(SEED_NAMES)) == sorted(SEED_NAMES)
    assert len(SEED_NAMES) == 37


def test_seed_names_with_an_equivalent_import_from_the_top_level():
    import hippogym

    same = [
        "Episode", "FixedWindowSegmenter", "GoalAchievementSegmenter", "ChangePointSegmenter",
        "TerminalSegmenter", "DualEncoder", "Consolidator", "HippocampalReplayBuffer", "SampleMode",
        "SB3ReplayBufferWrapper", "MemoryStore", "push_memory_to_hub", "load_memory_from_hub",
    ]
    for name in same:
        assert getattr(hippogym, name) is not None
    ep = hippogym.Episode(states=torch.zeros(2, 1), actions=torch.zeros(1), rewards=torch.zeros(1))
    assert torch.is_tensor(ep.rewards)
