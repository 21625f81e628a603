"""Minari adapter: real local Minari datasets (HDF5 and Arrow) in and out of a memory."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

minari = pytest.importorskip("minari")
pytest.importorskip("h5py")

from minari.data_collector.episode_buffer import EpisodeBuffer  # noqa: E402

import hippogym  # noqa: E402
from hippogym import Episode, HippocampalReplayBuffer  # noqa: E402
from hippogym.errors import EmptyMemoryError, MissingDependencyError, ValidationError  # noqa: E402
from hippogym.integrations.minari import (  # noqa: E402
    MinariDatasetNotFoundError,
    episode_from_minari,
    make_segmenter,
    memory_from_minari,
    memory_to_minari,
)
from hippogym.segmentation import FixedWindowSegmenter, RewardEventSegmenter, TerminalSegmenter  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore:`.*` is set to None:UserWarning"),
    pytest.mark.filterwarnings("ignore:env_spec is None:UserWarning"),
]

FORMATS = ("hdf5", "arrow")
KINDS = ("corridor", "goal", "pendulum")


# --------------------------------------------------------------------------- datasets


class TinyGoalEnv(gym.Env):
    """A goal-conditioned point mass: Dict observations (with a nested Dict), continuous actions."""

    observation_space = spaces.Dict({
        "observation": spaces.Box(-10.0, 10.0, (4,), np.float32),
        "achieved_goal": spaces.Box(-10.0, 10.0, (2,), np.float32),
        "desired_goal": spaces.Box(-10.0, 10.0, (2,), np.float32),
        "extra": spaces.Dict({"speed": spaces.Box(-5.0, 5.0, (1,), np.float64)}),
    })
    action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)

    def __init__(self, max_steps: int = 12) -> None:
        self.max_steps = max_steps

    def _obs(self):
        return {
            "observation": np.concatenate([self.pos, self.vel]).astype(np.float32),
            "achieved_goal": self.pos.astype(np.float32),
            "desired_goal": self.goal.astype(np.float32),
            "extra": {"speed": np.array([np.linalg.norm(self.vel)], dtype=np.float64)},
        }

    def _info(self):
        dist = float(np.linalg.norm(self.pos - self.goal))
        return {"is_success": dist < 0.6, "distance": dist, "nested": {"t": self.t}}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = np.zeros(2)
        self.vel = np.zeros(2)
        self.goal = self.np_random.uniform(-1.0, 1.0, 2)
        self.t = 0
        return self._obs(), self._info()

    def step(self, action):
        self.vel = np.clip(np.asarray(action, dtype=np.float64), -1, 1) * 0.5
        self.pos = self.pos + self.vel
        self.t += 1
        info = self._info()
        terminated = bool(info["is_success"])
        truncated = not terminated and self.t >= self.max_steps
        return self._obs(), -info["distance"], terminated, truncated, info


def _stack(items, scalars_as_lists: bool = False):
    """Per-step values stacked like Minari's collector does (scalar infos stay lists)."""
    if isinstance(items[0], dict):
        return {k: _stack([x[k] for x in items], scalars_as_lists) for k in items[0]}
    if scalars_as_lists and np.ndim(items[0]) == 0:
        return list(items)
    return np.asarray(items)


def _record(env, policy, episodes: int, seed: int) -> list[EpisodeBuffer]:
    """Episodes as Minari's collector records them: T + 1 observations and T + 1 info rows."""
    out = []
    for i in range(episodes):
        obs, info = env.reset(seed=seed + i)
        observations, infos = [obs], [info]
        actions, rewards, terms, truncs = [], [], [], []
        done = False
        while not done:
            action = policy(obs)
            obs, reward, terminated, truncated, info = env.step(action)
            observations.append(obs)
            infos.append(info)
            actions.append(action)
            rewards.append(reward)
            terms.append(terminated)
            truncs.append(truncated)
            done = terminated or truncated
        out.append(EpisodeBuffer(
            id=i, observations=_stack(observations), actions=np.asarray(actions), rewards=np.asarray(rewards),
            terminations=np.asarray(terms), truncations=np.asarray(truncs), infos=_stack(infos, True),
        ))
    return out


def _make_kind(kind: str):
    rng = np.random.default_rng(0)
    if kind == "corridor":
        hippogym.register_envs()
        env = gym.make("hippogym/SparseCorridor-v0", length=6, max_steps=10)
        return env, _record(env, lambda _: int(rng.random() < 0.65), 14, 0)
    if kind == "goal":
        env = TinyGoalEnv()
        return env, _record(env, lambda _: rng.uniform(-1, 1, 2).astype(np.float32), 8, 0)
    env = gym.make("Pendulum-v1", max_episode_steps=25)
    return env, _record(env, lambda _: rng.uniform(-2, 2, 1).astype(np.float32), 3, 0)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """One local Minari dataset per (kind, format), under a private MINARI_DATASETS_PATH."""
    root = tmp_path_factory.mktemp("minari")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(root))
        made = {}
        for kind in KINDS:
            env, buffers = _make_kind(kind)
            for fmt in FORMATS:
                made[kind, fmt] = minari.create_dataset_from_buffers(
                    f"{kind}/source-{fmt}-v0", buffers, env=env, algorithm_name="scripted", data_format=fmt,
                )
        yield made


@pytest.fixture
def minari_root(datasets, tmp_path_factory, monkeypatch):
    root = datasets["corridor", "hdf5"].storage.data_path.parents[2]
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


_counter = iter(range(10**6))


def _new_id(prefix: str = "export") -> str:
    return f"out/{prefix}{next(_counter)}-v0"


def _assert_same_episodes(a, b, rewards_f32: bool = True) -> None:
    eps_a, eps_b = list(a.iterate_episodes()), list(b.iterate_episodes())
    assert len(eps_a) == len(eps_b)
    for x, y in zip(eps_a, eps_b):
        _assert_same_tree(x.observations, y.observations)
        assert x.actions.dtype == y.actions.dtype and np.array_equal(x.actions, y.actions)
        assert np.array_equal(np.asarray(x.rewards, np.float32), np.asarray(y.rewards, np.float32))
        assert x.terminations.dtype == y.terminations.dtype == np.bool_
        assert np.array_equal(x.terminations, y.terminations) and np.array_equal(x.truncations, y.truncations)


def _assert_same_tree(x, y) -> None:
    if isinstance(x, dict):
        assert isinstance(y, dict) and set(x) == set(y)
        for k in x:
            _assert_same_tree(x[k], y[k])
    else:
        assert x.dtype == y.dtype and np.array_equal(x, y)


def _flat(obs, prefix=""):
    if isinstance(obs, dict):
        out = {}
        for k, v in obs.items():
            out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out
    return obs


# --------------------------------------------------------------------------- Minari -> memory -> Minari


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_keeps_every_episode(kind, fmt, datasets, minari_root):
    source = datasets[kind, fmt]
    buffer = memory_from_minari(source, embed_dim=16, seed=0, progress=False)
    assert len(buffer) == source.total_steps and buffer.num_episodes == source.total_episodes
    for original, unit in zip(source.iterate_episodes(), buffer.memory.episodes()):
        assert unit.episode_id == original.id and unit.start_step == 0 and len(unit) == len(original.rewards)
        obs = unit.observations  # T + 1 rows, the last one real (Minari's convention)
        flat = _flat(original.observations)
        if isinstance(flat, dict):
            assert set(obs) == set(flat)
            for k in flat:
                assert np.array_equal(obs[k].numpy(), flat[k])
        else:
            assert np.array_equal(obs.numpy(), flat)
        assert unit.final_next_state_known
        assert np.array_equal(unit.actions.numpy(), original.actions)
        assert np.array_equal(unit.rewards.numpy(), original.rewards.astype(np.float32))
        assert np.array_equal(unit.terminated.numpy(), original.terminations)
        assert np.array_equal(unit.truncated.numpy(), original.truncations)

    exported = memory_to_minari(buffer, _new_id(f"{kind}-{fmt}"), data_format=fmt, progress=False)
    _assert_same_episodes(source, exported)
    assert exported.observation_space == source.observation_space
    assert exported.action_space == source.action_space
    if source.env_spec is not None:
        assert exported.env_spec.id == source.env_spec.id and exported.env_spec.kwargs == source.env_spec.kwargs


def test_terminated_and_truncated_stay_distinct(datasets, minari_root):
    source = datasets["corridor", "hdf5"]
    ends = [(bool(e.terminations[-1]), bool(e.truncations[-1])) for e in source.iterate_episodes()]
    assert (True, False) in ends and (False, True) in ends  # the fixture has both kinds
    buffer = memory_from_minari(source, embed_dim=16, seed=0, progress=False)
    for (term, trunc), unit in zip(ends, buffer.memory.episodes()):
        assert (bool(unit.terminated[-1]), bool(unit.truncated[-1])) == (term, trunc)
        assert unit.success is term  # infos["is_success"] at the last step
        assert not bool(unit.terminated[:-1].any() or unit.truncated[:-1].any())


@pytest.mark.parametrize("fmt", FORMATS)
def test_dict_observations_and_infos(fmt, datasets, minari_root):
    source = datasets["goal", fmt]
    buffer = memory_from_minari(source, embed_dim=16, seed=0, progress=False)
    assert [f.name for f in buffer.memory.layout.fields] == ["achieved_goal", "desired_goal", "extra.speed", "observation"]
    assert set(buffer.memory.infos) == {"distance", "is_success", "nested.t"}
    original = next(source.iterate_episodes())
    unit = next(buffer.memory.episodes())
    # Minari's T + 1 info rows: the reset row is dropped, row t is what step t returned.
    assert np.allclose(unit.infos["distance"].numpy(), np.asarray(original.infos["distance"])[1:])
    assert unit.infos["nested.t"].tolist() == list(range(1, len(unit) + 1))
    exported = memory_to_minari(buffer, _new_id(), data_format=fmt, progress=False)
    back = next(exported.iterate_episodes())
    assert set(back.observations) == {"observation", "achieved_goal", "desired_goal", "extra"}
    assert back.observations["extra"]["speed"].dtype == np.float64
    assert np.allclose(np.asarray(back.infos["distance"])[1:], np.asarray(original.infos["distance"])[1:])

    only = memory_from_minari(source, embed_dim=16, seed=0, progress=False, info_keys=["distance"])
    assert set(only.memory.infos) == {"distance"}
    assert [u.success for u in only.memory.episodes()] == [u.success for u in buffer.memory.episodes()]


def test_image_observations_round_trip_exactly(minari_root):
    rng = np.random.default_rng(1)
    env_space = spaces.Box(0, 255, (32, 32, 3), np.uint8)
    buffers = []
    for i in range(2):
        T = 4
        buffers.append(EpisodeBuffer(
            id=i, observations=rng.integers(0, 256, (T + 1, 32, 32, 3), dtype=np.uint8),
            actions=rng.integers(0, 3, T), rewards=rng.normal(size=T).astype(np.float32),
            terminations=np.arange(T) == T - 1, truncations=np.zeros(T, bool),
        ))
    source = minari.create_dataset_from_buffers(
        _new_id("images"), buffers, observation_space=env_space, action_space=spaces.Discrete(3), jpeg_encoding=False,
    )
    buffer = memory_from_minari(source, embed_dim=16, seed=0, progress=False)
    assert buffer.memory.obs["obs"].dtype == torch.uint8
    exported = memory_to_minari(buffer, _new_id(), progress=False)  # no JPEG by default: exact
    _assert_same_episodes(source, exported)


# --------------------------------------------------------------------------- segmenters


def test_overlapping_windows_are_stitched_back(datasets, minari_root):
    source = datasets["corridor", "arrow"]
    segmenter = FixedWindowSegmenter(4, overlap=1)
    buffer = memory_from_minari(source, segmenter=segmenter, embed_dim=16, seed=0, progress=False, chunk_size=5)
    units = list(buffer.memory.episodes())
    assert len(units) > source.total_episodes and all(len(u) <= 4 for u in units)
    assert sum(len(u) for u in units) == len(buffer)  # the default capacity counts the repeated steps
    by_episode: dict[int, list[Episode]] = {}
    for u in units:
        by_episode.setdefault(u.episode_id, []).append(u)
    assert sorted(by_episode) == [int(i) for i in source.episode_indices]
    for parts in by_episode.values():
        assert [p.start_step for p in parts] == [3 * i for i in range(len(parts))]
    assert set(segmenter.info_keys) == {"is_success", "position"}
    assert buffer.segmenter_config["type"] == "FixedWindowSegmenter" and buffer.segmenter_config["overlap"] == 1
    successes = [u.success for u in units if u.success is not None]
    assert len(successes) == source.total_episodes  # known on each episode's last unit only
    exported = memory_to_minari(buffer, _new_id(), progress=False)
    _assert_same_episodes(source, exported)


@pytest.mark.parametrize("spec", ["reward", "terminal", "window:3"])
def test_segmenter_specs_store_every_step(spec, datasets, minari_root):
    source = datasets["corridor", "hdf5"]
    buffer = memory_from_minari(source, segmenter=spec, embed_dim=16, seed=0, progress=False)
    assert len(buffer) == source.total_steps
    units = list(buffer.memory.episodes())
    if spec == "reward":  # every unit ends at a reward event or at the end of its episode
        assert all(float(u.rewards[-1]) != 0 or bool(u.terminated[-1] or u.truncated[-1]) for u in units)
    if spec == "terminal":
        assert len(units) == source.total_episodes
    _assert_same_episodes(source, memory_to_minari(buffer, _new_id(), progress=False))


def test_make_segmenter_specs():
    assert isinstance(make_segmenter("terminal"), TerminalSegmenter)
    window = make_segmenter("window:8:2")
    assert isinstance(window, FixedWindowSegmenter) and (window.n, window.overlap) == (8, 2)
    reward = make_segmenter("reward:0.5:3")
    assert isinstance(reward, RewardEventSegmenter) and (reward.threshold, reward.min_length) == (0.5, 3)
    assert make_segmenter("reward").threshold == 0.0
    for bad in ("", "window", "window:0", "window:4:4", "window:x", "reward:-1", "terminal:3", "tree", "reward:1:2:3"):
        with pytest.raises(ValidationError, match="segmenter"):
            make_segmenter(bad)


# --------------------------------------------------------------------------- streaming, subsets, buffers


def test_chunk_size_does_not_change_the_memory(datasets, minari_root):
    source = datasets["goal", "hdf5"]
    a = memory_from_minari(source, embed_dim=16, seed=3, progress=False, chunk_size=1)
    b = memory_from_minari(source, embed_dim=16, seed=3, progress=False, chunk_size=100)
    assert torch.equal(a.memory.keys, b.memory.keys)
    assert torch.equal(a.memory.unit_source, b.memory.unit_source)


def test_read_ahead_is_invisible_and_reader_errors_surface(datasets, minari_root, monkeypatch):
    import threading

    source = datasets["corridor", "hdf5"]
    a = memory_from_minari(source, embed_dim=16, seed=0, progress=False, chunk_size=3, prefetch=0)
    b = memory_from_minari(source, embed_dim=16, seed=0, progress=False, chunk_size=3, prefetch=3)
    assert torch.equal(a.memory.keys, b.memory.keys) and len(a) == len(b) == source.total_steps
    original = type(source).iterate_episodes
    calls = []

    def failing(self, episode_indices=None):
        calls.append(episode_indices)
        if len(calls) == 2:
            raise OSError("disk on fire")
        return original(self, episode_indices)

    monkeypatch.setattr(type(source), "iterate_episodes", failing)
    with pytest.raises(OSError, match="disk on fire"):
        memory_from_minari(source, embed_dim=16, progress=False, chunk_size=3)
    assert not any(t.name == "hippogym-minari-reader" and t.is_alive() for t in threading.enumerate())
    with pytest.raises(ValidationError, match="prefetch"):
        memory_from_minari(source, prefetch=-1)


def test_segmenter_left_mid_episode_is_reset(datasets, minari_root):
    source = datasets["corridor", "hdf5"]
    segmenter = FixedWindowSegmenter(3)
    segmenter.add(np.zeros(6, np.float32), 1, 0.0, False, False, np.zeros(6, np.float32))
    assert len(segmenter.flush()) == 1 and segmenter.pending() == 0  # its episode is still in progress
    buffer = memory_from_minari(source, segmenter=segmenter, embed_dim=16, seed=0, progress=False)
    assert [u.start_step for u in buffer.memory.episodes()][:2] == [0, 3]
    assert {u.episode_id for u in buffer.memory.episodes()} == set(range(source.total_episodes))
    _assert_same_episodes(source, memory_to_minari(buffer, _new_id(), progress=False))


def test_filtered_dataset_and_existing_buffer(datasets, minari_root):
    source = datasets["corridor", "hdf5"]
    terminated = source.filter_episodes(lambda e: bool(e.terminations[-1]))
    assert 0 < terminated.total_episodes < source.total_episodes
    buffer = HippocampalReplayBuffer(capacity=10_000, embed_dim=16, seed=0)
    out = memory_from_minari(terminated, buffer=buffer, progress=False)
    assert out is buffer and len(buffer) == terminated.total_steps
    assert [u.episode_id for u in buffer.memory.episodes()] == [int(i) for i in terminated.episode_indices]
    assert buffer.provenance["total_episodes"] == terminated.total_episodes
    memory_from_minari(datasets["corridor", "arrow"], buffer=buffer, progress=False)  # adds to it
    assert buffer.provenance["datasets"] == ["corridor/source-hdf5-v0", "corridor/source-arrow-v0"]
    with pytest.raises(ValidationError, match="buffer"):
        memory_from_minari(source, buffer=buffer, capacity=10)


def test_argument_errors(datasets, minari_root):
    source = datasets["corridor", "hdf5"]
    with pytest.raises(ValidationError, match="chunk_size"):
        memory_from_minari(source, chunk_size=0)
    with pytest.raises(ValidationError, match="segmenter"):
        memory_from_minari(source, segmenter=object())
    busy = TerminalSegmenter()
    busy.add(np.zeros(2), 0, 0.0, False, False, np.zeros(2))
    with pytest.raises(ValidationError, match="pending"):
        memory_from_minari(source, segmenter=busy)
    with pytest.raises(ValidationError, match="dataset"):
        memory_from_minari(42)
    with pytest.raises(ValidationError, match="info_keys"):
        memory_from_minari(source, info_keys="distance")


def test_dataset_ids_missing_and_malformed(minari_root):
    with pytest.raises(MinariDatasetNotFoundError, match=r"nowhere/missing-v0.*download") as err:
        memory_from_minari("nowhere/missing-v0")
    assert isinstance(err.value, FileNotFoundError)
    for bad in ("no-version", "a/b", "", "x/y-v"):
        with pytest.raises(ValidationError, match="dataset_id"):
            memory_from_minari(bad)
    by_id = memory_from_minari("corridor/source-hdf5-v0", embed_dim=16, seed=0, progress=False)
    assert by_id.provenance["dataset_id"] == "corridor/source-hdf5-v0"


def test_missing_minari_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "minari", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'hippogym\[minari\]'"):
        memory_from_minari("corridor/source-hdf5-v0")
    with pytest.raises(MissingDependencyError, match="minari"):
        memory_to_minari(HippocampalReplayBuffer(capacity=10, embed_dim=8), "a/b-v0")


def test_provenance_spaces_and_save_load(datasets, minari_root, tmp_path):
    source = datasets["goal", "arrow"]
    buffer = memory_from_minari(source, embed_dim=16, seed=0, progress=False, consolidate_steps=3, consolidate_batch_size=16)
    prov = buffer.provenance
    assert prov["source"] == "minari" and prov["dataset_id"] == source.id
    assert prov["minari_version"] == minari.__version__ and prov["dataset_minari_version"] == source.minari_version
    assert prov["total_steps"] == source.total_steps == prov["transitions_converted"]
    assert prov["consolidate_steps"] == 3 and prov["data_format"] == "arrow"
    assert "env_id" not in prov  # the goal env was not made through gymnasium.make: no spec
    assert int(buffer.encoder.version) > 0
    path = buffer.save(tmp_path / "memory")
    loaded = HippocampalReplayBuffer.load(path)
    assert loaded.provenance == prov
    assert loaded.spaces["observation_space"] == source.observation_space
    exported = memory_to_minari(loaded, _new_id(), progress=False)  # spaces come from the manifest
    assert exported.observation_space == source.observation_space
    _assert_same_episodes(source, exported)


def test_episode_from_minari_checks_the_convention():
    data = SimpleNamespace(
        id=7, observations=np.zeros((4, 2), np.float32), actions=np.zeros(3, np.int64), rewards=np.ones(3),
        terminations=np.array([False, False, True]), truncations=np.zeros(3, bool),
        infos={"success": np.array([False, False, False, True]), "label": np.array(["a", "b", "c", "d"])},
    )
    ep = episode_from_minari(data)
    assert ep.episode_id == 7 and ep.success is True and set(ep.infos) == {"success"}
    with pytest.raises(ValidationError, match="T \\+ 1"):
        episode_from_minari(SimpleNamespace(**{**vars(data), "observations": np.zeros((3, 2))}))
    with pytest.raises(ValidationError, match="Dict and Tuple action spaces"):
        episode_from_minari(SimpleNamespace(**{**vars(data), "actions": {"a": np.zeros(3)}}))
    with pytest.raises(ValidationError, match="numeric"):
        episode_from_minari(SimpleNamespace(**{**vars(data), "observations": ["w"] * 4}))


# --------------------------------------------------------------------------- memory -> Minari


def _hand_buffer() -> HippocampalReplayBuffer:
    """One whole 6-step episode (id 0) and one 12-step episode (id 1) cut in 3 windows, middle missing."""
    g = torch.Generator().manual_seed(0)
    buffer = HippocampalReplayBuffer(capacity=1_000, embed_dim=8, seed=0)
    obs = torch.randn(7, 3, generator=g)
    buffer.add_episode(Episode(states=obs, actions=torch.tensor([0, 1, 2, 1, 0, 1]), rewards=torch.ones(6),
                               terminated=torch.arange(6) == 5, episode_id=0, success=True))
    long_obs = torch.randn(13, 3, generator=g)
    actions = torch.randint(0, 3, (12,), generator=g)
    for start in (0, 8):  # the window starting at step 4 was lost
        end = start + 4
        buffer.add_episode(Episode(states=long_obs[start:end], next_states=long_obs[start + 1 : end + 1],
                                   actions=actions[start:end], rewards=torch.zeros(4),
                                   truncated=torch.arange(4) == 3 if end == 12 else None,
                                   episode_id=1, start_step=start))
    return buffer


def test_partial_episodes_and_inferred_spaces(minari_root):
    buffer = _hand_buffer()
    kept = memory_to_minari(buffer, _new_id(), progress=False)
    assert kept.total_episodes == 3 and [len(e) for e in kept.iterate_episodes()] == [6, 4, 4]
    assert kept.action_space == spaces.Discrete(3)
    assert kept.observation_space == spaces.Box(-np.inf, np.inf, (3,), np.float32)
    first = next(kept.iterate_episodes())
    assert first.infos["success"].tolist() == [False] * 6 + [True]
    dropped = memory_to_minari(buffer, _new_id(), incomplete="drop", progress=False)
    assert dropped.total_episodes == 1 and len(next(dropped.iterate_episodes())) == 6
    with pytest.raises(ValidationError, match="2 of 3"):
        memory_to_minari(buffer, _new_id(), incomplete="error")


def test_segments_from_a_store_are_stitched(minari_root):
    from hippogym import MemoryStore

    g = torch.Generator().manual_seed(1)
    obs, actions = torch.randn(11, 2, generator=g), torch.randn(10, 1, generator=g)
    store = MemoryStore(embed_dim=4, capacity=100)
    for start in (5, 0):  # added out of order: stitched by start_step
        ep = Episode(states=obs[start : start + 5], next_states=obs[start + 1 : start + 6],
                     actions=actions[start : start + 5], rewards=torch.ones(5),
                     terminated=torch.arange(5) == 4 if start == 5 else None, episode_id=4, start_step=start)
        store.add(ep, torch.nn.functional.normalize(torch.randn(5, 4, generator=g), dim=1))
    dataset = memory_to_minari(store, _new_id(), progress=False)
    (episode,) = list(dataset.iterate_episodes())
    assert np.array_equal(episode.observations, obs.numpy()) and np.array_equal(episode.actions, actions.numpy())
    assert episode.terminations.tolist() == [False] * 9 + [True]


def test_export_errors_and_cleanup(datasets, minari_root):
    buffer = memory_from_minari(datasets["corridor", "hdf5"], embed_dim=16, seed=0, progress=False)
    with pytest.raises(ValidationError, match="exists"):
        memory_to_minari(buffer, "corridor/source-hdf5-v0")
    with pytest.raises(ValidationError, match="data_format"):
        memory_to_minari(buffer, _new_id(), data_format="csv")
    with pytest.raises(ValidationError, match="dataset_id"):
        memory_to_minari(buffer, "bad id")
    with pytest.raises(EmptyMemoryError):
        memory_to_minari(HippocampalReplayBuffer(capacity=10, embed_dim=8), _new_id())
    with pytest.raises(ValidationError, match="buffer_or_store"):
        memory_to_minari("not a memory", _new_id())
    target = _new_id()
    with pytest.raises(ValidationError, match="per-step shape"):  # fails while streaming episodes
        memory_to_minari(buffer, target, observation_space=spaces.Box(0, 1, (5,), np.float32), progress=False)
    assert not (minari_root / target).exists()  # the partly written dataset was removed
