"""replay/settings.py: the buffer's setting groups, their coercion and the old keyword spellings."""

from __future__ import annotations

import warnings

import pytest

from hippogym.errors import ValidationError
from hippogym.replay.settings import (
    FeatureConfig,
    PrioritizedSpec,
    SemanticConfig,
    UniformSpec,
    coerce_features,
    coerce_sampler_spec,
    coerce_semantic,
    legacy_sampler_spec,
    pop_legacy,
)


def test_none_gives_the_defaults_and_dicts_give_their_fields():
    assert coerce_semantic(None) == SemanticConfig()
    assert coerce_semantic({"top_k": 3}).top_k == 3
    assert coerce_features({"context": 4}) == FeatureConfig(context=4)


def test_unknown_fields_and_wrong_types_are_refused_by_name():
    with pytest.raises(ValidationError, match="semantic"):
        coerce_semantic({"top_kk": 3})
    with pytest.raises(ValidationError, match="features"):
        coerce_features(7)


def test_sampler_specs_from_strings_dicts_and_specs():
    assert coerce_sampler_spec(None) == UniformSpec()
    assert coerce_sampler_spec("prioritized") == PrioritizedSpec()
    assert coerce_sampler_spec({"alpha": 0.7}) == PrioritizedSpec(alpha=0.7)
    assert coerce_sampler_spec({"type": "uniform", "beta": 0.2}) == UniformSpec(beta=0.2)
    with pytest.raises(ValidationError, match=r"sampler\['type'\]"):
        coerce_sampler_spec({"type": "ring"})


def test_old_spellings_warn_once_each_and_map_to_the_new_fields():
    kwargs = {"prioritized": True, "alpha": 0.5, "unrelated": 1}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        values = pop_legacy(kwargs, "sampler")
    assert kwargs == {"unrelated": 1}
    assert len(caught) == 2 and all(issubclass(w.category, DeprecationWarning) for w in caught)
    assert legacy_sampler_spec(values) == PrioritizedSpec(0.5, 0.4)  # beta=None reads as 0.4 with priorities
    assert legacy_sampler_spec({}) == UniformSpec(0.0)
