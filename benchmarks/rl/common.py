"""Shared machinery of the RL evidence suite (issue 6).

* :func:`run_jobs`: run one function per (arm, group, seed) in parallel processes (spawned, one
  torch thread each), or in-process when ``workers == 1``.
* :func:`bootstrap_mean` / :func:`bootstrap_diff`: 95% percentile bootstrap intervals (kept for old
  callers; :func:`summarize` uses the Student/Welch t intervals of :mod:`benchmarks.rl.stats`).
* :func:`make_eval_callback`: periodic greedy evaluation (return, success) and training-episode
  statistics; evaluation time is kept out of the training wall time.
* :func:`make_agent`: SB3 DQN (discrete) or SAC (continuous) with the SAME hyperparameters for
  every arm; only the replay differs:

  - ``uniform``: SB3's own ``ReplayBuffer``;
  - ``hybrid``: :class:`~hippogym.integrations.sb3.HippoReplayBuffer` (semantic + uniform draws);
  - ``hippo-uniform``: ``HippoReplayBuffer`` with ``mixture_ratio=0`` and no query, which keeps the
    memory's episode segmentation and eviction but not semantic sampling;
  - a hippogym configuration with consolidator settings (ablations): the
    :class:`~hippogym.HippocampalReplayBuffer` is built here, with an explicit
    :class:`~hippogym.Consolidator`, and handed over with ``buffer=``.

* :func:`write_seed`, :func:`summarize`, :func:`plot_curves`: per-seed CSV/JSON, the summary JSON
  (mean, 95% CI, difference to the baseline arm with its CI) and learning-curve plots.

Nothing here is library code; it only uses hippogym's public API.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.rl.stats import diff_ci, mean_ci

ROOT = Path(__file__).resolve().parents[2]

# --------------------------------------------------------------------------- processes


def setup_process(threads: int = 1) -> None:
    """One torch thread (SB3's small networks run ~10x faster than with 2 on this machine)."""
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    os.environ.setdefault("MKL_NUM_THREADS", str(threads))
    import torch

    torch.set_num_threads(threads)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def _call(spec: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    setup_process()
    module, name = spec.split(":")
    fn = getattr(importlib.import_module(module), name)
    return fn(**kwargs)


def run_jobs(spec: str, jobs: Sequence[Mapping[str, Any]], workers: int = 2, log: bool = True,
             on_result: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run ``module:function(**job)`` for every job; results in job order.

    ``workers > 1`` uses spawned processes (never more than 2 on a shared 2-core machine is
    sensible); ``workers == 1`` runs in this process (used by the smoke tests). ``on_result`` is
    called with each result as soon as it arrives (e.g. to write it: a long run keeps its finished
    seeds if it is interrupted).
    """
    t0 = time.perf_counter()
    if workers <= 1 or len(jobs) <= 1:
        results = []
        for i, job in enumerate(jobs):
            results.append(_call(spec, job))
            if on_result is not None:
                on_result(results[-1])
            if log:
                print(f"[{time.perf_counter() - t0:7.1f}s] done {i + 1}/{len(jobs)}: {_label(job)}", flush=True)
        return results
    import multiprocessing as mp

    results: list[Any] = [None] * len(jobs)
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(_call, spec, dict(job)): i for i, job in enumerate(jobs)}
        from concurrent.futures import as_completed

        for n, fut in enumerate(as_completed(futures)):
            i = futures[fut]
            results[i] = fut.result()
            if on_result is not None:
                on_result(results[i])
            if log:
                print(f"[{time.perf_counter() - t0:7.1f}s] done {n + 1}/{len(jobs)}: {_label(jobs[i])}", flush=True)
    return results


def _label(job: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={job[k]}" for k in ("arm", "group", "seed") if k in job)


# --------------------------------------------------------------------------- statistics


def bootstrap_mean(values: Iterable[float], n_boot: int = 10_000, seed: int = 0) -> dict[str, Any]:
    """Mean with a 95% percentile bootstrap interval (``nan`` bounds for fewer than 2 values)."""
    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=np.float64)
    out: dict[str, Any] = {"n": int(x.size), "mean": float(x.mean()) if x.size else math.nan}
    if x.size >= 2:
        rng = np.random.default_rng(seed)
        boots = x[rng.integers(0, x.size, (n_boot, x.size))].mean(1)
        out["ci_low"], out["ci_high"] = (float(v) for v in np.percentile(boots, [2.5, 97.5]))
        out["std"] = float(x.std(ddof=1))
    else:
        out["ci_low"] = out["ci_high"] = out["std"] = math.nan
    out["values"] = [float(v) for v in x]
    return out


def bootstrap_diff(a: Iterable[float], b: Iterable[float], n_boot: int = 10_000, seed: int = 0) -> dict[str, Any]:
    """``mean(a) - mean(b)`` with a 95% bootstrap interval (arms resampled independently).

    ``p_le_0`` is the share of bootstrap differences <= 0 (a rough one-sided check, not a test).
    """
    x = np.asarray([v for v in a if v is not None and not math.isnan(v)], dtype=np.float64)
    y = np.asarray([v for v in b if v is not None and not math.isnan(v)], dtype=np.float64)
    out: dict[str, Any] = {"n_a": int(x.size), "n_b": int(y.size)}
    if not x.size or not y.size:
        out.update(diff=math.nan, ci_low=math.nan, ci_high=math.nan, p_le_0=math.nan)
        return out
    out["diff"] = float(x.mean() - y.mean())
    if x.size >= 2 and y.size >= 2:
        rng = np.random.default_rng(seed)
        d = x[rng.integers(0, x.size, (n_boot, x.size))].mean(1) - y[rng.integers(0, y.size, (n_boot, y.size))].mean(1)
        out["ci_low"], out["ci_high"] = (float(v) for v in np.percentile(d, [2.5, 97.5]))
        out["p_le_0"] = float((d <= 0).mean())
    else:
        out.update(ci_low=math.nan, ci_high=math.nan, p_le_0=math.nan)
    return out


# --------------------------------------------------------------------------- evaluation


def evaluate(model: Any, env: Any, episodes: int, seed: int, epsilon: float = 0.0) -> dict[str, float]:
    """Greedy (or epsilon-greedy) episodes on a plain Gymnasium env: mean return, success rate, length.

    ``epsilon > 0`` takes a uniformly random action with that probability (seeded), the usual DQN
    evaluation protocol (0.05 in the Atari papers); it keeps a deterministic greedy policy from
    being scored 0 for oscillating between two cells whose Q-values are nearly tied.
    """
    returns, successes, lengths = [], [], []
    rng = np.random.default_rng(seed)
    for i in range(episodes):
        obs, info = env.reset(seed=seed + i)
        done, ret, n = False, 0.0, 0
        # A recurrent policy (sb3-contrib's RecurrentPPO) carries its hidden state through the
        # episode and starts from a fresh one at its first step; other policies ignore both.
        state, episode_start = None, np.ones((1,), dtype=bool)
        while not done:
            explore = epsilon > 0 and rng.random() < epsilon
            # The policy sees every observation (a recurrent one must, to keep its state), even on
            # a step whose action is then replaced by a random one.
            action, state = model.predict(obs, state=state, episode_start=episode_start, deterministic=True)
            if explore:
                action = int(rng.integers(env.action_space.n))
            elif hasattr(action, "shape") and action.shape == ():
                action = action.item()
            episode_start = np.zeros((1,), dtype=bool)
            obs, reward, terminated, truncated, info = env.step(action)
            ret += float(reward)
            n += 1
            done = terminated or truncated
        returns.append(ret)
        successes.append(float(bool(info.get("is_success", False))))
        lengths.append(n)
    return {
        "eval_return": float(np.mean(returns)),
        "eval_success": float(np.mean(successes)),
        "eval_length": float(np.mean(lengths)),
    }


def _sb3_callback_base() -> type:
    from stable_baselines3.common.callbacks import BaseCallback

    return BaseCallback


def make_eval_callback(
    eval_fn: Callable[[Any], dict[str, float]],
    eval_every: int,
    max_episodes: int | None = None,
    on_eval: Callable[[Any, dict[str, Any]], None] | None = None,
    success_window: int = 20,
) -> Any:
    """A SB3 callback that evaluates every ``eval_every`` env steps (and at step 0 and the end).

    Rows hold ``step``, what ``eval_fn(model)`` returns, ``train_episodes``,
    ``train_success_rate`` (last ``success_window`` training episodes), ``train_s`` (training wall
    time so far, evaluation excluded). Stops training after ``max_episodes`` training episodes.
    """
    base = _sb3_callback_base()

    class _Eval(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__(0)
            self.rows: list[dict[str, Any]] = []
            self.episode_returns: list[float] = []
            self.episode_successes: list[float] = []
            self.episode_end_steps: list[int] = []
            self._ret: np.ndarray | None = None
            self.eval_s = 0.0
            self._t0 = 0.0
            self._next = 0
            self.train_s = 0.0

        def _on_training_start(self) -> None:
            self._t0 = time.perf_counter()
            self._ret = np.zeros(self.training_env.num_envs)
            self._evaluate()

        def _evaluate(self) -> None:
            t = time.perf_counter()
            row: dict[str, Any] = {"step": int(self.num_timesteps)}
            row.update(eval_fn(self.model))
            recent = self.episode_successes[-success_window:]
            row["train_episodes"] = len(self.episode_returns)
            row["train_success_rate"] = float(np.mean(recent)) if recent else 0.0
            row["train_s"] = round(t - self._t0 - self.eval_s, 4)
            if on_eval is not None:
                on_eval(self, row)
            self.rows.append(row)
            self.eval_s += time.perf_counter() - t
            self._next = (self.num_timesteps // eval_every + 1) * eval_every

        def _on_step(self) -> bool:
            rewards = np.asarray(self.locals.get("rewards", 0.0), dtype=np.float64).reshape(-1)
            dones = np.asarray(self.locals.get("dones", False)).reshape(-1)
            infos = self.locals.get("infos", [{}] * dones.size)
            self._ret = self._ret + rewards
            for i in np.flatnonzero(dones):
                self.episode_returns.append(float(self._ret[i]))
                self.episode_successes.append(float(bool(infos[i].get("is_success", False))))
                self.episode_end_steps.append(int(self.num_timesteps))
                self._ret[i] = 0.0
            if self.num_timesteps >= self._next:
                self._evaluate()
            return max_episodes is None or len(self.episode_returns) < max_episodes

        def _on_training_end(self) -> None:
            if not self.rows or self.rows[-1]["step"] != self.num_timesteps:
                self._evaluate()
            self.train_s = time.perf_counter() - self._t0 - self.eval_s

    return _Eval()


# --------------------------------------------------------------------------- agents

#: DQN hyperparameters shared by every arm of the sparse-reward experiments.
DQN_SPARSE = dict(
    learning_rate=1e-3, buffer_size=10_000, learning_starts=1_000, batch_size=64, gamma=0.99,
    train_freq=4, gradient_steps=1, target_update_interval=100, exploration_fraction=0.3,
    exploration_initial_eps=1.0, exploration_final_eps=0.05, policy_kwargs=dict(net_arch=[64, 64]),
)
#: rl-baselines3-zoo's tuned DQN hyperparameters for CartPole-v1.
DQN_CARTPOLE = dict(
    learning_rate=2.3e-3, buffer_size=100_000, learning_starts=1_000, batch_size=64, gamma=0.99,
    train_freq=256, gradient_steps=128, target_update_interval=10, exploration_fraction=0.16,
    exploration_final_eps=0.04, policy_kwargs=dict(net_arch=[256, 256]),
)
#: SAC for small continuous tasks (Pendulum-like).
SAC_DEFAULT = dict(learning_rate=1e-3, buffer_size=50_000, learning_starts=500, batch_size=256, gamma=0.98,
                   policy_kwargs=dict(net_arch=[64, 64]))

#: The hippogym settings of the "hybrid" arm unless an experiment overrides them.
HIPPO_DEFAULT = dict(mixture_ratio=0.5, embed_dim=64, top_k=5, consolidate_every=2_000, consolidate_steps=50)
#: Key storage of every arm: float32, what every committed run used (the library's default became
#: float16 after them).
KEY_DTYPE = "float32"

ARMS = ("uniform", "hybrid", "hippo-uniform", "nstep", "hippo-nstep", "hippodqn", "hippodqn-nstep", "hippodqn-sil")
#: n of the n-step arms (SB3's ``DQN(n_steps=...)`` and ``HippoReplayBuffer(n_steps=...)``).
NSTEP = 10
#: Weight of HippoDQN's episodic lower-bound term in the ``hippodqn`` arms.
EPISODIC_WEIGHT = 0.5


def _flat_dim(space: Any) -> int:
    from gymnasium import spaces

    if isinstance(space, spaces.Dict):
        return sum(_flat_dim(s) for s in space.spaces.values())
    if isinstance(space, spaces.Discrete):
        return 1
    return int(np.prod(space.shape)) if space.shape else 1


def build_hippo_buffer(env: Any, capacity: int, seed: int, cfg: Mapping[str, Any]) -> Any:
    """A :class:`~hippogym.HippocampalReplayBuffer` with an explicit :class:`~hippogym.Consolidator`.

    ``cfg`` keys: ``embed_dim``, ``mixture_ratio`` (float or schedule), ``top_k``, ``eviction``,
    and the consolidator's ``temperature``, ``reward_weight``, ``reward_mode``, ``lr``.
    """
    import torch

    from hippogym import Consolidator, DualEncoder, HippocampalReplayBuffer, MemoryStore

    obs_space, act_space = env.observation_space, env.action_space
    input_dim = _flat_dim(obs_space) + _flat_dim(act_space) + 1  # observation + action + reward
    embed_dim = int(cfg.get("embed_dim", 64))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = DualEncoder(input_dim=input_dim, embed_dim=embed_dim)
    consolidator = Consolidator(
        encoder, temperature=float(cfg.get("temperature", 0.07)), reward_weight=float(cfg.get("reward_weight", 0.5)),
        reward_mode=str(cfg.get("reward_mode", "rank")), lr=float(cfg.get("lr", 3e-4)), seed=seed + 1,
    )
    memory = MemoryStore(embed_dim=embed_dim, capacity=int(capacity), eviction=cfg.get("eviction", "utility"),
                         key_dtype=str(cfg.get("key_dtype", KEY_DTYPE)), seed=seed)
    return HippocampalReplayBuffer(
        memory=memory, encoder=encoder, consolidator=consolidator, mixture_ratio=cfg.get("mixture_ratio", 0.5),
        semantic={"top_k": int(cfg.get("top_k", 5))}, seed=seed,
    )


def replay_kwargs(arm: str, env: Any, hp: Mapping[str, Any], seed: int, hippo: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``replay_buffer_class`` / ``replay_buffer_kwargs`` for an arm (empty for ``uniform``)."""
    if arm in ("uniform", "nstep"):
        return {}
    from hippogym.integrations.sb3 import HippoReplayBuffer

    cfg = {**HIPPO_DEFAULT, **(hippo or {})}
    every, steps = int(cfg.pop("consolidate_every")), int(cfg.pop("consolidate_steps"))
    by_episodes, schedule = cfg.pop("consolidate_every_episodes", None), cfg.pop("schedule", "periodic")
    if by_episodes is not None or schedule != "periodic":
        every = 0  # the schedule is run by sleep_callback (learn()), not by the adapter's transition counter
    store = dict(eviction=cfg.get("eviction", "utility"), key_dtype=cfg.get("key_dtype", KEY_DTYPE))
    if arm in ("hippo-nstep", "hippodqn", "hippodqn-nstep", "hippodqn-sil"):
        # The value arms: uniform draws from the episodic memory, only the targets differ.
        kw = dict(mixture_ratio=0.0, query=None, embed_dim=int(cfg["embed_dim"]), consolidate_every=0,
                  **store, seed=seed, gamma=float(hp.get("gamma", 0.99)),
                  n_steps=1 if arm == "hippodqn" else NSTEP)
    elif arm == "hippo-uniform":
        kw = dict(mixture_ratio=0.0, query=None, embed_dim=int(cfg["embed_dim"]), consolidate_every=0,
                  **store, seed=seed)
    elif arm == "hybrid" and not (set(cfg) & {"temperature", "reward_weight", "reward_mode", "lr"}):
        kw = dict(mixture_ratio=cfg["mixture_ratio"], embed_dim=int(cfg["embed_dim"]), top_k=int(cfg["top_k"]),
                  consolidate_every=every, consolidate_steps=steps, **store, seed=seed)
    else:  # an explicit buffer (consolidator settings), e.g. the ablation arms
        buffer = build_hippo_buffer(env, int(hp["buffer_size"]), seed, cfg)
        kw = dict(buffer=buffer, consolidate_every=every, consolidate_steps=steps)
    return dict(replay_buffer_class=HippoReplayBuffer, replay_buffer_kwargs=kw)


def make_agent(
    env: Any, arm: str, seed: int, hp: Mapping[str, Any] | None = None, hippo: Mapping[str, Any] | None = None,
    algo: str | None = None, policy: str | None = None,
) -> Any:
    """SB3 DQN (discrete actions) or SAC (continuous), identical for every arm but the replay."""
    from gymnasium import spaces
    from stable_baselines3 import DQN, SAC

    discrete = isinstance(env.action_space, spaces.Discrete)
    algo = algo or ("dqn" if discrete else "sac")
    hp = dict(hp or (DQN_SPARSE if algo == "dqn" else SAC_DEFAULT))
    cls = DQN if algo == "dqn" else SAC
    if arm == "nstep":
        hp["n_steps"] = NSTEP
    if arm.startswith("hippodqn"):
        from hippogym.integrations.episodic_dqn import HippoDQN

        if algo != "dqn":
            raise ValueError(f"arm {arm!r} needs a discrete action space (DQN)")
        cls, hp["episodic_weight"] = HippoDQN, EPISODIC_WEIGHT
        if arm == "hippodqn-sil":  # self-imitation priorities fed back to prioritised draws
            hp["priority"] = "self_imitation"
    if policy is None:
        policy = "MultiInputPolicy" if isinstance(env.observation_space, spaces.Dict) else "MlpPolicy"
    return cls(policy, env, seed=seed, verbose=0, device="cpu", **hp, **replay_kwargs(arm, env, hp, seed, hippo))


def hippo_stats(model: Any) -> dict[str, Any]:
    """Memory statistics of a model whose replay is a ``HippoReplayBuffer`` (empty otherwise)."""
    rb = getattr(model, "replay_buffer", None)
    hippo = getattr(rb, "hippo", None)
    if hippo is None:
        return {}
    mem = hippo.memory
    out = {"memory_transitions": len(hippo), "memory_units": int(hippo.num_episodes),
           "consolidations": int(rb.adapter.num_consolidations)}
    if mem.num_units:
        slots = mem.live_slots()
        out["memory_success_units"] = int((mem.unit_return[slots] > 0).sum())
    return out


def sb3_replay_successes(model: Any) -> int | None:
    """Rewarding transitions held by an SB3 uniform ``ReplayBuffer`` (for comparison with the memory)."""
    rb = getattr(model, "replay_buffer", None)
    if rb is None or getattr(rb, "hippo", None) is not None:
        return None
    n = rb.buffer_size if rb.full else rb.pos
    return int((rb.rewards[:n] > 0).sum())


# --------------------------------------------------------------------------- output


def parse_seeds(text: str | int) -> list[int]:
    """``"5"`` -> seeds 0..4; ``"0,3,7"`` -> those seeds."""
    text = str(text).strip()
    if "," in text:
        return [int(s) for s in text.split(",") if s.strip()]
    return list(range(int(text)))


def parse_list(text: str, cast: Callable[[str], Any] = int) -> list[Any]:
    return [cast(s) for s in str(text).split(",") if s.strip()]


def add_common_args(parser: argparse.ArgumentParser, steps: int | None, seeds: str = "5") -> None:
    parser.add_argument("--seeds", default=seeds, help="N (seeds 0..N-1) or a comma list")
    if steps is not None:
        parser.add_argument("--steps", type=int, default=steps, help="environment steps per run")
    parser.add_argument("--out", default="runs/rl", help="output directory")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", "2")),
                        help="parallel processes (1 thread each; 2 on a 2-core machine)")
    parser.add_argument("--learning-starts", type=int, default=None,
                        help="override the agent's learning_starts (same for every arm)")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--dry-run", action="store_true", help="print the jobs and exit (used by the smoke tests)")


def add_seed_args(parser: argparse.ArgumentParser) -> None:
    """The options the seed's script variables map to (``benchmarks/rl/seed_vars.py``)."""
    parser.add_argument("--batch-size", type=int, default=None, help="override the agent's batch_size (every arm)")
    parser.add_argument("--cons-every-episodes", type=int, default=None,
                        help="consolidate every N finished training episodes (the seed's CONS_EVERY) instead of "
                             "every --cons-every transitions")
    parser.add_argument("--cons-schedule", default="periodic", choices=["periodic", "interleaved", "adaptive"],
                        help="consolidation schedule (hippogym.training.SleepSchedule; the seed's SCHEDULE)")
    parser.add_argument("--mixture-ramp", default=None, metavar="START,END,STEPS",
                        help="ramp the mixture ratio from START to END over STEPS transitions (the seed's "
                             "SCHED_START, SCHED_END, WARMUP); replaces --mixture")
    parser.add_argument("--csv", default=None, help="also write one row per run (arm, group, seed, figures) to this CSV")


def sleep_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The hippo settings of the seed-compatible options (``--cons-every-episodes``, ``--cons-schedule``,
    ``--mixture-ramp``), to merge into an experiment's ``hippo`` dict."""
    out: dict[str, Any] = {}
    if getattr(args, "cons_every_episodes", None) is not None:
        out["consolidate_every_episodes"] = int(args.cons_every_episodes)
    if getattr(args, "cons_schedule", "periodic") != "periodic":
        out["schedule"] = args.cons_schedule
    if getattr(args, "mixture_ramp", None):
        start, end, steps = (float(x) for x in str(args.mixture_ramp).split(","))
        out["mixture_ratio"] = {"type": "ramp", "start": start, "end": end, "ramp": int(steps)}
    return out


def sleep_callback(hippo: Mapping[str, Any] | None) -> Any:
    """A SB3 callback that consolidates on a :class:`hippogym.training.SleepSchedule`, or ``None``.

    Used when ``hippo`` asks for episodes as the unit (``consolidate_every_episodes``) or a schedule
    other than periodic; the adapter's own transition counter is then off (see :func:`replay_kwargs`).
    """
    cfg = dict(hippo or {})
    episodes = cfg.get("consolidate_every_episodes")
    schedule = cfg.get("schedule", "periodic")
    if episodes is None and schedule == "periodic":
        return None
    from hippogym.training import SleepSchedule

    every = int(episodes) if episodes is not None else int(cfg.get("consolidate_every", HIPPO_DEFAULT["consolidate_every"]))
    plan = SleepSchedule(every, int(cfg.get("consolidate_steps", HIPPO_DEFAULT["consolidate_steps"])), schedule)
    base = _sb3_callback_base()

    class _Sleep(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__(0)
            self.calls = 0

        def _on_step(self) -> bool:
            rb = getattr(self.model, "replay_buffer", None)
            if getattr(rb, "hippo", None) is None:
                return True
            dones = np.asarray(self.locals.get("dones", False)).reshape(-1)
            plan.tick(int(dones.sum()) if episodes is not None else dones.size)
            steps = plan.due(rb.hippo)
            if steps:
                # Through the adapter: its own RNG fork, logging and consolidation count.
                rb.adapter.consolidate_steps = steps
                rb.adapter.consolidate()
                self.calls += 1
            return True

    return _Sleep()


def learn(model: Any, budget: int, callback: Any, hippo: Mapping[str, Any] | None) -> None:
    """``model.learn(budget, callback)``, plus the seed-compatible consolidation callback if asked for."""
    sleep = sleep_callback(hippo) if getattr(getattr(model, "replay_buffer", None), "hippo", None) is not None else None
    if sleep is not None:
        from stable_baselines3.common.callbacks import CallbackList

        callback = CallbackList([callback, sleep])
    model.learn(budget, callback=callback)


def write_runs_csv(path: str | Path, results: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> Path:
    """One row per run: arm, group, seed and ``metrics`` (the seed scripts' ``OUT=...csv``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["arm", "group", "seed", *metrics], extrasaction="ignore")
        w.writeheader()
        for r in sorted(results, key=lambda r: (str(r.get("group", "")), str(r["arm"]), int(r["seed"]))):
            w.writerow({k: r.get(k) for k in ["arm", "group", "seed", *metrics]})
    return path


def hp_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Hyperparameter overrides given on the command line (applied to every arm alike)."""
    out: dict[str, Any] = {}
    if getattr(args, "learning_starts", None) is not None:
        out["learning_starts"] = int(args.learning_starts)
    if getattr(args, "batch_size", None) is not None:
        out["batch_size"] = int(args.batch_size)
    return out


def dry_run(jobs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What ``--dry-run`` prints and returns: the jobs that would run."""
    for job in jobs:
        print("job:", json.dumps(job, default=_json_default, sort_keys=True))
    return {"dry_run": True, "jobs": [dict(j) for j in jobs]}


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def dump_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=_json_default, allow_nan=True) + "\n")


def write_seed(out: Path, result: Mapping[str, Any]) -> None:
    """``out/<arm>[/<group>]/seed<N>.csv`` (the curve) and ``.json`` (everything)."""
    folder = out / str(result["arm"])
    if result.get("group") not in (None, ""):
        folder = folder / str(result["group"])
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"seed{result['seed']}"
    curve = result.get("curve") or []
    if curve:
        keys = list(dict.fromkeys(k for row in curve for k in row))
        with open(stem.with_suffix(".csv"), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(curve)
    dump_json(stem.with_suffix(".json"), result)


def machine() -> dict[str, Any]:
    import torch

    info = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "torch": torch.__version__, "torch_threads_per_process": 1}
    try:
        import stable_baselines3

        info["stable_baselines3"] = stable_baselines3.__version__
    except ImportError:  # pragma: no cover
        pass
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu_model"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):  # pragma: no cover
        pass
    return info


def summarize(
    results: Sequence[Mapping[str, Any]], metrics: Sequence[str], baseline: str = "uniform",
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Per (group, arm, metric): mean and 95% CI; per non-baseline arm: the difference to the baseline.

    Intervals are Student t for the mean and Welch t for the difference (:mod:`benchmarks.rl.stats`):
    at 5 seeds they keep their nominal coverage, which the percentile bootstrap does not.
    """
    groups = list(dict.fromkeys(r.get("group", "") for r in results))
    arms = list(dict.fromkeys(r["arm"] for r in results))
    table: dict[str, Any] = {}
    for g in groups:
        table[str(g)] = {}
        for arm in arms:
            rs = [r for r in results if r.get("group", "") == g and r["arm"] == arm]
            if not rs:
                continue
            entry: dict[str, Any] = {"seeds": [r["seed"] for r in rs]}
            for m in metrics:
                vals = [r.get(m) for r in rs]
                entry[m] = mean_ci([v for v in vals if v is not None])  # Student t (see stats.py)
                base = [r.get(m) for r in results if r.get("group", "") == g and r["arm"] == baseline]
                if arm != baseline and any(v is not None for v in base):
                    entry[m]["diff_vs_" + baseline] = diff_ci(
                        [v for v in vals if v is not None], [v for v in base if v is not None]
                    )
            table[str(g)][arm] = entry
    return {"machine": machine(), "baseline": baseline, "metrics": list(metrics), "results": table, **(extra or {})}


def fmt_ci(entry: Mapping[str, Any], digits: int = 2) -> str:
    if entry is None or entry.get("n", 0) == 0:
        return "n/a"
    m, lo, hi = entry["mean"], entry["ci_low"], entry["ci_high"]
    if math.isnan(lo):
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def fmt_diff(entry: Mapping[str, Any] | None, digits: int = 2) -> str:
    if not entry or math.isnan(entry.get("diff", math.nan)):
        return "n/a"
    if math.isnan(entry["ci_low"]):
        return f"{entry['diff']:+.{digits}f}"
    return f"{entry['diff']:+.{digits}f} [{entry['ci_low']:+.{digits}f}, {entry['ci_high']:+.{digits}f}]"


def markdown_table(summary: Mapping[str, Any], metrics: Sequence[str], digits: int = 2, labels: Mapping[str, str] | None = None) -> str:
    """A Markdown table: one row per (group, arm), ``mean [95% CI]`` and the difference to the baseline."""
    labels = labels or {}
    base = summary["baseline"]
    head = ["group", "arm", "seeds"]
    for m in metrics:
        head += [labels.get(m, m), f"Δ vs {base}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for g, arms in summary["results"].items():
        for arm, entry in arms.items():
            row = [str(g), arm, str(len(entry["seeds"]))]
            for m in metrics:
                e = entry.get(m)
                row += [fmt_ci(e, digits), fmt_diff(e.get(f"diff_vs_{base}") if e else None, digits) if arm != base else "—"]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def finish(out: Path, name: str, summary: Mapping[str, Any], metrics: Sequence[str], labels: Mapping[str, str] | None = None,
           digits: int = 2) -> str:
    """Write ``summary.json`` and ``summary.md``; print and return the table."""
    dump_json(out / "summary.json", summary)
    table = markdown_table(summary, metrics, digits, labels)
    cmd = "python " + " ".join(sys.argv) if sys.argv and sys.argv[0] else ""
    (out / "summary.md").write_text(f"# {name}\n\n{table}\n\ncommand: `{cmd}`\n")
    print(table, flush=True)
    return table


# --------------------------------------------------------------------------- curves and plots


def align_curves(results: Sequence[Mapping[str, Any]], key: str, x: str = "step", grid: Sequence[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Curves of several seeds on one grid (step-wise: the latest evaluation at or before each x)."""
    curves = [r["curve"] for r in results if r.get("curve")]
    if grid is None:
        grid = sorted({row[x] for c in curves for row in c})
    grid = np.asarray(grid, dtype=np.float64)
    ys = np.full((len(curves), grid.size), np.nan)
    for i, c in enumerate(curves):
        xs = np.asarray([row[x] for row in c], dtype=np.float64)
        vs = np.asarray([row.get(key, np.nan) for row in c], dtype=np.float64)
        idx = np.searchsorted(xs, grid, side="right") - 1
        ok = idx >= 0
        ys[i, ok] = vs[idx[ok]]
    return grid, ys


def band(ys: np.ndarray, n_boot: int = 2_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and 95% bootstrap band over seeds (rows), column by column."""
    mean = np.nanmean(ys, axis=0)
    if ys.shape[0] < 2:
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, ys.shape[0], (n_boot, ys.shape[0]))
    boots = np.nanmean(ys[idx], axis=1)
    lo, hi = np.nanpercentile(boots, [2.5, 97.5], axis=0)
    return mean, lo, hi


#: Fixed colors, so an arm looks the same in every plot.
ARM_COLORS = {"uniform": "tab:gray", "hybrid": "tab:blue", "hippo-uniform": "tab:green", "base": "tab:blue",
              "recall": "tab:orange", "framestack": "tab:purple", "scratch-uniform": "tab:gray",
              "scratch-hybrid": "tab:blue", "expert-hybrid": "tab:red", "expert-uniform": "tab:brown"}


def arm_order(labels: Iterable[str]) -> list[str]:
    """Arms in a stable order: uniform first, then hybrid, then the rest as given."""
    labels = list(dict.fromkeys(labels))
    first = [a for a in ("uniform", "hybrid", "hippo-uniform", "base") if a in labels]
    return first + [a for a in labels if a not in first]


def plot_curves(
    results: Sequence[Mapping[str, Any]], key: str, path: Path, title: str, ylabel: str,
    x: str = "step", xlabel: str = "environment steps", split: str = "arm", panels: str | None = "group",
    group_label: str = "",
) -> None:
    """Learning curves (mean over seeds, 95% bootstrap band up to 4 arms), one panel per group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys(r.get(panels, "") for r in results)) if panels else [None]
    fig, axes = plt.subplots(1, len(groups), figsize=(4.6 * len(groups), 3.6), squeeze=False)
    for ax, g in zip(axes[0], groups):
        rs = [r for r in results if panels is None or r.get(panels, "") == g]
        labels = arm_order(r[split] for r in rs)
        fixed = {lab: ARM_COLORS[lab] for lab in labels if lab in ARM_COLORS}
        spare = iter(c for c in (f"C{i}" for i in range(10)) if c not in fixed.values()
                     and c not in ("C0", "C7"))  # C0/C7 = tab:blue/tab:gray, taken by hybrid/uniform
        many = len(labels) > 4  # bands of many arms are unreadable: lines only
        for label in labels:
            sub = [r for r in rs if r[split] == label]
            grid, ys = align_curves(sub, key, x)
            mean, lo, hi = band(ys)
            color = fixed.get(label) or next(spare, None)
            line, = ax.plot(grid, mean, label=f"{label} (n={len(sub)})", color=color, linewidth=1.2 if many else 1.5)
            if not many:
                ax.fill_between(grid, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        suffix = f" — {group_label}{g}" if g not in (None, "") else ""
        ax.set_title(f"{title}{suffix}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def first_step_at(curve: Sequence[Mapping[str, Any]], key: str, threshold: float) -> int | None:
    """The first evaluation step where ``key >= threshold`` (``None`` if never)."""
    for row in curve:
        if row.get(key, -math.inf) >= threshold:
            return int(row["step"])
    return None


def first_sustained_step(curve: Sequence[Mapping[str, Any]], key: str, threshold: float) -> int | None:
    """The first evaluation step from which ``key >= threshold`` holds at every later evaluation.

    ``None`` if the last evaluation is below the threshold. Stricter than :func:`first_step_at`,
    which an untrained greedy policy can pass by luck (e.g. one that happens to always move right
    in a corridor).
    """
    step = None
    for row in curve:
        if row.get(key, -math.inf) >= threshold:
            if step is None:
                step = int(row["step"])
        else:
            step = None
    return step


def tail_mean(curve: Sequence[Mapping[str, Any]], key: str, k: int = 3) -> float:
    """Mean of the last ``k`` evaluations (less noisy than the last one)."""
    vals = [row[key] for row in curve[-k:] if key in row]
    return float(np.mean(vals)) if vals else math.nan


def curve_mean(curve: Sequence[Mapping[str, Any]], key: str) -> float:
    """Mean over all evaluations (a normalised area under the learning curve)."""
    vals = [row[key] for row in curve if key in row]
    return float(np.mean(vals)) if vals else math.nan
