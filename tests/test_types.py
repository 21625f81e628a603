from __future__ import annotations

import pytest
import torch

import hippogym.encoders.features as features
import hippogym.episode as episode
from hippogym.errors import ValidationError
from hippogym.types import FieldSpec, Observation, ObservationLayout, StepFeaturizer


def test_old_homes_re_export_the_moved_names():
    assert features.ObservationLayout is ObservationLayout and features.FieldSpec is FieldSpec
    assert features.PLAIN == "obs"
    assert episode.Observation is Observation


def test_layout_infers_checks_flattens_and_round_trips_json():
    obs = {"img": torch.full((4, 2, 3), 255, dtype=torch.uint8), "pos": torch.ones(4, 5)}
    layout = ObservationLayout.infer(obs)
    assert layout.is_dict and [f.name for f in layout.fields] == ["img", "pos"] and layout.flat_dim == 11
    flat = layout.flatten(obs)
    assert flat.shape == (4, 11) and flat.dtype == torch.float32 and float(flat[:, :6].max()) == 1.0
    assert ObservationLayout.from_json(layout.to_json()) == layout
    layout.check(obs, "obs")
    with pytest.raises(ValidationError, match="per-step shape"):
        layout.check({"img": obs["img"], "pos": torch.ones(4, 6)}, "obs")
    with pytest.raises(ValidationError):
        layout.check(torch.ones(4, 11), "obs")


def test_transition_featurizer_satisfies_the_step_featurizer_protocol():
    layout = ObservationLayout.infer(torch.zeros(3, 4))
    featurizer: StepFeaturizer = features.TransitionFeaturizer(layout, action_shape=(), num_actions=3, context=2)
    assert featurizer.context == 2 and featurizer.dim == 2 * (4 + 3 + 1)
    steps = featurizer.step_features(torch.zeros(5, 4), torch.zeros(5, dtype=torch.int64), torch.zeros(5))
    assert steps.shape == (5, featurizer.dim // featurizer.context)
