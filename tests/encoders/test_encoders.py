from __future__ import annotations

import pytest
import torch

from hippogym import DualEncoder, Episode, HippocampalReplayBuffer
from hippogym.encoders.backbones import CNNBackbone, SequenceBackbone, build_backbone
from hippogym.errors import DimensionMismatchError, ValidationError


def test_keys_are_deterministic_normalised_and_span_the_sphere():
    torch.manual_seed(0)
    enc = DualEncoder(input_dim=6, embed_dim=32)
    enc.train(True)
    x = torch.randn(2000, 6)
    k1, k2 = enc.encode_keys(x), enc.encode_keys(x)
    assert torch.equal(k1, k2) and not enc.key.training
    assert torch.allclose(k1.norm(dim=1), torch.ones(2000), atol=1e-5)
    assert (k1 < 0).any(dim=0).all()  # no ReLU before the normalisation: every axis goes negative


def test_momentum_update_moves_keys_towards_the_online_encoder():
    enc = DualEncoder(input_dim=4, embed_dim=8, momentum=0.9)
    with torch.no_grad():
        for p in enc.online.parameters():
            p.add_(torch.randn_like(p))
    gap = lambda: sum(float((k - q).detach().abs().sum()) for k, q in zip(enc.key.parameters(), enc.online.parameters()))  # noqa: E731
    before = gap()
    enc.momentum_update()
    assert gap() == pytest.approx(0.9 * before, rel=1e-4)
    assert int(enc.version) == 1
    assert all(not p.requires_grad for p in enc.key.parameters())


def test_input_checks_and_config_round_trip():
    enc = DualEncoder(input_dim=6, embed_dim=16, hidden=(32,))
    with pytest.raises(DimensionMismatchError, match=r"\[B, 6\]"):
        enc.encode_keys(torch.randn(3, 5))
    clone = DualEncoder.from_config(enc.config())
    clone.load_state_dict(enc.state_dict())
    x = torch.randn(4, 6)
    assert torch.equal(clone.encode_keys(x), enc.encode_keys(x))
    with pytest.raises(ValidationError, match="backbone type"):
        build_backbone({"type": "transformer"})


def test_cnn_backbone_encodes_image_episodes_through_the_buffer():
    T = 6
    obs = {"image": torch.randint(0, 255, (T + 1, 3, 16, 16), dtype=torch.uint8), "pos": torch.randn(T + 1, 2)}
    ep = Episode(states=obs, actions=torch.randint(0, 4, (T,)), rewards=torch.zeros(T))
    input_dim = 3 * 16 * 16 + 2 + 1 + 1
    # sorted keys: "image" first, so the image starts at offset 0
    enc = DualEncoder(input_dim=input_dim, embed_dim=16, backbone={"type": "cnn", "image_shape": [3, 16, 16]})
    assert isinstance(enc.online, CNNBackbone)
    buffer = HippocampalReplayBuffer(encoder=enc, embed_dim=16, capacity=100, seed=0)
    uid = buffer.add_episode(ep)
    batch = buffer.sample(8, query_state={"image": obs["image"][2], "pos": obs["pos"][2]})
    assert batch.observations["image"].dtype == torch.uint8 and batch.observations["image"].shape == (8, 3, 16, 16)
    assert int(buffer.retrieve({"image": obs["image"][2], "pos": obs["pos"][2]}, 1).episode_ids[0, 0]) == uid
    metrics = buffer.consolidate(steps=2, batch_size=4)
    assert metrics["keys_refreshed"] == T


def test_sequence_backbone_with_context_windows():
    context, step_dim = 3, 4 + 1 + 1
    enc = DualEncoder(input_dim=context * step_dim, embed_dim=16, backbone={"type": "sequence", "context": context})
    assert isinstance(enc.online, SequenceBackbone)
    buffer = HippocampalReplayBuffer(encoder=enc, embed_dim=16, capacity=200, context=context, seed=0)
    for i in range(5):
        buffer.add_episode(Episode(states=torch.randn(11, 4), actions=torch.randn(10, 1), rewards=torch.randn(10)))
    assert buffer.sample(16, query_state=torch.randn(4)).observations.shape == (16, 4)
    assert buffer.consolidate(steps=3, batch_size=8)["steps"] == 3


def test_encoder_width_mismatch_names_the_sum():
    enc = DualEncoder(input_dim=5, embed_dim=16)
    buffer = HippocampalReplayBuffer(encoder=enc, embed_dim=16, capacity=100)
    with pytest.raises(DimensionMismatchError, match="observation 4 \\+ action 1 \\+ reward 1"):
        buffer.add_episode(Episode(states=torch.randn(3, 4), actions=torch.randn(2, 1), rewards=torch.zeros(2)))
