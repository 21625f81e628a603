"""The evidence runner of ``docs/evidence/plan.md``: every environment and arm of the pre-registration.

One process per (environment, arm, seed), one torch thread each. Every result goes to
``<out>/<env>/<arm>/seed<N>.json`` with its learning curve, the steps at which the success threshold
was first reached and held, the final metric, and its provenance: the exact command, the package
versions, the git commit and whether the tree had uncommitted changes.

Environments (``ENVS``): the built-in corridor 30 and 50, MiniGrid ``DoorKey-5x5`` and
``MemoryS7`` (``ImgObsWrapper``), popgym ``RepeatFirstEasy``, SB3's ``BitFlippingEnv`` with 10 and
15 bits, ``MountainCar-v0`` and ``CartPole-v1``. The third-party packages (minigrid, popgym,
sb3-contrib) are needed only for their environments and arms; they are not part of the test install.

Arms (``ARMS``): ``uniform``, ``nstep``, ``per``, ``hippo-replay``, ``hippo-value``, ``her``,
``hippo-her``, ``framestack``, ``hippo-history``, ``recurrent-ppo``. Each environment allows the arms
the plan gives it (``EnvSpec.arms``).

Examples::

    python benchmarks/rl/evidence.py --env corridor30 --arms uniform,nstep,hippo-value --seeds 0,1,2 \\
        --out docs/evidence/runs/pilot
    python benchmarks/rl/evidence.py --env bitflip15 --arms her,hippo-her --seeds 100-109 --out runs/conf
"""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.rl import common

SPEC = "benchmarks.rl.evidence:run_one"
ROOT = Path(__file__).resolve().parents[2]

DQN_ARMS = ("uniform", "nstep", "per", "hippo-replay", "hippo-value")
GOAL_ARMS = ("her", "hippo-her")
POMDP_ARMS = ("framestack", "hippo-history", "recurrent-ppo")
ARMS = DQN_ARMS + GOAL_ARMS + POMDP_ARMS

#: RL Zoo's tuned DQN for MountainCar-v0.
DQN_MOUNTAINCAR = dict(
    learning_rate=4e-3, buffer_size=10_000, learning_starts=1_000, batch_size=128, gamma=0.98, train_freq=16,
    gradient_steps=8, target_update_interval=600, exploration_fraction=0.2, exploration_final_eps=0.07,
    policy_kwargs=dict(net_arch=[256, 256]),
)
#: Bit flipping: the settings of benchmarks/rl/bitflip_her.py (SB3's HER tests use similar ones).
DQN_BITFLIP = dict(
    learning_rate=1e-3, buffer_size=50_000, batch_size=128, gamma=0.95, train_freq=1, gradient_steps=1,
    target_update_interval=500, exploration_fraction=0.3, exploration_final_eps=0.05, learning_starts=200,
    policy_kwargs=dict(net_arch=[128, 128]),
)
#: MiniGrid and popgym: DQN_SPARSE with a larger buffer and network (image observations of 147 values).
DQN_GRID = dict(common.DQN_SPARSE, buffer_size=50_000, policy_kwargs=dict(net_arch=[128, 128]),
                exploration_fraction=0.2)
HER = dict(n_sampled_goal=4, goal_selection_strategy="future")


@dataclass(frozen=True)
class EnvSpec:
    """One environment of the plan: how to build it and how it is trained and judged."""

    name: str
    make: Callable[[], Any]
    steps: int
    eval_every: int
    eval_episodes: int
    eval_epsilon: float
    metric: str  # "eval_success" or "eval_return": what the threshold and the final figure read
    threshold: float | None
    hp: dict[str, Any]
    nstep: int
    arms: tuple[str, ...]
    window: int = 1  # frame stack / history length of the POMDP arms
    package: str | None = None  # the distribution the environment needs
    policy: str = "MlpPolicy"


def _corridor(length: int) -> Callable[[], Any]:
    def make() -> Any:
        import gymnasium as gym

        from hippogym.envs import register_envs

        register_envs()
        return gym.make("hippogym/SparseCorridor-v0", length=length)

    return make


def _minigrid(env_id: str) -> Callable[[], Any]:
    def make() -> Any:
        import gymnasium as gym
        import minigrid  # noqa: F401 - registers the MiniGrid ids
        from minigrid.wrappers import ImgObsWrapper

        class SuccessInfo(gym.Wrapper):
            """MiniGrid pays a positive reward only on reaching the goal: say so as ``is_success``."""

            def step(self, action: Any) -> Any:
                obs, reward, terminated, truncated, info = self.env.step(action)
                if terminated or truncated:
                    info = {**info, "is_success": bool(terminated and reward > 0)}
                return obs, reward, terminated, truncated, info

        return SuccessInfo(ImgObsWrapper(gym.make(env_id)))

    return make


def _popgym_repeat_first() -> Any:
    from popgym.envs.repeat_first import RepeatFirstEasy

    return RepeatFirstEasy()


def _bitflip(bits: int) -> Callable[[], Any]:
    def make() -> Any:
        from stable_baselines3.common.envs import BitFlippingEnv

        return BitFlippingEnv(n_bits=bits, max_steps=bits)

    return make


def _gym(env_id: str) -> Callable[[], Any]:
    def make() -> Any:
        import gymnasium as gym

        return gym.make(env_id)

    return make


ENVS: dict[str, EnvSpec] = {
    spec.name: spec
    for spec in (
        EnvSpec("corridor30", _corridor(30), 30_000, 1_500, 10, 0.05, "eval_success", 0.9, dict(common.DQN_SPARSE), 10,
                DQN_ARMS),
        EnvSpec("corridor50", _corridor(50), 50_000, 2_500, 10, 0.05, "eval_success", 0.9, dict(common.DQN_SPARSE), 10,
                DQN_ARMS),
        EnvSpec("doorkey5", _minigrid("MiniGrid-DoorKey-5x5-v0"), 150_000, 7_500, 10, 0.05, "eval_success", 0.8,
                DQN_GRID, 10, DQN_ARMS, package="minigrid"),
        EnvSpec("memoryS7", _minigrid("MiniGrid-MemoryS7-v0"), 150_000, 7_500, 10, 0.05, "eval_return", None,
                DQN_GRID, 3, ("uniform",) + POMDP_ARMS, window=8, package="minigrid"),
        EnvSpec("repeatfirst", _popgym_repeat_first, 100_000, 5_000, 10, 0.0, "eval_return", None, DQN_GRID, 3,
                ("uniform",) + POMDP_ARMS, window=52, package="popgym"),
        EnvSpec("bitflip10", _bitflip(10), 20_000, 1_000, 20, 0.0, "eval_success", 0.9, DQN_BITFLIP, 3,
                ("uniform",) + GOAL_ARMS, policy="MultiInputPolicy"),
        EnvSpec("bitflip15", _bitflip(15), 60_000, 3_000, 20, 0.0, "eval_success", 0.9, DQN_BITFLIP, 3,
                ("uniform",) + GOAL_ARMS, policy="MultiInputPolicy"),  # SB3's n-step buffer takes no Dict spaces
        EnvSpec("mountaincar", _gym("MountainCar-v0"), 120_000, 6_000, 10, 0.0, "eval_return", -110.0,
                DQN_MOUNTAINCAR, 10, DQN_ARMS),
        EnvSpec("cartpole", _gym("CartPole-v1"), 50_000, 2_500, 10, 0.0, "eval_return", None, dict(common.DQN_CARTPOLE),
                3, ("uniform", "nstep", "per", "hippo-replay", "hippo-value")),
    )
}


def provenance() -> dict[str, Any]:
    """Versions, git commit and whether the tree was clean: what a result needs to be re-run."""
    versions = {"python": platform.python_version()}
    for dist in ("torch", "numpy", "gymnasium", "stable-baselines3", "sb3-contrib", "minigrid", "popgym", "hippogym"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    status = git("status", "--porcelain")
    dirty = None
    if status is not None:  # results being written into the tree do not make it dirty
        changed = [line[3:] for line in status.splitlines() if line.strip()]
        dirty = any(not path.startswith(("docs/evidence/runs", "runs/")) for path in changed)
    return {"versions": versions, "commit": git("rev-parse", "HEAD"), "dirty": dirty}


def _wrap_pomdp(arm: str, spec: EnvSpec, env: Any, memory: Any, record: bool = True) -> Any:
    """The POMDP arms' observation: one-hot for a Discrete space, then a frame stack or history recall.

    ``record=False`` (the evaluation env) reads the memory without writing to it.
    """
    from gymnasium import spaces
    from gymnasium.wrappers import FlattenObservation, FrameStackObservation

    from hippogym import RecallObservation, RecordEpisodes

    if isinstance(env.observation_space, spaces.Discrete):
        from gymnasium.wrappers import TransformObservation

        n = env.observation_space.n

        def one_hot(x: Any) -> Any:
            import numpy as np

            out = np.zeros(n, dtype=np.float32)
            out[int(x)] = 1.0
            return out

        env = TransformObservation(env, one_hot, spaces.Box(0.0, 1.0, (n,), dtype="float32"))
    if arm == "framestack":
        return FlattenObservation(FrameStackObservation(env, spec.window))
    if arm == "hippo-history":
        inner = FlattenObservation(env)
        inner = RecordEpisodes(inner, memory) if record else inner
        return RecallObservation(inner, memory, top_k=3, context=spec.window)
    return FlattenObservation(env) if len(env.observation_space.shape or ()) > 1 else env


def make_model(spec: EnvSpec, arm: str, env: Any, seed: int) -> Any:
    """The agent of ``arm`` on ``env``: the same DQN for every DQN arm, only the named part differs."""
    from stable_baselines3 import DQN

    hp = dict(spec.hp)
    if arm == "recurrent-ppo":
        from sb3_contrib import RecurrentPPO

        return RecurrentPPO("MlpLstmPolicy", env, seed=seed, verbose=0, device="cpu")
    if arm == "hippo-history":  # RecallObservation's observation is a Dict (the observation and what is recalled)
        return DQN("MultiInputPolicy", env, seed=seed, verbose=0, device="cpu", **hp)
    if arm in ("uniform", "framestack"):
        return DQN(spec.policy, env, seed=seed, verbose=0, device="cpu", **hp)
    if arm == "nstep":
        return DQN(spec.policy, env, seed=seed, verbose=0, device="cpu", n_steps=spec.nstep, **hp)
    if arm == "her":
        from stable_baselines3 import HerReplayBuffer

        return DQN(spec.policy, env, seed=seed, verbose=0, device="cpu", replay_buffer_class=HerReplayBuffer,
                   replay_buffer_kwargs=dict(HER), **hp)
    from hippogym.integrations.episodic_dqn import HippoDQN
    from hippogym.integrations.sb3 import HippoReplayBuffer

    gamma = float(hp.get("gamma", 0.99))
    base = dict(embed_dim=64, key_dtype=common.KEY_DTYPE, seed=seed, eviction="utility")  # the keys every committed run used
    if arm == "hippo-replay":
        kw = dict(base, mixture_ratio=0.5, consolidate_every=2_000, consolidate_steps=50)
        return DQN(spec.policy, env, seed=seed, verbose=0, device="cpu", replay_buffer_class=HippoReplayBuffer,
                   replay_buffer_kwargs=kw, **hp)
    if arm == "per":
        kw = dict(base, mixture_ratio=0.0, query=None, consolidate_every=0, gamma=gamma, prioritized=True)
        return HippoDQN(spec.policy, env, seed=seed, verbose=0, device="cpu", episodic_weight=0.0, priority="td",
                        replay_buffer_class=HippoReplayBuffer, replay_buffer_kwargs=kw, **hp)
    if arm in ("hippo-value", "hippo-her"):
        kw = dict(base, mixture_ratio=0.0, query=None, consolidate_every=0, gamma=gamma, n_steps=spec.nstep)
        if arm == "hippo-her":
            kw.update(HER, env=env)
        return HippoDQN(spec.policy, env, seed=seed, verbose=0, device="cpu", episodic_weight=common.EPISODIC_WEIGHT,
                        replay_buffer_class=HippoReplayBuffer, replay_buffer_kwargs=kw, **hp)
    raise ValueError(f"unknown arm {arm!r}; expected one of {ARMS}")


def run_one(env: str, arm: str, seed: int, steps: int | None = None, command: str = "") -> dict[str, Any]:
    """Train one (environment, arm, seed) and return its curve, figures and provenance."""
    spec = ENVS[env]
    if arm not in spec.arms:
        raise ValueError(f"arm {arm!r} is not planned for {env!r}; planned: {spec.arms}")
    budget = int(steps or spec.steps)
    memory = None
    if arm == "hippo-history":
        from hippogym import FeatureConfig, HippocampalReplayBuffer, MemoryStore

        memory = HippocampalReplayBuffer(MemoryStore(embed_dim=32, capacity=20_000, key_dtype=common.KEY_DTYPE, seed=seed),
                                         features=FeatureConfig(context=spec.window), seed=seed)
    train_env, eval_env = spec.make(), spec.make()
    if arm in POMDP_ARMS:
        train_env = _wrap_pomdp(arm, spec, train_env, memory)
        eval_env = _wrap_pomdp(arm, spec, eval_env, memory, record=False)
    elif spec.package == "minigrid":
        from gymnasium.wrappers import FlattenObservation

        train_env, eval_env = FlattenObservation(train_env), FlattenObservation(eval_env)
    model = make_model(spec, arm, train_env, seed)
    cb = common.make_eval_callback(
        lambda m: common.evaluate(m, eval_env, spec.eval_episodes, 10_000 + seed, epsilon=spec.eval_epsilon),
        spec.eval_every,
    )
    model.learn(budget, callback=cb)
    curve = cb.rows
    reached = None if spec.threshold is None else common.first_sustained_step(curve, spec.metric, spec.threshold)
    return {
        "experiment": "evidence", "env": env, "group": env, "arm": arm, "seed": seed,
        "steps": int(model.num_timesteps), "budget": budget, "metric": spec.metric, "threshold": spec.threshold,
        "final": common.tail_mean(curve, spec.metric),
        "auc": common.curve_mean(curve, spec.metric),
        "steps_to_threshold": reached,
        "censored": reached is None and spec.threshold is not None,
        "train_s": cb.train_s,
        "hp": {k: v for k, v in spec.hp.items() if k != "policy_kwargs"},
        "command": command,
        **provenance(),
        "curve": curve,
    }


def _seeds(text: str) -> list[int]:
    """``"0,1,2"`` or ``"100-109"`` (inclusive range), or a mix."""
    out: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if "-" in part:
            lo, hi = part.split("-", 1)
            out.extend(range(int(lo), int(hi) + 1))
        elif part:
            out.append(int(part))
    return out


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True, choices=sorted(ENVS))
    parser.add_argument("--arms", default=None, help="comma list (default: every arm the plan gives the env)")
    parser.add_argument("--seeds", default="0,1,2", help='"0,1,2" or "100-109"')
    parser.add_argument("--steps", type=int, default=None, help="override the planned budget (smoke runs only)")
    parser.add_argument("--out", default="runs/evidence")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    spec = ENVS[args.env]
    arms = common.parse_list(args.arms, str) if args.arms else list(spec.arms)
    unplanned = [a for a in arms if a not in spec.arms]
    if unplanned:
        parser.error(f"arms {unplanned} are not planned for {args.env}; planned: {list(spec.arms)}")
    command = "python benchmarks/rl/evidence.py " + " ".join(sys.argv[1:] if argv is None else argv)
    jobs = [dict(env=args.env, arm=arm, seed=s, steps=args.steps, command=command)
            for s in _seeds(args.seeds) for arm in arms]
    if args.dry_run:
        common.dry_run(jobs)
        return []
    out = Path(args.out)
    return common.run_jobs(SPEC, jobs, args.workers,
                           on_result=lambda r: common.write_seed(out / r["env"], {**r, "group": ""}))


if __name__ == "__main__":
    main()
