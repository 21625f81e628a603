from __future__ import annotations

import numpy as np
import pytest
import torch

from hippogym import Episode
from hippogym.errors import ValidationError


def test_three_observation_forms_normalise_to_T_rows():
    T = 5
    plus_one = Episode(states=torch.arange(T + 1.0).unsqueeze(1), actions=torch.zeros(T, 1), rewards=torch.ones(T))
    assert plus_one.states.shape == (T, 1) and plus_one.next_states[-1, 0] == T
    assert plus_one.final_next_state_known
    explicit = Episode(
        states=torch.zeros(T, 2), next_states=torch.ones(T, 2), actions=torch.zeros(T, 1), rewards=torch.zeros(T)
    )
    assert torch.equal(explicit.next_states, torch.ones(T, 2))
    short = Episode(states=torch.arange(T * 1.0).unsqueeze(1), actions=torch.zeros(T, 1), rewards=torch.zeros(T))
    assert not short.final_next_state_known
    assert short.next_states[-1, 0] == short.states[-1, 0] and short.next_states[0, 0] == 1.0
    assert plus_one.observations.shape == (T + 1, 1)


def test_terminated_and_truncated_are_distinct_and_dones_is_shorthand():
    ep = Episode(states=torch.zeros(4, 2), actions=torch.zeros(3), rewards=torch.zeros(3), truncated=[0, 0, 1])
    assert ep.truncated.tolist() == [False, False, True] and not ep.terminated.any()
    ep = Episode(states=torch.zeros(4, 2), actions=torch.zeros(3), rewards=torch.zeros(3), dones=np.array([0, 0, 1]))
    assert ep.terminated.tolist() == [False, False, True] and not ep.truncated.any()
    with pytest.raises(ValidationError, match="dones"):
        Episode(
            states=torch.zeros(4, 2), actions=torch.zeros(3), rewards=torch.zeros(3),
            dones=[0, 0, 1], terminated=[0, 0, 1],
        )


@pytest.mark.parametrize(
    "kwargs, field, fragment",
    [
        (dict(rewards=torch.zeros(4)), "rewards", "shape (3,)"),
        (dict(rewards=torch.tensor([0.0, float("nan"), 0.0])), "rewards", "finite"),
        (dict(states=torch.full((4, 2), float("inf"))), "states", "finite"),
        (dict(states=torch.zeros(7, 2)), "states", "3 or 4 rows"),
        (dict(terminated=[1, 0, 0]), "terminated", "only at the last step"),
        (dict(actions="left"), "actions", "torch.Tensor or numpy array"),
        (dict(next_states=torch.zeros(3, 5), states=torch.zeros(3, 2)), "next_states", "shape (3, 2)"),
    ],
)
def test_validation_names_field_expected_and_received(kwargs, field, fragment):
    base = dict(states=torch.zeros(4, 2), actions=torch.zeros(3, 1), rewards=torch.zeros(3))
    base.update(kwargs)
    with pytest.raises(ValidationError) as info:
        Episode(**base)
    assert info.value.field.startswith(field)
    assert fragment in str(info.value) and "got" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_dict_and_image_observations_keep_originals():
    T = 3
    obs = {"image": torch.randint(0, 255, (T + 1, 8, 8, 3), dtype=torch.uint8), "vec": torch.randn(T + 1, 2)}
    ep = Episode(states=obs, actions=torch.tensor([0, 1, 2]), rewards=torch.zeros(T), infos={"x": torch.arange(T)})
    assert ep.is_dict and ep.states["image"].dtype == torch.uint8 and ep.next_states["image"].shape == (T, 8, 8, 3)
    assert "image: (8, 8, 3) uint8" in repr(ep)
    with pytest.raises(ValidationError, match="infos"):
        Episode(states=obs, actions=torch.zeros(T), rewards=torch.zeros(T), infos={"x": torch.arange(T + 2)})


def test_episode_is_frozen():
    ep = Episode(states=torch.zeros(2, 1), actions=torch.zeros(1), rewards=torch.zeros(1))
    with pytest.raises(Exception):
        ep.rewards = torch.ones(1)


def test_trusted_constructor_matches_the_validating_one():
    rng = np.random.default_rng(0)
    T = 5
    states = {"b": rng.normal(size=(T, 2)).astype(np.float32), "a": rng.integers(0, 255, (T, 3, 3), dtype=np.uint8)}
    next_states = {k: v.copy() for k, v in states.items()}
    actions = np.array([True, False, True, True, False])
    rewards = rng.normal(size=T)
    infos = {"x": np.arange(T)}
    term = np.zeros(T, bool)
    term[-1] = True
    slow = Episode(
        states=states, next_states=next_states, actions=actions, rewards=rewards, terminated=term,
        truncated=np.zeros(T, bool), infos=infos, episode_id=3, start_step=2, success=True,
    )
    fast = Episode._trusted(
        {k: v.copy() for k, v in states.items()}, {k: v.copy() for k, v in next_states.items()},
        actions.copy(), rewards.copy(), True, False, {"x": np.arange(T)}, 3, 2, True,
    )
    assert list(fast.states) == list(slow.states) == ["a", "b"]
    for k in slow.states:
        assert torch.equal(fast.states[k], slow.states[k]) and torch.equal(fast.next_states[k], slow.next_states[k])
    assert fast.actions.dtype == slow.actions.dtype == torch.int64 and torch.equal(fast.actions, slow.actions)
    assert fast.rewards.dtype == torch.float32 and torch.equal(fast.rewards, slow.rewards)
    assert torch.equal(fast.terminated, slow.terminated) and torch.equal(fast.truncated, slow.truncated)
    assert torch.equal(fast.infos["x"], slow.infos["x"]) and fast.metadata == {}
    assert (fast.episode_id, fast.start_step, fast.success, fast.final_next_state_known) == (3, 2, True, True)
    assert repr(fast) == repr(slow)
    with pytest.raises(Exception):
        fast.rewards = torch.ones(T)  # still frozen


@pytest.mark.parametrize("field", ["states", "next_states", "rewards", "actions"])
def test_trusted_constructor_still_rejects_non_finite_values(field):
    T = 3
    values = dict(states=np.zeros((T, 2), np.float32), next_states=np.zeros((T, 2), np.float32),
                  actions=np.zeros((T, 1), np.float32), rewards=np.zeros(T))
    values[field][-1] = np.inf if field == "rewards" else np.nan
    with pytest.raises(ValidationError, match="finite") as info:
        Episode._trusted(values["states"], values["next_states"], values["actions"], values["rewards"],
                         False, True, None, None, 0, None)
    assert info.value.field == field


def test_observations_is_the_canonical_keyword_and_states_its_alias():
    T = 4
    obs = torch.arange(T + 1.0).unsqueeze(1)
    canonical = Episode(observations=obs, actions=torch.zeros(T, 1), rewards=torch.ones(T))
    seed_name = Episode(states=obs, actions=torch.zeros(T, 1), rewards=torch.ones(T))
    positional = Episode(obs, torch.zeros(T, 1), torch.ones(T))
    for ep in (canonical, seed_name, positional):
        assert torch.equal(ep.observations, obs)  # the T + 1 view
        assert torch.equal(ep.states, obs[:-1]) and torch.equal(ep.next_states, obs[1:])  # per-step views
        assert ep.final_next_state_known
    steps = dict(actions=torch.zeros(T), rewards=torch.zeros(T))
    explicit = Episode(observations=torch.zeros(T, 2), next_observations=torch.ones(T, 2), **steps)
    mixed = Episode(observations=torch.zeros(T, 2), next_states=torch.ones(T, 2), **steps)
    assert torch.equal(explicit.next_states, torch.ones(T, 2)) and torch.equal(mixed.next_states, explicit.next_states)
    assert "observations=(2,) float32" in repr(explicit)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(observations=torch.zeros(4, 2), states=torch.zeros(4, 2)), "states"),
        (
            dict(observations=torch.zeros(3, 2), next_observations=torch.zeros(3, 2), next_states=torch.zeros(3, 2)),
            "next_states",
        ),
        (dict(), "observations"),
        (dict(observations=torch.zeros(7, 2)), "observations"),  # errors name the keyword the caller used
        (dict(states=torch.zeros(7, 2)), "states"),
        (dict(observations=torch.zeros(4, 2), next_observations=torch.zeros(3, 2)), "next_observations"),
        (dict(states=torch.zeros(3, 2), next_states=torch.zeros(3, 5)), "next_states"),
    ],
)
def test_alias_errors_name_the_keyword(kwargs, field):
    with pytest.raises(ValidationError) as info:
        Episode(actions=torch.zeros(3, 1), rewards=torch.zeros(3), **kwargs)
    assert info.value.field == field


def test_missing_actions_or_rewards_is_a_validation_error():
    with pytest.raises(ValidationError, match="`actions`"):
        Episode(observations=torch.zeros(4, 2), rewards=torch.zeros(3))
    with pytest.raises(ValidationError, match="`rewards`"):
        Episode(observations=torch.zeros(4, 2), actions=torch.zeros(3))


def test_dataclasses_replace_keeps_working():
    import dataclasses

    obs = torch.arange(5.0).unsqueeze(1)
    ep = Episode(observations=obs, actions=torch.zeros(4), rewards=torch.ones(4), episode_id=1)
    moved = dataclasses.replace(ep, episode_id=7)
    assert moved.episode_id == 7 and torch.equal(moved.observations, ep.observations)
    assert [f.name for f in dataclasses.fields(Episode)][:3] == ["states", "actions", "rewards"]
