"""Encoders: featurize transitions, embed them (online + momentum key encoder)."""

from hippogym.encoders.backbones import CNNBackbone, MLPBackbone, SequenceBackbone, build_backbone
from hippogym.encoders.dual import DualEncoder
from hippogym.encoders.features import FieldSpec, ObservationLayout, TransitionFeaturizer

__all__ = [
    "CNNBackbone", "DualEncoder", "FieldSpec", "MLPBackbone", "ObservationLayout",
    "SequenceBackbone", "TransitionFeaturizer", "build_backbone",
]
