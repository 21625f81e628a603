"""HippoReplayBuffer's value features: n-step samples equal to SB3's, returns-to-go, hindsight, HippoDQN."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

pytest.importorskip("stable_baselines3")

from stable_baselines3 import DQN, HerReplayBuffer
from stable_baselines3.common.buffers import NStepReplayBuffer
from stable_baselines3.common.envs import BitFlippingEnv
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from hippogym.errors import HippoError, ValidationError
from hippogym.integrations.episodic_dqn import HippoDQN
from hippogym.integrations.sb3 import (
    HippoDictReplayBufferSamples,
    HippoReplayBuffer,
    HippoReplayBufferSamples,
)

SMALL = dict(embed_dim=16, mixture_ratio=0.0, query=None, seed=0)
OBS = spaces.Box(-10, 10, (3,), dtype=np.float32)


def _feed(buffers, rng, n_episodes=10):
    """The same random episodes into every buffer (one env); the last episode ends with a done."""
    for i in range(n_episodes):
        length = int(rng.integers(1, 9))
        obs = rng.normal(size=(length + 1, 3)).astype(np.float32)
        terminated = i % 3 != 0
        for t in range(length):
            done = t == length - 1
            info = {"TimeLimit.truncated": done and not terminated}
            step = (obs[t][None], obs[t + 1][None], np.array([[rng.integers(0, 2)]]), np.array([rng.normal()]),
                    np.array([done]), [info])
            for b in buffers:
                b.add(*step)


@pytest.mark.parametrize("n", [1, 3, 5])
def test_nstep_samples_equal_sb3_nstep_replay_buffer(n):
    gamma = 0.9
    ours = HippoReplayBuffer(500, OBS, spaces.Discrete(2), device="cpu", n_steps=n, gamma=gamma, **SMALL)
    ref = NStepReplayBuffer(500, OBS, spaces.Discrete(2), device="cpu", n_steps=n, gamma=gamma)
    _feed([ours, ref], np.random.default_rng(n))
    assert ours.num_pending == 0 and len(ours) == ref.size()
    got = ours.sample(64)
    rows = ours.adapter.last_batch.indices.numpy()  # one env, units in order: rows are SB3's positions
    want = ref._get_samples(rows)
    assert isinstance(got, ReplayBufferSamples)
    np.testing.assert_allclose(got.observations.numpy(), want.observations.numpy())
    np.testing.assert_allclose(got.rewards.numpy(), want.rewards.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got.next_observations.numpy(), want.next_observations.numpy())
    np.testing.assert_array_equal(got.dones.numpy(), want.dones.numpy())
    np.testing.assert_array_equal(got.actions.numpy(), want.actions.numpy())
    if n == 1:
        assert got.discounts is None
    else:
        np.testing.assert_allclose(got.discounts.numpy(), want.discounts.numpy(), rtol=1e-6)


def test_returns_ride_along_by_hand():
    # One terminated episode: rewards 1, 2, 4 with gamma 0.5 -> returns-to-go 3, 4, 4.
    buf = HippoReplayBuffer(100, OBS, spaces.Discrete(2), device="cpu", gamma=0.5, returns=True, **SMALL)
    obs = np.arange(12, dtype=np.float32).reshape(4, 3)
    for t, r in enumerate([1.0, 2.0, 4.0]):
        buf.add(obs[t][None], obs[t + 1][None], np.array([[0]]), np.array([r]), np.array([t == 2]), [{}])
    s = buf.sample(32)
    assert isinstance(s, HippoReplayBufferSamples)
    expected = {0.0: 3.0, 3.0: 4.0, 6.0: 4.0}
    for o, g, d in zip(s.observations[:, 0].tolist(), s.returns[:, 0].tolist(), s.return_discounts[:, 0].tolist()):
        assert g == pytest.approx(expected[o]) and d == 0.0
    np.testing.assert_allclose(s.tail_observations.numpy(), np.repeat(obs[3][None], 32, axis=0))


def test_truncated_unit_tail_starts_at_its_last_next_observation():
    buf = HippoReplayBuffer(100, OBS, spaces.Discrete(2), device="cpu", gamma=0.5, returns=True, **SMALL)
    obs = np.arange(9, dtype=np.float32).reshape(3, 3)
    for t in range(2):
        done = t == 1
        buf.add(obs[t][None], obs[t + 1][None], np.array([[0]]), np.array([1.0]), np.array([done]),
                [{"TimeLimit.truncated": done}])
    s = buf.sample(16)
    first = s.observations[:, 0] == 0
    assert torch.allclose(s.returns[first], torch.tensor(1.5))
    assert torch.allclose(s.return_discounts[first], torch.tensor(0.25))
    assert torch.allclose(s.return_discounts[~first], torch.tensor(0.5))
    assert torch.equal(s.tail_observations, torch.from_numpy(obs[2]).expand(16, 3))


def _bitflip_episode(buf, env, rng):
    obs, _ = env.reset(seed=int(rng.integers(1 << 30)))
    done = False
    while not done:
        action = env.action_space.sample()
        nxt, reward, term, trunc, _ = env.step(action)
        done = term or trunc
        batch = {k: v[None] for k, v in obs.items()}, {k: v[None] for k, v in nxt.items()}
        buf.add(*batch, np.array([[action]]), np.array([reward]), np.array([done]), [{"TimeLimit.truncated": trunc}])
        obs = nxt


def test_hindsight_rewards_equal_compute_reward_and_goals_come_from_the_unit():
    env = BitFlippingEnv(n_bits=6, max_steps=6)
    env.action_space.seed(0)
    buf = HippoReplayBuffer(
        2_000, env.observation_space, env.action_space, device="cpu", env=env, n_sampled_goal=4,
        goal_selection_strategy="future", gamma=0.9, returns=True, **SMALL,
    )
    rng = np.random.default_rng(0)
    for _ in range(20):
        _bitflip_episode(buf, env, rng)
    s = buf.sample(256)
    assert isinstance(s, HippoDictReplayBufferSamples)
    mask = buf.adapter.last_batch.relabelled.numpy()
    assert 0.7 < mask.mean() < 0.9  # k / (k + 1) = 0.8 of the batch
    ach = s.next_observations["achieved_goal"].numpy()
    want = env.compute_reward(ach, s.next_observations["desired_goal"].numpy(), None)
    np.testing.assert_allclose(s.rewards.numpy().ravel(), want)
    assert torch.equal(s.observations["desired_goal"], s.next_observations["desired_goal"])
    # Relabelled goals are achieved goals of the same unit (future strategy: at or after the row).
    store = buf.hippo.memory
    rows = buf.adapter.last_batch.indices.numpy()[mask]
    goals = s.observations["desired_goal"].numpy()[mask]
    for row, goal in zip(rows, goals):
        slot = int(store.row_slot[row])
        end = int(store.unit_start[slot] + store.unit_length[slot])
        later = store.gather_np(np.arange(row, end))["next_observations"]["achieved_goal"]
        assert (later == goal).all(axis=1).any()
    # Returns-to-go under the new goal: recomputed from the unit's rewards for that goal.
    returns = s.returns.numpy().ravel()[mask]
    for row, goal, got in list(zip(rows, goals, returns))[:10]:
        slot = int(store.row_slot[row])
        end = int(store.unit_start[slot] + store.unit_length[slot])
        achieved = store.gather_np(np.arange(row, end))["next_observations"]["achieved_goal"]
        r = env.compute_reward(achieved, np.repeat(goal[None], end - row, 0), None)
        assert float(got) == pytest.approx(float(np.sum(r * 0.9 ** np.arange(end - row))), abs=1e-5)


def test_hindsight_needs_goal_dicts_and_set_env():
    with pytest.raises(ValidationError, match="observation_space"):
        HippoReplayBuffer(100, OBS, spaces.Discrete(2), device="cpu", compute_reward=lambda a, d, i: 0, **SMALL)
    with pytest.raises(ValidationError, match="env"):
        HippoReplayBuffer(100, OBS, spaces.Discrete(2), device="cpu", n_sampled_goal=2, **SMALL)
    plain = HippoReplayBuffer(100, OBS, spaces.Discrete(2), device="cpu", **SMALL)
    with pytest.raises(HippoError, match="set_env"):
        plain.set_env(BitFlippingEnv(n_bits=3))


def test_hindsight_dqn_trains_like_her_replay_buffer_settings():
    env = BitFlippingEnv(n_bits=4, max_steps=4)
    kwargs = dict(learning_starts=64, batch_size=32, train_freq=1, gradient_steps=1, seed=0, device="cpu")
    model = DQN("MultiInputPolicy", env, replay_buffer_class=HippoReplayBuffer,
                replay_buffer_kwargs=dict(env=env, n_sampled_goal=4, embed_dim=16), **kwargs)
    model.learn(300)
    ref = DQN("MultiInputPolicy", env, replay_buffer_class=HerReplayBuffer,
              replay_buffer_kwargs=dict(n_sampled_goal=4), **kwargs)
    ref.learn(300)
    assert model.replay_buffer.hippo.targets.relabeler is not None
    assert len(model.replay_buffer) > 0 and model._n_updates > 0 and ref._n_updates > 0


def _shortfall(weight):
    from hippogym.envs import SparseCorridorEnv

    env = SparseCorridorEnv(length=6)
    model = HippoDQN("MlpPolicy", env, episodic_weight=weight, learning_starts=50, batch_size=32, seed=0,
                     device="cpu", replay_buffer_kwargs=dict(embed_dim=16, mixture_ratio=0.0, query=None, seed=0,
                                                             returns=True))
    model.learn(600)
    s = model.replay_buffer.sample(256)
    assert s.returns is not None and torch.isfinite(s.returns).all()
    with torch.no_grad():
        q = torch.gather(model.q_net(s.observations), 1, s.actions.long())
        tail = model.q_net_target(s.tail_observations).max(dim=1).values.reshape(-1, 1)
    return float(torch.relu(s.returns + s.return_discounts * tail - q).mean())


def test_hippodqn_episodic_term_raises_q_towards_stored_returns():
    # Same seed, same data stream until the losses differ: the one-sided term closes the gap
    # between Q and the returns the agent actually reached; plain DQN (weight 0) does not.
    plain, episodic = _shortfall(0.0), _shortfall(1.0)
    assert episodic < 0.5 * plain


def test_hippodqn_gamma_mismatch_and_weight_checks():
    from hippogym.envs import SparseCorridorEnv as SparseCorridor

    with pytest.raises(ValidationError, match="gamma"):
        HippoDQN("MlpPolicy", SparseCorridor(length=4), gamma=0.9, replay_buffer_kwargs=dict(gamma=0.5))
    with pytest.raises(ValidationError, match="episodic_weight"):
        HippoDQN("MlpPolicy", SparseCorridor(length=4), episodic_weight=-1.0)


@pytest.mark.parametrize("priority", ["td", "self_imitation"])
def test_hippodqn_feeds_its_priorities_back_to_a_prioritised_memory(priority):
    from hippogym.envs import SparseCorridorEnv
    from hippogym.replay.settings import SemanticConfig

    model = HippoDQN("MlpPolicy", SparseCorridorEnv(length=6), episodic_weight=0.5, priority=priority,
                     learning_starts=50, batch_size=32, seed=0, device="cpu",
                     replay_buffer_kwargs=dict(embed_dim=16, mixture_ratio=0.5, seed=0,
                                               hippo_kwargs=dict(semantic=SemanticConfig(rows="priority"))))
    buffer = model.replay_buffer.hippo
    assert buffer.prioritized and buffer.semantic.rows == "priority"
    start = buffer.sampler.max_priority
    model.learn(400)
    tree = buffer.sampler.tree
    rows = torch.nonzero(buffer.memory.row_slot >= 0).flatten().numpy()
    leaves = tree.get(rows)
    # Fed-back priorities differ from the initial max priority every new row gets.
    assert np.unique(np.round(leaves, 6)).size > 2 and (leaves > 0).all()
    if priority == "self_imitation":  # shortfalls are never above the largest return gap seen
        assert buffer.sampler.max_priority >= start


def test_hippodqn_priority_is_checked():
    from hippogym.envs import SparseCorridorEnv

    with pytest.raises(ValidationError, match="priority"):
        HippoDQN("MlpPolicy", SparseCorridorEnv(length=4), priority="rank")


def test_hippodqn_weights_its_loss_by_importance_and_anneals_beta_to_its_final_value():
    from hippogym.envs import SparseCorridorEnv

    def trained(importance_weights):
        model = HippoDQN("MlpPolicy", SparseCorridorEnv(length=6), episodic_weight=0.0, priority="td",
                         importance_weights=importance_weights, learning_starts=50, batch_size=32, seed=0,
                         device="cpu", replay_buffer_kwargs=dict(embed_dim=16, mixture_ratio=0.0, query=None, seed=0))
        start = model.replay_buffer.hippo.beta
        model.learn(400)
        return model, start

    weighted, start = trained(True)
    plain, _ = trained(False)
    assert start == pytest.approx(0.4)
    assert weighted.replay_buffer.hippo.beta > 0.95  # annealed towards 1 by the end of learn
    assert plain.replay_buffer.hippo.beta == pytest.approx(0.4)  # untouched without the correction
    batch = weighted.replay_buffer.adapter.last_batch
    assert batch.weights.max() == pytest.approx(1.0) and batch.weights.min() < 1.0  # non-uniform weights
    # Same seeds and settings: the loss weighting is the only difference, and the networks differ.
    a = torch.nn.utils.parameters_to_vector(weighted.q_net.parameters())
    b = torch.nn.utils.parameters_to_vector(plain.q_net.parameters())
    assert not torch.allclose(a, b)
    with pytest.raises(ValidationError, match="beta_final"):
        HippoDQN("MlpPolicy", SparseCorridorEnv(length=4), priority="td", beta_final=1.5)
