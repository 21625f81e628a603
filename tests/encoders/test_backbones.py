"""IdentityBackbone: features are the embedding."""

from __future__ import annotations

import pytest
import torch

from hippogym import DualEncoder, IdentityBackbone
from hippogym.encoders.backbones import build_backbone
from hippogym.errors import ValidationError


def test_identity_keys_are_the_normalised_padded_features():
    enc = DualEncoder(3, 5, backbone="identity")
    x = torch.tensor([[3.0, 0.0, 4.0], [0.0, 2.0, 0.0]])
    assert torch.allclose(enc.encode_keys(x), torch.tensor([[0.6, 0, 0.8, 0, 0], [0, 1.0, 0, 0, 0]]))
    assert list(enc.parameters()) == [] and enc.encode_queries(x).shape == (2, 5)
    enc.momentum_update()  # nothing to move, no error
    rebuilt = DualEncoder.from_config(enc.config())
    assert isinstance(rebuilt.online, IdentityBackbone)


def test_learnable_identity_has_a_unit_scale_and_bad_widths_fail():
    net = build_backbone({"type": "identity", "input_dim": 4, "embed_dim": 4, "learnable": True})
    x = torch.randn(2, 4)
    assert torch.equal(net(x), x) and [p.shape for p in net.parameters()] == [torch.Size([4])]
    with pytest.raises(ValidationError, match="embed_dim"):
        IdentityBackbone(4, 2)
