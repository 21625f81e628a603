"""RecordEpisodesVector against hand-built expected episodes, in every autoreset mode.

Each sub-env is a CounterEnv whose observation is ``[env_id, episode, step]`` and whose reward is
``10 * step + action``, so every recorded transition says exactly which sub-env, episode, step and
action it came from. The expected lists are built by replaying the documented semantics of each
mode step by step, independently of the wrapper.
"""

from __future__ import annotations

import logging
from typing import ClassVar

import numpy as np
import pytest
import torch
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

from hippogym import FixedWindowSegmenter, RecordEpisodesVector, TerminalSegmenter

LENGTHS = [(3, 1, 4), (2, 5), (1,)]  # per sub-env: episode lengths cycle (different per sub-env)
STEPS = 14


def actions_at(k: int) -> np.ndarray:
    return np.array([(k + i) % 2 for i in range(len(LENGTHS))])


def expected_units(mode: AutoresetMode, steps: int = STEPS) -> list[dict]:
    """Replay the semantics of ``mode`` per sub-env; whole episodes plus the flushed remainders."""
    units = []
    for i, lengths in enumerate(LENGTHS):
        episode, t, reset_pending, current = 0, 0, False, []
        for k in range(steps):
            if reset_pending:  # NEXT_STEP: this vector step only resets sub-env i
                episode, t, reset_pending = episode + 1, 0, False
                continue
            a = int(actions_at(k)[i])
            current.append(([i, episode, t], a, 10.0 * t + a, [i, episode, t + 1]))
            t += 1
            if t == lengths[episode % len(lengths)]:
                even = episode % 2 == 0
                units.append({"steps": current, "terminated": even, "truncated": not even, "success": even})
                current = []
                if mode == AutoresetMode.NEXT_STEP:
                    reset_pending = True
                else:  # SAME_STEP resets within the step; DISABLED: the test loop resets with a mask
                    episode, t = episode + 1, 0
        if current:
            units.append({"steps": current, "terminated": False, "truncated": False, "success": None})
    return sorted(units, key=lambda u: tuple(u["steps"][0][0]))


def recorded_units(buffer) -> list[dict]:
    units = []
    for ep in buffer.memory.episodes():
        steps = [
            (s.tolist(), int(a), float(r), ns.tolist())
            for s, a, r, ns in zip(ep.states.int(), ep.actions, ep.rewards, ep.next_states.int())
        ]
        assert not bool(ep.terminated[:-1].any() or ep.truncated[:-1].any())
        assert ep.infos["t"].tolist() == [s[0][2] + 1 for s in steps]  # info of each step, not of a reset
        units.append(
            {
                "steps": steps,
                "terminated": bool(ep.terminated[-1]),
                "truncated": bool(ep.truncated[-1]),
                "success": ep.success,
                "episode_id": ep.episode_id,
            }
        )
    return sorted(units, key=lambda u: tuple(u["steps"][0][0]))


def make_fns(counter_env_cls):
    return [lambda i=i: counter_env_cls(env_id=i, lengths=LENGTHS[i]) for i in range(len(LENGTHS))]


def drive(envs, mode: AutoresetMode, steps: int = STEPS) -> None:
    envs.reset(seed=0)
    for k in range(steps):
        _, _, term, trunc, _ = envs.step(actions_at(k))
        if mode == AutoresetMode.DISABLED and (term | trunc).any():
            envs.reset(options={"reset_mask": term | trunc})
    envs.flush()


def check(buffer, mode):
    got = recorded_units(buffer)
    want = expected_units(mode)
    assert [u["steps"] for u in got] == [u["steps"] for u in want]
    for g, w in zip(got, want):
        assert (g["terminated"], g["truncated"], g["success"]) == (w["terminated"], w["truncated"], w["success"])
    ids = [u["episode_id"] for u in got]
    assert len(set(ids)) == len(ids)  # one id per env episode (TerminalSegmenter: one unit each)


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP, AutoresetMode.DISABLED])
def test_sync_vector_env_every_autoreset_mode(mode, counter_env_cls, make_buffer):
    buffer = make_buffer()
    envs = RecordEpisodesVector(SyncVectorEnv(make_fns(counter_env_cls), autoreset_mode=mode), buffer, info_keys=("t",))
    assert envs.autoreset_mode == mode
    drive(envs, mode)
    check(buffer, mode)
    assert envs.transitions_recorded == len(buffer) == sum(len(u["steps"]) for u in expected_units(mode))
    envs.close()


def test_returns_are_passed_through_unchanged(counter_env_cls, make_buffer):
    mode = AutoresetMode.SAME_STEP
    wrapped = RecordEpisodesVector(SyncVectorEnv(make_fns(counter_env_cls), autoreset_mode=mode), make_buffer())
    plain = SyncVectorEnv(make_fns(counter_env_cls), autoreset_mode=mode)
    a, b = wrapped.reset(seed=0), plain.reset(seed=0)
    assert np.array_equal(a[0], b[0])
    for k in range(STEPS):
        a, b = wrapped.step(actions_at(k)), plain.step(actions_at(k))
        for x, y in zip(a[:4], b[:4]):
            assert np.array_equal(x, y)
        assert a[4].keys() == b[4].keys()
        if "final_obs" in a[4]:
            assert all(np.array_equal(x, y) for x, y in zip(a[4]["final_obs"], b[4]["final_obs"]))


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_async_vector_env(mode, counter_env_cls, make_buffer):
    buffer = make_buffer()
    envs = RecordEpisodesVector(
        AsyncVectorEnv(make_fns(counter_env_cls), autoreset_mode=mode, context="fork"), buffer, info_keys=("t",)
    )
    try:
        drive(envs, mode)
    finally:
        envs.close()
    check(buffer, mode)


def test_windows_share_episode_ids_across_a_vector_env(counter_env_cls, make_buffer):
    buffer = make_buffer()
    fns = [lambda i=i: counter_env_cls(env_id=i, lengths=(5,)) for i in range(2)]
    envs = RecordEpisodesVector(SyncVectorEnv(fns), buffer, segmenter=FixedWindowSegmenter(2))
    envs.reset(seed=0)
    for _ in range(5):
        envs.step(np.zeros(2, dtype=np.int64))
    units = list(buffer.memory.episodes())
    assert sorted((int(u.states[0, 0]), u.start_step, len(u)) for u in units) == [
        (0, 0, 2),
        (0, 2, 2),
        (0, 4, 1),
        (1, 0, 2),
        (1, 2, 2),
        (1, 4, 1),
    ]
    ids = {int(u.states[0, 0]): set() for u in units}
    for u in units:
        ids[int(u.states[0, 0])].add(u.episode_id)
    assert all(len(v) == 1 for v in ids.values()) and ids[0] != ids[1]


def test_masked_reset_of_a_running_sub_env_flushes_it(counter_env_cls, make_buffer):
    buffer = make_buffer()
    fns = [lambda i=i: counter_env_cls(env_id=i, lengths=(10,)) for i in range(2)]
    envs = RecordEpisodesVector(
        SyncVectorEnv(fns, autoreset_mode=AutoresetMode.DISABLED), buffer, segmenter=TerminalSegmenter()
    )
    envs.reset(seed=0)
    envs.step(np.zeros(2, dtype=np.int64))
    envs.step(np.zeros(2, dtype=np.int64))
    envs.reset(options={"reset_mask": np.array([False, True])})
    (unit,) = buffer.memory.episodes()
    assert unit.states[:, 0].tolist() == [1, 1] and not bool(unit.truncated.any() or unit.terminated.any())
    envs.step(np.zeros(2, dtype=np.int64))
    envs.flush()
    units = sorted((u.states[0].tolist(), len(u)) for u in buffer.memory.episodes())
    assert units == [([0.0, 0.0, 0.0], 3), ([1.0, 0.0, 0.0], 2), ([1.0, 1.0, 0.0], 1)]


def test_disabled_mode_ignores_steps_of_ended_sub_envs(counter_env_cls, make_buffer, caplog):
    from gymnasium.vector import VectorEnv

    class Lenient(VectorEnv):
        """DISABLED mode that lets ended sub-envs be stepped (SyncVectorEnv would refuse)."""

        metadata: ClassVar[dict] = {"autoreset_mode": AutoresetMode.DISABLED}

        def __init__(self):
            self.envs = [counter_env_cls(env_id=i, lengths=(1, 2)) for i in range(2)]
            self.num_envs = 2
            self.single_observation_space = self.envs[0].observation_space
            self.single_action_space = self.envs[0].action_space

        def reset(self, *, seed=None, options=None):
            return np.stack([e.reset()[0] for e in self.envs]), {}

        def step(self, actions):
            out = [e.step(a) for e, a in zip(self.envs, actions)]
            return (
                np.stack([o[0] for o in out]),
                np.array([o[1] for o in out]),
                np.array([o[2] for o in out]),
                np.array([o[3] for o in out]),
                {},
            )

    buffer = make_buffer()
    envs = RecordEpisodesVector(Lenient(), buffer)
    envs.reset()
    with caplog.at_level(logging.WARNING, logger="hippogym.wrappers.record"):
        for _ in range(3):
            envs.step(np.zeros(2, dtype=np.int64))
    assert "ignored" in caplog.text
    assert buffer.num_episodes == 2 and len(buffer) == 2  # only the first (one-step) episode of each


def test_same_step_dict_observations_use_final_obs(space_env_cls, make_buffer):
    from gymnasium import spaces

    obs_space = spaces.Dict({"a": spaces.Box(-1.0, 1.0, (2,), np.float32), "b": spaces.Discrete(5)})
    fns = [lambda: space_env_cls(obs_space, spaces.Discrete(2), length=2) for _ in range(2)]
    buffer = make_buffer()
    envs = RecordEpisodesVector(SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP), buffer)
    envs.reset(seed=0)
    envs.step(np.zeros(2, dtype=np.int64))
    _, _, _, trunc, infos = envs.step(np.zeros(2, dtype=np.int64))
    assert trunc.all()
    units = list(buffer.memory.episodes())
    assert len(units) == 2
    for i, unit in enumerate(units):
        final = infos["final_obs"][i]
        assert np.array_equal(unit.next_states["a"][-1].numpy(), final["a"])
        assert int(unit.next_states["b"][-1]) == final["b"] and unit.states["b"].dtype == torch.int64
        assert bool(unit.truncated[-1]) and not bool(unit.terminated.any())


def test_vector_success_is_read_from_the_success_key_too(success_key_env_cls):
    import gymnasium as gym

    from hippogym import HippocampalReplayBuffer
    from hippogym.envs import register_envs

    register_envs()
    for mode in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
        vbuffer = HippocampalReplayBuffer(capacity=1000, embed_dim=8, seed=0)
        fns = [lambda: success_key_env_cls(gym.make("hippogym/SparseCorridor-v0", length=3))] * 2
        venv = RecordEpisodesVector(SyncVectorEnv(fns, autoreset_mode=mode), vbuffer)
        venv.reset(seed=0)
        for _ in range(4):  # always right: both sub-envs reach the goal after 2 steps
            venv.step(np.ones(2, dtype=np.int64))
        venv.flush()
        ended = [u.success for u in vbuffer.memory.episodes() if bool(u.terminated[-1])]
        assert len(ended) >= 2 and all(s is True for s in ended), (mode, ended)


def test_vector_recorder_fills_the_manifest_from_the_sub_envs_but_keeps_what_the_user_set():
    # What the user set wins; the vector recorder reads the sub-envs' spec and single spaces.
    import gymnasium as gym

    from hippogym import HippocampalReplayBuffer
    from hippogym.envs import register_envs

    register_envs()
    mine = HippocampalReplayBuffer(capacity=500, embed_dim=8, seed=0)
    mine.provenance["env_id"] = "mine/Env-v0"
    venv = SyncVectorEnv([lambda: gym.make("hippogym/CueRecall-v0", length=3)] * 2)
    RecordEpisodesVector(venv, mine)
    assert mine.provenance["env_id"] == "mine/Env-v0"
    assert mine.spaces["observation_space"] == venv.single_observation_space
