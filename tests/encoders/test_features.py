"""TransitionFeaturizer: keys and queries come from one function, whatever form the query takes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hippogym.encoders.features import TransitionFeaturizer
from hippogym.errors import ValidationError
from hippogym.types import ObservationLayout


def featurizer(**kw):
    return TransitionFeaturizer(ObservationLayout.infer(torch.zeros(1, 3)), (2,), **kw)


def test_keys_see_the_observation_only_by_default():
    f = featurizer()
    states, actions, rewards = torch.randn(5, 3), torch.randn(5, 2), torch.randn(5)
    keys = f.episode_features(states, actions, rewards)
    assert keys.shape == (5, 6)
    assert torch.equal(keys[:, :3], states) and not keys[:, 3:].any()  # action and reward slots zero
    assert torch.equal(keys, f.step_features(states, actions, rewards))  # numpy fast path == torch path


@pytest.mark.parametrize("form", ["obs", "obs batched", "obs numpy", "full input", "full input tensor batch", "list"])
def test_every_query_form_gives_the_stored_key_input_exactly(form):
    f = featurizer()
    states, actions, rewards = torch.randn(4, 3), torch.randn(4, 2), torch.rand(4) + 1.0
    key_input = f.episode_features(states, actions, rewards)[1:2].numpy()
    full = torch.cat([states[1], actions[1], rewards[1:2]])  # the seed README's encoder input, action kept
    query = {
        "obs": states[1],
        "obs batched": states[1:2],
        "obs numpy": states[1].numpy(),
        "full input": full.numpy(),
        "full input tensor batch": full[None],
        "list": states[1].tolist(),
    }[form]
    assert np.array_equal(f.query_np(query), key_input)  # action and reward slots ignored


def test_key_action_and_key_reward_keep_those_slots_in_keys_and_queries():
    f = featurizer(key_action=True, key_reward=True)
    states, actions, rewards = torch.randn(3, 3), torch.randn(3, 2), torch.randn(3)
    keys = f.episode_features(states, actions, rewards)
    full = torch.cat([states[0], actions[0], rewards[0:1]])
    assert torch.equal(keys[0], full)
    assert np.array_equal(f.query_np(full), full[None].numpy())


def test_context_windows_ignore_the_same_slots_in_every_step():
    f = featurizer(context=3)
    q = np.arange(18, dtype=np.float32).reshape(1, 18) + 1
    out = f.query_np(q)
    kept = np.zeros(18, dtype=bool)
    for step in range(3):
        kept[step * 6 : step * 6 + 3] = True
    assert np.array_equal(out[0, kept], q[0, kept]) and not out[0, ~kept].any()


def test_non_finite_values_are_refused_even_in_ignored_slots():
    f = featurizer()
    bad = np.array([0.0, 1.0, 2.0, 0.0, 0.0, np.nan], dtype=np.float32)  # NaN reward
    with pytest.raises(ValidationError, match="query_state"):
        f.query_np(bad)
    with pytest.raises(ValidationError, match="query_state"):
        f.query_np(torch.tensor([np.inf, 0.0, 0.0]))


def test_a_config_saved_before_observation_only_keys_keeps_the_reward_in_keys():
    f = featurizer()
    assert TransitionFeaturizer.from_config(f.config()).key_reward is False
    old = {k: v for k, v in f.config().items() if k != "key_reward"}
    assert TransitionFeaturizer.from_config(old).key_reward is True


def test_a_window_query_is_the_key_of_its_last_step():
    from hippogym import ObservationWindow

    f = featurizer(context=3)
    states = torch.randn(6, 3)
    keys = f.episode_features(states, torch.randn(6, 2), torch.randn(6))  # keys over windows of 3
    for t in range(6):
        window = ObservationWindow(states[: t + 1])  # the agent's own observations since the start
        assert np.array_equal(f.query_np(window), keys[t : t + 1].numpy())
    as_list = ObservationWindow([s.numpy() for s in states[:2]])  # a list of single observations
    assert np.array_equal(f.query_np(as_list), keys[1:2].numpy())
    with pytest.raises(ValidationError, match="query_state"):
        f.query_np(ObservationWindow([]))
    with pytest.raises(ValidationError, match="query_state"):
        f.query_np(ObservationWindow(torch.full((2, 3), float("nan"))))


def test_a_dict_window_query_matches_dict_keys():
    from hippogym import ObservationWindow

    layout = ObservationLayout.infer({"a": torch.zeros(1, 2), "b": torch.zeros(1, 1)})
    f = TransitionFeaturizer(layout, (1,), context=2)
    states = {"a": torch.randn(4, 2), "b": torch.randn(4, 1)}
    keys = f.episode_features(states, torch.zeros(4, 1), torch.zeros(4))
    window = ObservationWindow([{"a": states["a"][i], "b": states["b"][i]} for i in range(3)])
    assert np.array_equal(f.query_np(window), keys[2:3].numpy())
