"""Stable-Baselines3 integration: HippoReplayBuffer inside real (short) DQN/SAC/TD3 runs, the adapter."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

pytest.importorskip("stable_baselines3")

from stable_baselines3 import DQN, SAC, TD3
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.type_aliases import (
    DictReplayBufferSamples,
    ReplayBufferSamples,
)
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from hippogym import Episode, HippocampalReplayBuffer
from hippogym.errors import EmptyMemoryError, ValidationError
from hippogym.integrations.sb3 import (
    HippoCallback,
    HippoReplayBuffer,
    SB3ReplayBufferWrapper,
)
from hippogym.replay.batch import SampleMode
from hippogym.segmentation import FixedWindowSegmenter

SMALL = dict(embed_dim=16)


def reference_format(observation_space, action_space, n_envs=1):
    """Shapes (without batch) and dtypes of what SB3's own ReplayBuffer samples."""
    ref = ReplayBuffer(64, observation_space, action_space, device="cpu", n_envs=n_envs)
    obs = np.stack([observation_space.sample() for _ in range(n_envs)])
    action = np.stack([action_space.sample() for _ in range(n_envs)])
    ref.add(obs, obs, action, np.zeros(n_envs), np.zeros(n_envs), [{}] * n_envs)
    return [(tuple(x.shape[1:]), x.dtype) for x in ref.sample(4)[:5]]


def assert_sb3_format(samples, reference, batch_size):
    assert isinstance(samples, ReplayBufferSamples) and samples.discounts is None
    got = [(tuple(x.shape[1:]), x.dtype) for x in samples[:5]]
    assert got == reference
    assert all(x.shape[0] == batch_size for x in samples[:5])


def assert_units_are_contiguous(hippo):
    """Every stored unit is one env's run: its next observations chain into its observations."""
    for ep in hippo.memory.episodes():
        assert torch.equal(ep.states[1:], ep.next_states[:-1])
        assert not bool(ep.terminated[:-1].any() or ep.truncated[:-1].any())


def test_dqn_cartpole_one_env_trains_through_the_memory():
    model = DQN(
        "MlpPolicy", "CartPole-v1", learning_starts=100, buffer_size=10_000, batch_size=32, seed=0,
        policy_kwargs=dict(net_arch=[32]), replay_buffer_class=HippoReplayBuffer,
        replay_buffer_kwargs=dict(consolidate_every=250, consolidate_steps=5, **SMALL),
    )
    rb = model.replay_buffer
    assert isinstance(rb, HippoReplayBuffer) and isinstance(rb, ReplayBuffer)
    assert not hasattr(rb, "observations")  # SB3's own arrays were never allocated
    calls = []
    original = rb.hippo.sample
    rb.hippo.sample = lambda *a, **kw: calls.append(kw.get("query_state")) or original(*a, **kw)
    model.learn(600, callback=HippoCallback())

    assert rb.num_received == model.num_timesteps == 600
    assert rb.size() == 600 and not rb.full  # SB3's counters: rows of n_envs transitions
    assert len(rb) + rb.num_pending == 600
    assert rb.flush() > 0 and rb.num_pending == 0
    assert rb.hippo.memory.total_added == 600  # nothing lost, nothing stored twice
    assert_units_are_contiguous(rb.hippo)
    # Consolidation ran every 250 env steps and reported to the model's logger.
    assert rb.adapter.num_consolidations == 2 and "loss" in rb.adapter.last_consolidation
    assert rb.adapter.sb3_logger is model.logger
    # SB3 sampled through the memory with the recent observation as the query.
    assert len(calls) == (600 - 100) // 4 and all(q is not None and tuple(q.shape) == (1, 4) for q in calls)
    samples = rb.sample(64)
    assert_sb3_format(samples, reference_format(model.observation_space, model.action_space), 64)
    assert set(np.unique(samples.actions.numpy())) <= {0, 1}
    # What the buffer and the callback know goes into the manifest of a saved memory.
    assert rb.hippo.provenance == {"env_id": "CartPole-v1", "algorithm": "DQN"}
    assert rb.hippo.spaces == {"observation_space": model.observation_space, "action_space": model.action_space}


class _Twin(HippoReplayBuffer):
    """Also feeds SB3's own ReplayBuffer, to compare what each one stores."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reference = ReplayBuffer(*args[:3], device="cpu", n_envs=self.n_envs)

    def add(self, *args):
        self.reference.add(*args)
        super().add(*args)


def _rows(obs, actions, rewards, next_obs, dones):
    table = np.concatenate([np.asarray(x, np.float64).reshape(len(obs), -1) for x in (obs, actions, rewards, next_obs, dones)], 1)
    return table[np.lexsort(table.T[::-1])]


def test_dqn_cartpole_four_envs_stores_exactly_what_sb3_stores():
    env = make_vec_env("CartPole-v1", n_envs=4, seed=0)
    model = DQN(
        "MlpPolicy", env, learning_starts=200, buffer_size=10_000, seed=0, train_freq=1,
        policy_kwargs=dict(net_arch=[32]), replay_buffer_class=_Twin, replay_buffer_kwargs=SMALL,
    )
    model.learn(800)
    rb = model.replay_buffer
    assert rb.n_envs == 4 and rb.num_received == model.num_timesteps == 800
    assert rb.size() == rb.reference.size() == 200  # 800 transitions in rows of 4, as SB3 counts them
    assert len(rb) + rb.num_pending == 800
    assert rb.adapter.num_partial_flushes == 0  # episodes had ended before learning started
    q = rb.adapter.recent_query()
    assert tuple(q.shape) == (4, 4)
    assert_units_are_contiguous(rb.hippo)
    ids = [ep.episode_id for ep in rb.hippo.memory.episodes()]
    assert len(ids) == len(set(ids))
    batch = rb.sample(128)
    assert_sb3_format(batch, reference_format(env.observation_space, env.action_space), 128)
    modes = rb.adapter.last_batch.modes
    assert int((modes == SampleMode.SEMANTIC).sum()) == 64  # mixture_ratio 0.5 by default
    # Same transitions as SB3's buffer, with SB3's bootstrap mask (dones without timeouts).
    rb.flush()
    ref, mem, n = rb.reference, rb.hippo.memory, 200
    hw = mem.high_water
    theirs = _rows(ref.observations[:n].reshape(-1, 4), ref.actions[:n].reshape(-1, 1), ref.rewards[:n].reshape(-1),
                   ref.next_observations[:n].reshape(-1, 4), (ref.dones[:n] * (1 - ref.timeouts[:n])).reshape(-1))
    ours = _rows(mem.obs["obs"][:hw], mem.actions[:hw], mem.rewards[:hw], mem.next_obs["obs"][:hw], mem.terminated[:hw])
    assert np.array_equal(theirs, ours)
    assert ours[:, -1].any()  # CartPole's pole falls: some transitions are terminal


def test_sac_pendulum_timeouts_bootstrap_and_first_sample_flushes():
    model = SAC(
        "MlpPolicy", "Pendulum-v1", learning_starts=100, buffer_size=5_000, batch_size=64, seed=0,
        policy_kwargs=dict(net_arch=[32, 32]), replay_buffer_class=HippoReplayBuffer, replay_buffer_kwargs=SMALL,
    )
    model.learn(300)
    rb = model.replay_buffer
    assert rb.num_received == 300
    # Pendulum's episodes last 200 steps: the memory was empty at learning_starts, so the first
    # sample flushed the open segment (101 steps) as a unit of its own...
    assert rb.adapter.num_partial_flushes == 1
    units = list(rb.hippo.memory.episodes())
    assert [len(u) for u in units] == [101, 99]
    assert units[0].episode_id == units[1].episode_id and units[1].start_step == 101
    # ...that ends neither terminated nor truncated, and the episode's time limit is a truncation.
    assert not bool(units[0].terminated[-1] or units[0].truncated[-1])
    assert bool(units[1].truncated[-1]) and not bool(units[1].terminated.any())
    assert len(rb) + rb.num_pending == 300
    rb.flush()
    assert rb.hippo.memory.total_added == 300

    samples = rb.sample(2048)
    batch = rb.adapter.last_batch
    assert batch.truncated.any() and not batch.terminated.any()
    assert float(samples.dones.sum()) == 0.0  # truncated transitions keep bootstrapping
    assert_sb3_format(samples, reference_format(model.observation_space, model.action_space), 2048)
    assert float(samples.actions.abs().max()) <= 1.0  # SB3 stores the rescaled action


def test_td3_smoke():
    model = TD3(
        "MlpPolicy", "Pendulum-v1", learning_starts=50, buffer_size=2_000, batch_size=32, seed=0,
        policy_kwargs=dict(net_arch=[16, 16]), replay_buffer_class=HippoReplayBuffer,
        replay_buffer_kwargs=dict(query=None, **SMALL),
    )
    model.learn(120)
    rb = model.replay_buffer
    assert rb.num_received == 120 and len(rb) + rb.num_pending == 120
    rb.sample(16)
    assert bool((rb.adapter.last_batch.modes == SampleMode.UNIFORM).all())  # query=None: no recall


class _Timeout(gym.Env):
    """A 3-step episode cut by a time limit (info TimeLimit.truncated, as SB3's VecEnv sets it)."""

    observation_space = spaces.Box(-10, 10, (2,), np.float32)
    action_space = spaces.Discrete(2)


def _feed(rb, n_envs=1, steps=3, truncate=True):
    for t in range(steps):
        obs = np.full((n_envs, 2), t, np.float32)
        done = np.full(n_envs, t == steps - 1)
        infos = [{"TimeLimit.truncated": bool(truncate and t == steps - 1)} for _ in range(n_envs)]
        rb.add(obs, obs + 1, np.zeros(n_envs, np.int64), np.ones(n_envs, np.float32), done, infos)


@pytest.mark.parametrize("handle", [True, False])
def test_handle_timeout_termination(handle):
    rb = HippoReplayBuffer(100, _Timeout.observation_space, _Timeout.action_space, "cpu",
                           handle_timeout_termination=handle, seed=0, **SMALL)
    _feed(rb)
    (unit,) = rb.hippo.memory.episodes()
    assert bool(unit.truncated[-1]) is handle and bool(unit.terminated[-1]) is (not handle)
    samples = rb.sample(256)
    last = rb.adapter.last_batch.indices == 2
    assert last.any()
    assert float(samples.dones[last].max()) == (0.0 if handle else 1.0)
    assert float(samples.dones[~last].max()) == 0.0


def test_query_recent_callable_and_none():
    seen = []
    space, act = _Timeout.observation_space, _Timeout.action_space
    rb = HippoReplayBuffer(100, space, act, "cpu", n_envs=2, seed=0, **SMALL)
    _feed(rb, n_envs=2)
    assert torch.equal(rb.adapter.recent_query(), torch.full((2, 2), 3.0))
    original = rb.hippo.sample
    rb.hippo.sample = lambda *a, **kw: seen.append(kw["query_state"]) or original(*a, **kw)
    rb.sample(8)
    assert torch.equal(seen[-1], torch.full((2, 2), 3.0))
    rb.query = lambda buffer: torch.zeros(1, 2)
    rb.sample(8)
    assert torch.equal(seen[-1], torch.zeros(1, 2))
    rb.query = None
    rb.sample(8)
    assert seen[-1] is None
    with pytest.raises(ValidationError):
        HippoReplayBuffer(100, space, act, "cpu", query="oldest")


def test_vecnormalize_normalizes_samples_like_sb3():
    venv = VecNormalize(DummyVecEnv([lambda: gym.make("CartPole-v1")]), gamma=0.9)
    venv.reset()
    for _ in range(50):
        venv.step(np.array([venv.action_space.sample()]))
    rb = HippoReplayBuffer(1000, venv.observation_space, venv.action_space, "cpu", seed=0, **SMALL)
    rng = np.random.default_rng(0)
    for t in range(30):
        obs = rng.normal(size=(1, 4)).astype(np.float32)
        rb.add(obs, obs * 2, np.array([t % 2]), np.array([1.5]), np.array([t % 10 == 9]), [{}])
    samples = rb.sample(32, env=venv)
    raw = rb.adapter.last_batch
    assert np.allclose(samples.observations.numpy(), venv.normalize_obs(raw.observations.numpy()))
    assert np.allclose(samples.next_observations.numpy(), venv.normalize_obs(raw.next_observations.numpy()))
    assert np.allclose(samples.rewards.numpy()[:, 0], venv.normalize_reward(raw.rewards.numpy()))
    assert samples.observations.dtype == torch.float32 and samples.rewards.dtype == torch.float32


def test_adapter_api_for_a_custom_loop():
    hippo = HippocampalReplayBuffer(capacity=1000, embed_dim=16, seed=0)
    rb = SB3ReplayBufferWrapper(hippo, n_envs=2, consolidate_every=40, consolidate_steps=3)
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(2, 3)).astype(np.float32)
    for t in range(60):
        nxt = rng.normal(size=(2, 3)).astype(np.float32)
        done = np.array([t % 7 == 6, t % 11 == 10])
        rb.add(obs, nxt, rng.integers(0, 3, size=2), rng.normal(size=2), done, [{}, {}])
        obs = nxt
    assert rb.num_received == 120 and len(rb) + rb.num_pending == 120
    assert rb.num_consolidations == 3  # at 40, 80 and 120 transitions
    samples = rb.sample(32, query_state=torch.as_tensor(obs))
    assert isinstance(samples, ReplayBufferSamples)
    assert samples.observations.shape == (32, 3) and samples.actions.shape == (32, 1)
    assert samples.actions.dtype == torch.int64 and samples.dones.shape == (32, 1) and samples.rewards.shape == (32, 1)
    assert int((rb.last_batch.modes == SampleMode.SEMANTIC).sum()) == 16
    rb.sample(32)
    assert bool((rb.last_batch.modes == SampleMode.UNIFORM).all())
    rb.sample(8, query_state="recent")
    with pytest.raises(ValidationError):
        rb.add(obs[:1], obs[:1], [0], [0.0], [False], [{}])  # one row for two envs
    with pytest.raises(EmptyMemoryError):
        SB3ReplayBufferWrapper(HippocampalReplayBuffer(capacity=10, embed_dim=16)).sample(4)


def test_long_episodes_are_cut_at_max_unit_length_without_duplicates():
    rb = HippoReplayBuffer(100, _Timeout.observation_space, _Timeout.action_space, "cpu",
                           max_unit_length=10, seed=0, **SMALL)
    _feed(rb, steps=25)
    assert [len(u) for u in rb.hippo.memory.episodes()] == [10, 10, 5]
    assert rb.hippo.memory.total_added == 25 and rb.num_pending == 0
    assert rb.size() == 25


def test_custom_segmenter_windows():
    rb = HippoReplayBuffer(200, _Timeout.observation_space, _Timeout.action_space, "cpu",
                           segmenter=FixedWindowSegmenter(4), seed=0, **SMALL)
    _feed(rb, steps=10)
    assert [len(u) for u in rb.hippo.memory.episodes()] == [4, 4, 2]


def test_loaded_memory_bootstraps_online_training():
    hippo = HippocampalReplayBuffer(capacity=500, embed_dim=16, seed=0)
    hippo.add_episode(Episode(states=np.zeros((6, 4), np.float32), actions=np.zeros(5, np.int64), rewards=np.ones(5)))
    env = gym.make("CartPole-v1")
    rb = HippoReplayBuffer(500, env.observation_space, env.action_space, "cpu", buffer=hippo)
    assert rb.hippo is hippo and len(rb) == 5
    assert rb.sample(4).observations.shape == (4, 4)  # sampleable before any online step
    with pytest.raises(ValidationError, match="actions"):
        HippoReplayBuffer(500, env.observation_space, spaces.Box(-1, 1, (2,), np.float32), "cpu", buffer=hippo)
    with pytest.raises(ValidationError, match="observations"):
        HippoReplayBuffer(500, spaces.Box(-1, 1, (3,), np.float32), env.action_space, "cpu", buffer=hippo)


def test_dict_observations_give_dict_samples():
    space = spaces.Dict({"pos": spaces.Box(-1, 1, (2,), np.float32), "cell": spaces.Discrete(5)})
    rb = HippoReplayBuffer(100, space, spaces.Discrete(3), "cpu", n_envs=2, seed=0, **SMALL)
    for t in range(6):
        obs = {"pos": np.full((2, 2), t, np.float32), "cell": np.array([t % 5, 1])}
        nxt = {"pos": obs["pos"] + 1, "cell": obs["cell"]}
        rb.add(obs, nxt, np.array([1, 2]), np.zeros(2), np.array([t == 5, t == 5]), [{}, {}])
    samples = rb.sample(16)
    assert isinstance(samples, DictReplayBufferSamples)
    assert samples.observations["pos"].shape == (16, 2) and samples.observations["cell"].shape == (16, 1)
    assert samples.observations["cell"].dtype == torch.int64 and samples.actions.shape == (16, 1)


def test_errors_and_rng_hygiene():
    box = spaces.Box(-1, 1, (2,), np.float32)
    with pytest.raises(ValidationError, match="optimize_memory_usage"):
        HippoReplayBuffer(100, box, spaces.Discrete(2), "cpu", optimize_memory_usage=True)
    with pytest.raises(ValidationError, match="observation_space"):
        HippoReplayBuffer(100, spaces.Tuple((box, box)), spaces.Discrete(2), "cpu")
    rb = HippoReplayBuffer(100, box, spaces.Discrete(2), "cpu", **SMALL)
    with pytest.raises(EmptyMemoryError):
        rb.sample(4)
    # Building the buffer, its encoder and consolidating leave the global torch stream alone.
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    rb = HippoReplayBuffer(100, box, spaces.Discrete(2), "cpu", **SMALL)
    _feed(rb, steps=20)
    rb.consolidate()
    assert torch.equal(torch.rand(3), expected)


def test_pickles_like_sb3_save_replay_buffer():
    rb = HippoReplayBuffer(100, _Timeout.observation_space, _Timeout.action_space, "cpu", seed=0, **SMALL)
    _feed(rb, steps=5)
    rb.set_logger(object())  # loggers hold files: never pickled
    clone = pickle.loads(pickle.dumps(rb))
    assert len(clone) == 5 and clone.adapter.sb3_logger is None
    assert torch.equal(clone.sample(8).observations, rb.sample(8).observations)


def test_import_is_light_and_missing_sb3_is_explained():
    code = textwrap.dedent(
        """
        import sys
        import hippogym.integrations
        assert "stable_baselines3" not in sys.modules
        sys.modules["stable_baselines3"] = None
        try:
            from hippogym.integrations import HippoReplayBuffer
        except ImportError as exc:
            assert type(exc).__name__ == "MissingDependencyError" and "hippogym[sb3]" in str(exc), exc
        else:
            raise AssertionError("no error")
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
