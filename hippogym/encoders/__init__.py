"""Encoders: featurize transitions, embed them (online + momentum key encoder)."""

from hippogym.encoders.backbones import (
    CNNBackbone,
    IdentityBackbone,
    MLPBackbone,
    SequenceBackbone,
    build_backbone,
)
from hippogym.encoders.dual import DualEncoder
from hippogym.encoders.features import FieldSpec, ObservationLayout, TransitionFeaturizer

__all__ = [
    "CNNBackbone", "DualEncoder", "FieldSpec", "IdentityBackbone", "MLPBackbone", "ObservationLayout",
    "SequenceBackbone", "TransitionFeaturizer", "build_backbone",
]
