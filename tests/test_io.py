"""Saving and loading buffers, stores and encoders through hippo_format."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import gymnasium as gym
import numpy as np
import pytest
import torch

import hippo_format
from hippogym import DualEncoder, Episode, HippocampalReplayBuffer, MemoryStore
from hippogym.io import open_mapped


def make_buffer(prioritized=False, dict_obs=False, seed=0, n=40):
    buffer = HippocampalReplayBuffer(capacity=300, embed_dim=16, seed=seed, prioritized=prioritized)
    g = torch.Generator().manual_seed(seed)
    for i in range(n):
        T = int(torch.randint(3, 12, (1,), generator=g))
        states = (
            {"img": torch.randint(0, 255, (T + 1, 2, 4, 4), dtype=torch.uint8, generator=g), "pos": torch.randn(T + 1, 2, generator=g)}
            if dict_obs else torch.randn(T + 1, 3, generator=g)
        )
        buffer.add_episode(Episode(
            states=states, actions=torch.randint(0, 3, (T,), generator=g), rewards=torch.randn(T, generator=g),
            truncated=[0] * (T - 1) + [i % 2], terminated=[0] * (T - 1) + [1 - i % 2],
            infos={"x": torch.arange(T)}, episode_id=i, success=bool(i % 5 == 0),
        ))
    buffer.consolidate(steps=3, batch_size=8)
    return buffer


@pytest.mark.parametrize("prioritized, dict_obs", [(False, False), (True, False), (False, True)])
def test_round_trip_is_exact_and_sampling_resumes(tmp_path, prioritized, dict_obs):
    a = make_buffer(prioritized, dict_obs)
    path = a.save(tmp_path / "mem")
    b = HippocampalReplayBuffer.load(path)
    store_a, store_b = a.memory, b.memory
    assert torch.equal(store_a.row_slot, store_b.row_slot)  # same ring layout
    live = store_a.row_slot >= 0  # rows freed by eviction hold stale bytes that are not saved
    for name in ("keys", "rewards", "terminated", "truncated", "actions", "key_version", "steps"):
        assert torch.equal(getattr(store_a, name)[live], getattr(store_b, name)[live]), name
    for k in store_a.obs:
        assert torch.equal(store_a.obs[k][live], store_b.obs[k][live])
        assert torch.equal(store_a.next_obs[k][live], store_b.next_obs[k][live])
    assert torch.equal(store_a.infos["x"][live], store_b.infos["x"][live])
    assert list(store_a.order) == list(store_b.order)
    for name in ("unit_id", "unit_return", "unit_success", "unit_hits", "unit_source"):
        assert torch.equal(getattr(store_a, name)[:store_a.num_slots], getattr(store_b, name)[:store_b.num_slots]), name
    query = {"img": store_a.obs["img"][0], "pos": store_a.obs["pos"][0]} if dict_obs else torch.randn(3)
    for _ in range(3):
        x, y = a.sample(16, query_state=query), b.sample(16, query_state=query)
        assert torch.equal(x.indices, y.indices) and torch.equal(x.weights, y.weights)
    # Training continues from the saved encoder, momentum and optimizer state.
    a.consolidate(steps=4, batch_size=8)
    b.consolidate(steps=4, batch_size=8)
    wa, wb = a.encoder.state_dict(), b.encoder.state_dict()
    assert all(torch.equal(wa[n], wb[n]) for n in wa)
    assert torch.equal(store_a.keys[live], store_b.keys[live])


def test_store_and_encoder_save_on_their_own(tmp_path):
    buffer = make_buffer()
    store = MemoryStore.load(buffer.memory.save(tmp_path / "store"))
    live = buffer.memory.row_slot >= 0
    assert torch.equal(store.keys[live], buffer.memory.keys[live]) and store.num_units == buffer.num_episodes
    enc = DualEncoder.from_pretrained(buffer.encoder.save_pretrained(tmp_path / "enc"))
    x = torch.randn(5, buffer.encoder.input_dim)
    assert torch.equal(enc.encode_keys(x), buffer.encoder.encode_keys(x))
    assert int(enc.version) == int(buffer.encoder.version)


def test_spaces_and_provenance_go_into_the_manifest(tmp_path):
    buffer = make_buffer()
    buffer.spaces = {"observation_space": gym.spaces.Box(-1, 1, (3,)), "action_space": gym.spaces.Discrete(3)}
    buffer.provenance = {"env_id": "Toy-v0"}
    path = buffer.save(tmp_path / "m")
    loaded = HippocampalReplayBuffer.load(path)
    assert loaded.spaces["action_space"] == gym.spaces.Discrete(3)
    assert loaded.provenance == {"env_id": "Toy-v0"}
    assert hippo_format.check_conformance(path) == []


def test_corruption_gives_typed_errors_and_never_half_loads(tmp_path):
    path = make_buffer().save(tmp_path / "m")
    keys = path / "keys.safetensors"
    data = bytearray(keys.read_bytes())
    data[-5] ^= 0xFF
    keys.write_bytes(bytes(data))
    with pytest.raises(hippo_format.ChecksumMismatchError):
        HippocampalReplayBuffer.load(path)
    (path / "encoder.safetensors").unlink()
    with pytest.raises(hippo_format.MissingFileError):
        HippocampalReplayBuffer.load(path)
    with pytest.raises(hippo_format.FormatError):
        HippocampalReplayBuffer.load(tmp_path / "nowhere")


def test_a_memory_from_another_producer_is_refused_clearly(tmp_path):
    buffer = make_buffer()
    path = buffer.memory.save(tmp_path / "store-only")  # no encoder section
    with pytest.raises(hippo_format.ManifestError, match="written by hippogym"):
        HippocampalReplayBuffer.load(path)


def test_save_killed_midway_leaves_the_previous_memory_loadable(tmp_path):
    path = tmp_path / "mem"
    make_buffer(n=20).save(path)
    script = textwrap.dedent(f"""
        import torch
        from hippogym import Episode, HippocampalReplayBuffer
        torch.set_num_threads(1)
        b = HippocampalReplayBuffer(capacity=400_000, embed_dim=16, seed=1, eviction="fifo")
        for i in range(300):
            b.add_episode(Episode(states=torch.randn(1001, 3), actions=torch.zeros(1000, dtype=torch.int64), rewards=torch.zeros(1000)))
        print("ready", flush=True)
        while True:
            b.save({str(path)!r})
    """)
    rng = np.random.default_rng(0)
    for delay in rng.uniform(0.05, 0.8, size=3):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(float(delay))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        loaded = HippocampalReplayBuffer.load(path)  # old or new, never broken
        assert loaded.num_episodes in (20, 300)


def test_mapped_memory_samples_lazily(tmp_path):
    buffer = make_buffer()
    path = buffer.save(tmp_path / "m")
    mapped = open_mapped(path, seed=0)
    batch = mapped.sample(32)
    assert len(mapped) == len(buffer) and batch["observations"].shape == (32, 3)
    full = hippo_format.open_memory(path).column("obs")
    assert torch.equal(batch["observations"], torch.from_numpy(np.array(full[batch["indices"].numpy()])))
    mapped.close()
