"""The Hub transport takes any object with ``save(path)``: a part of your own, not only a buffer."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub.constants
import pytest
from hubserver import LocalHubServer

from hippogym import MemoryStore
from hippogym.errors import ValidationError
from hippogym.hubio import fetch_memory, push_to_hub
from hippogym.hubio.push import memory_directory

TOKEN = "secret-token"


class OwnPart:
    """A user's object that writes a memory with ``save(path)`` and takes no compression."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.saved: list[Path] = []

    def save(self, path):
        self.saved.append(Path(path))
        return self.store.save(path)


def _store(demo_episodes) -> MemoryStore:
    store = MemoryStore(capacity=200, embed_dim=4)
    import torch

    for episode in demo_episodes:
        store.add(episode, torch.zeros(len(episode), 4))
    return store


@pytest.fixture
def demo_episodes():
    import numpy as np

    from hippogym import Episode

    rng = np.random.default_rng(0)
    return [
        Episode(
            observations=rng.normal(size=(n, 3)).astype("float32"),
            actions=rng.integers(0, 2, size=n),
            rewards=rng.normal(size=n).astype("float32"),
        )
        for n in (5, 7)
    ]


def test_any_saveable_object_is_pushed_and_fetched_back(tmp_path, monkeypatch, demo_episodes):
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    part = OwnPart(_store(demo_episodes))
    with LocalHubServer(tmp_path / "hub", tokens={TOKEN: "alice"}) as hub:
        info = push_to_hub(part, "alice/own-part", token=TOKEN, endpoint=hub.endpoint)
        assert len(part.saved) == 1 and not part.saved[0].exists()  # saved into a temporary directory, then removed
        seen = []
        loaded = fetch_memory(
            "alice/own-part",
            lambda path, mode: seen.append(mode) or MemoryStore.load(path, verify=mode),
            revision=info.oid,
            token=TOKEN,
            endpoint=hub.endpoint,
            cache_dir=tmp_path / "cache",
        )
    assert seen == ["sha256"]  # verify=True: a Hub download is checked against its SHA-256
    assert len(loaded) == len(part.store) == 12 and loaded.num_units == 2


def test_compression_is_refused_for_a_save_without_it(tmp_path, demo_episodes):
    with pytest.raises(ValidationError, match="compression"):
        with memory_directory(OwnPart(_store(demo_episodes)), compression="zstd"):
            pass


def test_an_object_without_save_is_refused_by_name(tmp_path):
    with pytest.raises(ValidationError, match="memory"):
        with memory_directory(object()):
            pass
