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
    fast = Episode.from_validated(
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
        Episode.from_validated(values["states"], values["next_states"], values["actions"], values["rewards"],
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


# ---------------------------------------------------------------- seed parity: infos, targets, slice, dicts
def _ep(T=4, **kw):
    base = dict(
        states=torch.arange(T + 1.0).unsqueeze(1), actions=torch.arange(T), rewards=torch.arange(1.0, T + 1)
    )
    base.update(kw)
    return Episode(**base)


def test_infos_as_a_list_of_per_step_dicts_are_stacked():
    ep = _ep(3, infos=[{"x": 1, "pos": [0.0, 1.0]}, {"x": 2}, None])
    assert ep.infos["x"].tolist() == [1, 2, 0]
    assert ep.infos["pos"].tolist() == [[0.0, 1.0], [0.0, 0.0], [0.0, 0.0]]
    with pytest.raises(ValidationError, match="3 per-step dicts"):
        _ep(3, infos=[{"x": 1}])
    with pytest.raises(ValidationError, match=r"infos\[1\]\['x'\]"):
        _ep(3, infos=[{"x": 1}, {"x": [1, 2]}, {}])
    with pytest.raises(ValidationError, match=r"infos\[0\]\['name'\]"):
        _ep(3, infos=[{"name": "left"}, {}, {}])


def test_returns_and_advantages_are_checked_float_targets():
    ep = _ep(3, returns=np.array([3, 2, 1]), advantages=torch.zeros(3, 1))
    assert ep.returns.dtype == torch.float32 and ep.returns.tolist() == [3.0, 2.0, 1.0]
    assert ep.advantages.shape == (3,)
    with pytest.raises(ValidationError, match="returns"):
        _ep(3, returns=torch.zeros(4))
    with pytest.raises(ValidationError, match="finite"):
        _ep(3, advantages=torch.tensor([0.0, float("nan"), 0.0]))


def test_compute_returns_matches_a_python_loop_and_bootstraps_only_when_not_terminated():
    rng = np.random.default_rng(1)
    rewards = rng.normal(size=37).astype(np.float32)
    ep = Episode(states=torch.zeros(38, 1), actions=torch.zeros(37), rewards=rewards)
    expected, running = [], 0.0
    for r in rewards[::-1]:
        running = float(r) + 0.9 * running
        expected.append(running)
    assert np.allclose(ep.compute_returns(0.9).numpy(), expected[::-1], atol=1e-5)
    boot = ep.compute_returns(0.9, bootstrap_value=2.0).numpy()
    assert np.allclose(boot - ep.compute_returns(0.9).numpy(), 2.0 * 0.9 ** np.arange(37, 0, -1), atol=1e-5)
    done = Episode(states=torch.zeros(38, 1), actions=torch.zeros(37), rewards=rewards, dones=[0] * 36 + [1])
    assert torch.equal(done.compute_returns(0.9, bootstrap_value=2.0), done.compute_returns(0.9))
    kept = ep.with_targets(returns=ep.compute_returns(0.9))
    assert kept.returns is not None and ep.returns is None
    with pytest.raises(ValidationError, match="gamma"):
        ep.compute_returns(1.5)


def test_compute_gae_matches_the_recursive_definition():
    rng = np.random.default_rng(2)
    T, gamma, lam = 9, 0.95, 0.8
    rewards, values = rng.normal(size=T), rng.normal(size=T)
    ep = Episode(states=torch.zeros(T + 1, 2), actions=torch.zeros(T), rewards=rewards)
    adv, ret = ep.compute_gae(values, gamma, lam, bootstrap_value=0.5)
    v = values.astype(np.float32).astype(np.float64)
    r = rewards.astype(np.float32).astype(np.float64)
    gae, expected = 0.0, np.zeros(T)
    for t in reversed(range(T)):
        next_v = 0.5 if t == T - 1 else v[t + 1]
        gae = r[t] + gamma * next_v - v[t] + gamma * lam * gae
        expected[t] = gae
    assert np.allclose(adv.numpy(), expected, atol=1e-5) and np.allclose(ret.numpy(), expected + v, atol=1e-5)
    by_fn, _ = ep.compute_gae(lambda s: torch.as_tensor(values), gamma, lam, bootstrap_value=0.5)
    assert torch.allclose(by_fn, adv)


def test_slice_keeps_real_next_states_and_final_flags_only_at_the_end():
    ep = _ep(5, truncated=[0, 0, 0, 0, 1], success=True, episode_id=7, start_step=10,
             infos={"k": torch.arange(5)}, returns=torch.arange(5.0))
    head = ep.slice(0, 2)
    assert head.states[:, 0].tolist() == [0.0, 1.0] and head.next_states[-1, 0] == 2.0
    assert not head.truncated.any() and head.success is None and head.final_next_state_known
    assert head.episode_id == 7 and head.start_step == 10
    tail = ep.slice(-2, 5)
    assert tail.start_step == 13 and bool(tail.truncated[-1]) and tail.success is True
    assert tail.infos["k"].tolist() == [3, 4] and tail.returns.tolist() == [3.0, 4.0]
    with pytest.raises(ValidationError, match="non-empty range"):
        ep.slice(3, 3)


def test_to_dict_is_plain_data_and_round_trips():
    obs = {"img": torch.randint(0, 255, (4, 2, 2), dtype=torch.uint8), "v": torch.randn(4, 3)}
    ep = Episode(states=obs, actions=torch.tensor([0, 1, 2]), rewards=torch.ones(3), terminated=[0, 0, 1],
                 infos={"x": torch.arange(3)}, returns=torch.ones(3), episode_id=3, start_step=2, success=False,
                 metadata={"task": "a"})
    data = ep.to_dict()

    def plain(v):
        if isinstance(v, dict):
            return all(plain(x) for x in v.values())
        return v is None or isinstance(v, (np.ndarray, int, float, bool, str))

    assert plain(data) and not any(isinstance(v, torch.Tensor) for v in data.values())
    back = Episode.from_dict(data)
    for key in ("img", "v"):
        assert torch.equal(back.states[key], ep.states[key]) and back.states[key].dtype == ep.states[key].dtype
    assert torch.equal(back.terminated, ep.terminated) and torch.equal(back.returns, ep.returns)
    assert (back.episode_id, back.start_step, back.success, back.metadata) == (3, 2, False, {"task": "a"})
    short = Episode.from_dict(_short().to_dict())
    assert not short.final_next_state_known
    as_lists = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in _ep(2).to_dict().items()}
    assert Episode.from_dict(as_lists).episode_return == 3.0
    with pytest.raises(ValidationError, match="format"):
        Episode.from_dict({**data, "format": "other/9"})


def _short():
    return Episode(states=torch.zeros(3, 1), actions=torch.zeros(3), rewards=torch.zeros(3))


def test_from_dict_reads_the_seed_payload():
    payload = {"layout_version": 2, "states": torch.zeros(3, 2), "next_states": torch.ones(3, 2),
               "actions": torch.zeros(3, 1), "rewards": torch.ones(3), "dones": torch.tensor([False, False, True]),
               "infos": [{"a": 1}, {"a": 2}, {"a": 3}], "returns": torch.ones(3), "advantages": None}
    ep = Episode.from_dict(payload)
    assert bool(ep.terminated[-1]) and ep.infos["a"].tolist() == [1, 2, 3]
    assert torch.equal(ep.next_states, torch.ones(3, 2))
