"""Overhead of hippogym's integrations: recording wrappers and the SB3 replay buffer.

Prints one JSON object:

* ``record_single``: CartPole steps/s through ``RecordEpisodes`` (segmentation and memory
  ingestion included) vs the raw env, same actions; ``ratio`` = wrapped time / raw time
  (target <= 1.5).
* ``record_single_drop``: the same with a sink that drops every unit (the wrapper and segmenter
  alone: the floor of recording before any memory work).
* ``record_single_batched``: ``RecordEpisodes(..., ingest_every=1024)``: units go to the memory
  about 1024 transitions at a time, with one key-encoder pass each.
* ``record_single_minimal``: the cheapest Python recorder (a bare ``gym.Wrapper`` writing each
  transition into preallocated arrays) against the raw env.
* ``record_floor``: per-transition cost of each part of recording into a memory (raw step, key
  encoding per unit and in batches, ``MemoryStore.add``) and the ``floor_ratio`` they add up to
  with a free segmenter: the lowest ratio reachable while keys are encoded during recording.
* ``record_vector``: the same for an 8-env ``SyncVectorEnv`` with ``RecordEpisodesVector``.
* ``buffer_calls``: per-call cost of ``add`` and ``sample(64)`` of both buffers.
* ``sb3_dqn``: SB3 DQN on CartPole-v1 (RL Zoo hyperparameters), wall time of ``learn`` with
  ``HippoReplayBuffer`` (mixture 0.5) vs SB3's ``ReplayBuffer``, same seed; ``ratio`` (target
  <= 1.5), ``cpu_ratio`` (the same with process CPU time, robust to a loaded machine) and the
  mean return of 10 deterministic evaluation episodes for both.
* ``sb3_dqn_defaults``: the same with SB3's default DQN settings (target <= 1.2): a sample of 32
  every 4 env steps, so each sample brings a new query to retrieve for.
* ``sb3_dqn_defaults_uniform``: the same with ``mixture_ratio=0``: no semantic draws, so no query
  is embedded or searched. What is left is the buffer without retrieval (units, keys, uniform
  draws); the gap to ``sb3_dqn_defaults`` is what retrieval costs. With ``--compare-blas``,
  ``sb3_dqn_defaults_blas_unlimited`` repeats it with numpy's BLAS threads left alone
  (``hippogym.set_blas_threads(None)``), which is how hippogym ran before ``hippogym.blas``.

Usage::

    python benchmarks/bench_wrappers.py            # full: 50k wrapper steps, 20k DQN steps
    python benchmarks/bench_wrappers.py --quick    # CI-sized
    python benchmarks/bench_wrappers.py --profile  # also log a cProfile of the hippogym DQN run
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import platform
import pstats
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

logger = logging.getLogger("bench_wrappers")


def _best_of(repeats: int, fn: Callable[[], float]) -> float:
    return min(fn() for _ in range(repeats))


def _loop_single(env: Any, actions: np.ndarray) -> float:
    env.reset(seed=0)
    start = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(int(a))
        if terminated or truncated:
            env.reset()
    return time.perf_counter() - start


def _loop_vector(env: Any, actions: np.ndarray) -> float:
    env.reset(seed=0)
    start = time.perf_counter()
    for a in actions:
        env.step(a)
    return time.perf_counter() - start


class _DropUnits:
    """A sink that takes finished units and keeps nothing: what recording costs before the memory.

    With ``keep=True`` it keeps them (outside any timed loop: the floor breakdown re-uses them).
    """

    def __init__(self, keep: bool = False) -> None:
        self.units = 0
        self.kept: list[Any] | None = [] if keep else None

    def add_episode(self, episode: Any) -> int:
        if self.kept is not None:
            self.kept.append(episode)
        self.units += 1
        return self.units - 1

    def add_episodes(self, episodes: Any) -> list[int]:
        return [self.add_episode(e) for e in episodes]


def _minimal_recorder(env: Any, steps: int) -> Any:
    """The cheapest Python recorder: a ``gym.Wrapper`` writing each transition into preallocated arrays.

    No segmentation, no checks, no keys, no memory: any recorder written as a Gymnasium wrapper in
    Python pays at least this (one more Python call per step and a few array writes).
    """
    import gymnasium as gym

    class MinimalRecorder(gym.Wrapper):
        def __init__(self, inner: Any) -> None:
            super().__init__(inner)
            shape = inner.observation_space.shape
            self.obs = np.zeros((steps + 1, *shape), dtype=np.float32)
            self.actions = np.zeros(steps, dtype=np.int64)
            self.rewards = np.zeros(steps, dtype=np.float32)
            self.done = np.zeros(steps, dtype=np.bool_)
            self.row = 0

        def step(self, action: Any) -> Any:
            obs, reward, terminated, truncated, info = self.env.step(action)
            row = self.row
            self.obs[row] = obs
            self.actions[row] = action
            self.rewards[row] = reward
            self.done[row] = terminated or truncated
            self.row = row + 1
            return obs, reward, terminated, truncated, info

    return MinimalRecorder(env)


def bench_record(steps: int, n_envs: int, repeats: int, sink: str = "memory") -> dict[str, Any]:
    """Raw vs recorded CartPole (single env when ``n_envs == 1``, else a ``SyncVectorEnv``).

    ``sink`` is one of:

    * ``"memory"``: ``RecordEpisodes`` into a buffer, the defaults (each unit handed over, and its
      keys encoded, when it ends);
    * ``"memory-batched"``: the same with ``ingest_every=1024`` (units handed over about 1024
      transitions at a time: one key-encoder pass per batch);
    * ``"drop"``: ``RecordEpisodes`` into :class:`_DropUnits`: the wrapper's and the segmenter's
      per-step cost alone, without key encoding and ``MemoryStore.add``;
    * ``"minimal"`` (single env only): :func:`_minimal_recorder`, the floor of any Python recorder.
    """
    if sink not in ("memory", "memory-batched", "drop", "minimal"):
        raise ValueError(f"unknown sink {sink!r}")
    if sink == "minimal" and n_envs > 1:
        raise ValueError("the minimal recorder is single-env only")
    import gymnasium as gym

    from hippogym import HippocampalReplayBuffer, MemoryStore
    from hippogym.types import DEFAULT_EMBED_DIM

    try:
        from hippogym.wrappers import RecordEpisodes, RecordEpisodesVector
    except ImportError as exc:  # the wrappers are optional at this stage of the project
        return {"skipped": f"hippogym.wrappers unavailable: {exc}"}

    rng = np.random.default_rng(0)
    vector = n_envs > 1
    actions = rng.integers(0, 2, size=(steps, n_envs) if vector else steps)

    def make() -> Any:
        if vector:
            return gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1") for _ in range(n_envs)])
        return gym.make("CartPole-v1")

    loop = _loop_vector if vector else _loop_single
    memories: list[Any] = []

    def raw() -> float:
        env = make()
        try:
            return loop(env, actions)
        finally:
            env.close()

    def wrapped() -> float:
        if sink == "minimal":
            memories.append(None)
            env: Any = _minimal_recorder(make(), steps)
        else:
            if sink == "drop":
                memory: Any = _DropUnits()
            else:
                store = MemoryStore(embed_dim=DEFAULT_EMBED_DIM, capacity=steps * n_envs + 1, seed=0)
                memory = HippocampalReplayBuffer(store, seed=0)
            every = 1024 if sink == "memory-batched" else 1
            env = (RecordEpisodesVector if vector else RecordEpisodes)(make(), memory, ingest_every=every)
            memories.append(memory)
        try:
            return loop(env, actions)
        finally:
            env.close()

    raw_s, wrapped_s = _best_of(repeats, raw), _best_of(repeats, wrapped)
    transitions = steps * n_envs
    return {
        "n_envs": n_envs,
        "steps": steps,
        "raw_steps_per_s": round(transitions / raw_s, 1),
        "wrapped_steps_per_s": round(transitions / wrapped_s, 1),
        "raw_s": round(raw_s, 4),
        "wrapped_s": round(wrapped_s, 4),
        "ratio": round(wrapped_s / raw_s, 3),
        "target_ratio": 1.5,
        "sink": sink,
        "memory_transitions": len(memories[-1]) if sink.startswith("memory") else None,
        "memory_units": (
            memories[-1].units if sink == "drop" else memories[-1].num_episodes if sink.startswith("memory") else None
        ),
    }


def bench_record_floor(steps: int, repeats: int) -> dict[str, Any]:
    """What each part of recording into a memory costs per transition, against one raw env step.

    The units of ``steps`` recorded CartPole steps are collected first (untimed). Then, each the
    best of ``repeats``:

    * ``raw_step_us``: one raw ``CartPole-v1`` step;
    * ``minimal_recorder_ratio``: :func:`_minimal_recorder` against the raw env (the floor of any
      Python recorder);
    * ``keys_us_unit`` / ``keys_us_batch``: featurize and key-encode, per transition, one unit at a
      time (the default hand-over) and about 1024 transitions at a time (``ingest_every=1024``);
    * ``store_add_us``: ``MemoryStore.add`` per transition with the keys already computed.

    ``floor_ratio`` = minimal recorder ratio + (keys in batches + store writes) / raw step: what
    recording into a memory would cost with a free segmenter and keys encoded while recording.
    """
    import gymnasium as gym

    from hippogym import HippocampalReplayBuffer, MemoryStore
    from hippogym.types import DEFAULT_EMBED_DIM
    from hippogym.wrappers import RecordEpisodes

    rng = np.random.default_rng(0)
    actions = rng.integers(0, 2, size=steps)
    sink = _DropUnits(keep=True)
    env = RecordEpisodes(gym.make("CartPole-v1"), sink)
    _loop_single(env, actions)
    env.close()
    units = list(sink.kept or [])
    transitions = sum(len(u) for u in units)

    def raw() -> float:
        inner = gym.make("CartPole-v1")
        try:
            return _loop_single(inner, actions)
        finally:
            inner.close()

    def minimal() -> float:
        inner = _minimal_recorder(gym.make("CartPole-v1"), steps)
        try:
            return _loop_single(inner, actions)
        finally:
            inner.close()

    buffer = HippocampalReplayBuffer(MemoryStore(embed_dim=DEFAULT_EMBED_DIM, capacity=transitions + 1, seed=0), seed=0)
    buffer.add_episode(units[0])  # fixes the layout and builds the featurizer
    featurizer, encoder = buffer.featurizer, buffer.encoder

    def keys_per_unit() -> float:
        start = time.perf_counter()
        for unit in units:
            encoder.encode_keys(featurizer.episode_features(unit.states, unit.actions, unit.rewards))
        return time.perf_counter() - start

    def keys_batched() -> float:
        start = time.perf_counter()
        group: list[Any] = []
        rows = 0
        for unit in [*units, None]:
            if unit is not None:
                group.append(unit)
                rows += len(unit)
                if rows < 1024:
                    continue
            if group:
                feats = [featurizer.episode_features(u.states, u.actions, u.rewards) for u in group]
                encoder.encode_keys(torch.cat(feats))
            group, rows = [], 0
        return time.perf_counter() - start

    unit_keys = [
        encoder.encode_keys(featurizer.episode_features(u.states, u.actions, u.rewards)) for u in units
    ]

    def store_add() -> float:
        store = MemoryStore(embed_dim=DEFAULT_EMBED_DIM, capacity=transitions + 1, seed=0)
        start = time.perf_counter()
        for unit, keys in zip(units, unit_keys):
            store.add(unit, keys)
        return time.perf_counter() - start

    raw_s = _best_of(repeats, raw)
    minimal_s = _best_of(repeats, minimal)
    per = 1e6 / transitions
    raw_us = raw_s * 1e6 / steps
    keys_unit_us = _best_of(repeats, keys_per_unit) * per
    keys_batch_us = _best_of(repeats, keys_batched) * per
    store_us = _best_of(repeats, store_add) * per
    minimal_ratio = minimal_s / raw_s
    return {
        "steps": steps,
        "units": len(units),
        "raw_step_us": round(raw_us, 2),
        "minimal_recorder_ratio": round(minimal_ratio, 3),
        "keys_us_unit": round(keys_unit_us, 2),
        "keys_us_batch": round(keys_batch_us, 2),
        "store_add_us": round(store_us, 2),
        "floor_ratio": round(minimal_ratio + (keys_batch_us + store_us) / raw_us, 3),
        "target_ratio": 1.5,
    }


#: RL Zoo's tuned DQN hyperparameters for CartPole-v1.
DQN_KWARGS: dict[str, Any] = dict(
    learning_rate=2.3e-3,
    batch_size=64,
    buffer_size=100_000,
    learning_starts=1_000,
    gamma=0.99,
    target_update_interval=10,
    train_freq=256,
    gradient_steps=128,
    exploration_fraction=0.16,
    exploration_final_eps=0.04,
    policy_kwargs=dict(net_arch=[256, 256]),
)


#: Which DQN settings each figure uses: SB3's own defaults (a sample of 32 every 4 env steps, each
#: one with a new query) and the RL Zoo's tuned CartPole settings (128 samples per query).
DQN_SETTINGS: dict[str, tuple[dict[str, Any], float]] = {
    "sb3-defaults": ({}, 1.2),
    "rl-zoo": (DQN_KWARGS, 1.5),
}


def _dqn_run(
    hippo: bool, steps: int, seed: int, eval_episodes: int, profile: bool, settings: str = "rl-zoo",
    mixture: float = 0.5,
) -> dict[str, Any]:
    from stable_baselines3 import DQN
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    from hippogym.integrations.sb3 import HippoReplayBuffer

    kwargs = dict(DQN_SETTINGS[settings][0])
    if steps < 5 * kwargs.get("learning_starts", 100):
        kwargs["learning_starts"] = max(100, steps // 5)
    if hippo:
        kwargs.update(replay_buffer_class=HippoReplayBuffer, replay_buffer_kwargs=dict(mixture_ratio=mixture))
    env = make_vec_env("CartPole-v1", n_envs=1, seed=seed)
    model = DQN("MlpPolicy", env, seed=seed, verbose=0, **kwargs)
    profiler = cProfile.Profile() if profile else None
    start, cpu_start = time.perf_counter(), time.process_time()
    if profiler is not None:
        profiler.enable()
    model.learn(steps)
    if profiler is not None:
        profiler.disable()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    eval_env = make_vec_env("CartPole-v1", n_envs=1, seed=seed + 1000)
    mean_return, std_return = evaluate_policy(model, eval_env, n_eval_episodes=eval_episodes, deterministic=True)
    out: dict[str, Any] = {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "mean_return": round(float(mean_return), 1),
        "std_return": round(float(std_return), 1),
        "num_timesteps": int(model.num_timesteps),
    }
    if hippo:
        rb = model.replay_buffer
        out.update(
            memory_transitions=len(rb), memory_units=rb.hippo.num_episodes,
            partial_flushes=rb.adapter.num_partial_flushes,
        )
    if profiler is not None:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(35)
        logger.info("cProfile of the %s DQN run:\n%s", "hippogym" if hippo else "sb3", text.getvalue())
        out["profile_top"] = _profile_summary(profiler)
    return out


def _profile_summary(profiler: cProfile.Profile, top: int = 12) -> list[dict[str, Any]]:
    stats = pstats.Stats(profiler)
    rows = []
    for (filename, line, name), (_, calls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append({"function": f"{filename.rsplit('site-packages/', 1)[-1]}:{line}({name})", "calls": calls,
                     "tottime_s": round(tottime, 3), "cumtime_s": round(cumtime, 3)})
    rows.sort(key=lambda r: r["cumtime_s"], reverse=True)
    return rows[:top]


def bench_buffer_calls(steps: int = 5_000, samples: int = 2_000) -> dict[str, Any]:
    """Per-call cost of ``add`` and ``sample(64)`` for both buffers on the same CartPole-shaped data.

    Less sensitive to machine load than whole training runs. The hippogym ``sample`` queries with
    the recent observation, which changes after every ``add`` (``fresh_query``) or stays the same
    between adds, as during DQN's 128 gradient steps per rollout (``cached_query``).
    """
    import gymnasium as gym
    from stable_baselines3.common.buffers import ReplayBuffer

    from hippogym.integrations.sb3 import HippoReplayBuffer

    env = gym.make("CartPole-v1")
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(steps + 1, 1, 4)).astype(np.float32)
    actions = rng.integers(0, 2, size=(steps, 1))
    dones = rng.random((steps, 1)) < 1 / 50
    out: dict[str, Any] = {}
    buffers = (("sb3", ReplayBuffer, {}), ("hippogym", HippoReplayBuffer, dict(mixture_ratio=0.5, seed=0)))
    for name, cls, kwargs in buffers:
        rb = cls(100_000, env.observation_space, env.action_space, "cpu", **kwargs)
        start = time.perf_counter()
        for i in range(steps):
            rb.add(obs[i], obs[i + 1], actions[i], np.ones(1, np.float32), dones[i], [{}])
        add_us = (time.perf_counter() - start) / steps * 1e6
        start = time.perf_counter()
        for _ in range(samples):
            rb.sample(64)
        cached_us = (time.perf_counter() - start) / samples * 1e6
        row = {"add_us": round(add_us, 1), "sample64_us": round(cached_us, 1)}
        if name == "hippogym":
            row["sample64_cached_query_us"] = row.pop("sample64_us")
            start = time.perf_counter()
            for i in range(samples):
                rb.adapter.last_obs = obs[i % steps]  # a new recent observation for every call
                rb.sample(64)
            row["sample64_fresh_query_us"] = round((time.perf_counter() - start) / samples * 1e6, 1)
        out[name] = row
    return out


def bench_dqn(
    steps: int, seed: int, eval_episodes: int, profile: bool, repeats: int = 1, settings: str = "rl-zoo",
    mixture: float = 0.5,
) -> dict[str, Any]:
    """SB3 DQN wall time and return: HippoReplayBuffer (``mixture_ratio=mixture``) vs SB3's ReplayBuffer.

    ``settings`` picks the DQN hyperparameters (:data:`DQN_SETTINGS`): ``"sb3-defaults"`` or
    ``"rl-zoo"``. ``mixture=0`` draws no semantic rows: no query is embedded or searched, so the
    figure is what the buffer costs without retrieval (recording units, keys, uniform draws).

    With ``repeats > 1`` the runs alternate (sb3, hippo, hippo, sb3, ...) and the fastest of each
    is reported, which filters out load from other processes; runs are seeded, so the returns
    repeat exactly.
    """
    try:
        import stable_baselines3  # noqa: F401 - only checks that SB3 is installed
    except ImportError:
        return {"skipped": "stable-baselines3 is not installed (pip install 'hippogym[sb3]')"}
    runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    for r in range(repeats):
        for hippo in ((False, True) if r % 2 == 0 else (True, False)):
            runs[hippo].append(
                _dqn_run(hippo, steps, seed, eval_episodes, profile and hippo and not runs[True], settings, mixture)
            )
            logger.info("DQN %s run %d: %s", "hippogym" if hippo else "sb3", r, runs[hippo][-1]["wall_s"])
    hyper = "SB3 DQN defaults" if settings == "sb3-defaults" else "rl-zoo CartPole-v1 DQN"
    result: dict[str, Any] = {"steps": steps, "hyperparameters": hyper, "repeats": repeats, "mixture_ratio": mixture}
    for hippo, key in ((False, "sb3"), (True, "hippogym")):
        best = dict(runs[hippo][0])
        for field in ("wall_s", "cpu_s"):
            best[field] = min(run[field] for run in runs[hippo])
            best[f"{field}_all"] = [run[field] for run in runs[hippo]]
        result[key] = best
    result["ratio"] = round(result["hippogym"]["wall_s"] / result["sb3"]["wall_s"], 3)
    # CPU time of the process: robust to other jobs sharing the machine (wall time is not).
    result["cpu_ratio"] = round(result["hippogym"]["cpu_s"] / result["sb3"]["cpu_s"], 3)
    result["target_ratio"] = DQN_SETTINGS[settings][1]
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmarks and print the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CI-sized run (seconds)")
    parser.add_argument("--profile", action="store_true", help="log a cProfile of the hippogym DQN run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-dqn", action="store_true", help="only the recording wrappers")
    parser.add_argument("--dqn-only", action="store_true", help="only the SB3 DQN figures (no recording, no per-call)")
    parser.add_argument(
        "--compare-blas", action="store_true",
        help="also run SB3-default DQN with numpy's BLAS threads not limited (hippogym.set_blas_threads(None))",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)

    quick = args.quick
    wrapper_steps, vector_steps, dqn_steps, repeats = (2_000, 500, 2_000, 1) if quick else (50_000, 10_000, 20_000, 3)
    result: dict[str, Any] = {
        "benchmark": "wrappers",
        "quick": args.quick,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    if not args.dqn_only:
        logger.info("recording wrappers: single env, %d steps", wrapper_steps)
        result["record_single"] = bench_record(wrapper_steps, 1, repeats)
        logger.info("recording wrappers: single env, %d steps, units dropped (no memory)", wrapper_steps)
        result["record_single_drop"] = bench_record(wrapper_steps, 1, repeats, sink="drop")
        logger.info("recording wrappers: single env, %d steps, ingest_every=1024", wrapper_steps)
        result["record_single_batched"] = bench_record(wrapper_steps, 1, repeats, sink="memory-batched")
        logger.info("recording: the cheapest Python recorder, %d steps", wrapper_steps)
        result["record_single_minimal"] = bench_record(wrapper_steps, 1, repeats, sink="minimal")
        logger.info("recording: the per-transition cost of each part, %d steps", wrapper_steps)
        result["record_floor"] = bench_record_floor(wrapper_steps, repeats)
        logger.info("recording wrappers: 8-env SyncVectorEnv, %d steps", vector_steps)
        result["record_vector"] = bench_record(vector_steps, 8, repeats)
    if not args.skip_dqn:
        logger.info("SB3 DQN CartPole: %d steps, SB3 ReplayBuffer then HippoReplayBuffer", dqn_steps)
        if not args.dqn_only:
            result["buffer_calls"] = bench_buffer_calls(1_000 if quick else 5_000, 500 if quick else 2_000)
        for settings, key in (("sb3-defaults", "sb3_dqn_defaults"), ("rl-zoo", "sb3_dqn")):
            logger.info("SB3 DQN CartPole with %s settings", settings)
            result[key] = bench_dqn(dqn_steps, args.seed, 3 if quick else 10, args.profile, 1 if quick else 2, settings)
        logger.info("SB3 DQN CartPole with SB3's defaults, mixture_ratio=0 (no retrieval)")
        result["sb3_dqn_defaults_uniform"] = bench_dqn(
            dqn_steps, args.seed, 3 if quick else 10, False, 1 if quick else 2, "sb3-defaults", mixture=0.0
        )
        if args.compare_blas:
            from hippogym import set_blas_threads

            logger.info("SB3 DQN CartPole with SB3's defaults, numpy's BLAS left with all its threads")
            set_blas_threads(None)
            try:
                result["sb3_dqn_defaults_blas_unlimited"] = bench_dqn(
                    dqn_steps, args.seed, 3 if quick else 10, False, 1 if quick else 2, "sb3-defaults"
                )
            finally:
                set_blas_threads(1)
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
