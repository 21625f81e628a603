"""Experiment 7: offline-to-online. Start from a memory made of an expert Minari dataset, or from scratch.

1. A local Minari dataset is recorded (no download): a scripted, epsilon-noisy expert on
   ``hippogym/SparseCorridor-v0`` (``minari.create_dataset_from_buffers``, under ``--data-dir``).
2. SB3 DQN, same hyperparameters for every arm, on the same corridor:

   * ``scratch-uniform``: SB3's ReplayBuffer, empty;
   * ``scratch-hybrid``: ``HippoReplayBuffer``, empty;
   * ``expert-hybrid``: ``HippoReplayBuffer(buffer=memory_from_minari(dataset))``;
   * ``expert-uniform``: SB3's ReplayBuffer pre-filled with the same expert transitions (so the
     comparison separates "having the data" from "having it in hippogym's memory").

3. Figure: env steps until the greedy policy reaches 90% success (``--threshold``), AUC.

Needs ``hippogym.integrations.minari.memory_from_minari``; if it cannot be imported the script
says so, writes ``status: unavailable`` to the summary and runs nothing.

Examples::

    python benchmarks/rl/offline_to_online.py --out runs/rl/offline
    python benchmarks/rl/offline_to_online.py --seeds 2 --steps 6000 --out /tmp/o2o
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.rl import common

ARMS = ("scratch-uniform", "scratch-hybrid", "expert-hybrid", "expert-uniform")
METRICS = ["steps_to_90_censored", "reached_90", "auc_success", "final_success", "train_s"]


def loader() -> tuple[Any, str | None]:
    """``memory_from_minari``, or ``None`` and the reason it is unavailable."""
    try:
        from hippogym.integrations.minari import memory_from_minari
    except ImportError as exc:
        return None, f"hippogym.integrations.minari.memory_from_minari cannot be imported ({exc})"
    return memory_from_minari, None


def dataset_id(length: int) -> str:
    return f"hippogym/corridor{length}-expert-v0"


def record_dataset(data_dir: str, length: int, episodes: int, epsilon: float, seed: int) -> str:
    """Record (once) a scripted expert's episodes as a local Minari dataset; returns its id."""
    os.environ["MINARI_DATASETS_PATH"] = str(Path(data_dir).resolve())
    import gymnasium as gym
    import minari
    import numpy as np

    from hippogym.envs import register_envs

    register_envs()
    did = dataset_id(length)
    if did in minari.list_local_datasets():
        return did
    # Episodes are built as minari EpisodeBuffers and written with create_dataset_from_buffers
    # (minari's DataCollector needs jax, which is not installed here).
    from minari.data_collector.episode_buffer import EpisodeBuffer

    env = gym.make("hippogym/SparseCorridor-v0", length=length)
    rng = np.random.default_rng(seed)
    buffers = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        observations, actions, rewards, terms, truncs = [obs], [], [], [], []
        done = False
        while not done:
            action = int(rng.integers(2)) if rng.random() < epsilon else 1  # 1 = right, toward the goal
            obs, reward, terminated, truncated, _ = env.step(action)
            observations.append(obs)
            actions.append(action)
            rewards.append(float(reward))
            terms.append(bool(terminated))
            truncs.append(bool(truncated))
            done = terminated or truncated
        buffers.append(EpisodeBuffer(id=i, seed=seed + i, observations=np.stack(observations), actions=np.asarray(actions),
                                     rewards=rewards, terminations=terms, truncations=truncs, infos={}))
    minari.create_dataset_from_buffers(
        dataset_id=did, buffer=buffers, env=env, algorithm_name=f"scripted-right-eps{epsilon}",
        description="hippogym benchmark: epsilon-noisy move-right expert on SparseCorridor-v0",
    )
    env.close()
    return did


def _expert_memory(did: str, capacity: int, embed_dim: int, seed: int) -> Any:
    import minari

    from hippogym import HippocampalReplayBuffer, MemoryStore

    fn, why = loader()
    if fn is None:
        raise RuntimeError(why)
    dataset = minari.load_dataset(did)
    wanted = dict(capacity=capacity, embed_dim=embed_dim, seed=seed)
    params = inspect.signature(fn).parameters
    kwargs = {k: v for k, v in wanted.items() if k in params}
    memory = fn(dataset, **kwargs)
    if isinstance(memory, MemoryStore):
        memory = HippocampalReplayBuffer(memory=memory, seed=seed)
    return memory


def _prefill_uniform(model: Any, did: str) -> int:
    """Put the dataset's transitions into SB3's ReplayBuffer (what 'expert-uniform' starts from)."""
    import minari
    import numpy as np

    rb = model.replay_buffer
    n = 0
    for ep in minari.load_dataset(did).iterate_episodes():
        obs = np.asarray(ep.observations)
        for t in range(len(ep.actions)):
            done = bool(ep.terminations[t] or ep.truncations[t])
            info = {"TimeLimit.truncated": bool(ep.truncations[t] and not ep.terminations[t])}
            rb.add(obs[t:t + 1], obs[t + 1:t + 2], np.asarray([[ep.actions[t]]]), np.asarray([ep.rewards[t]]),
                   np.asarray([done]), [info])
            n += 1
    return n


def run_one(arm: str, seed: int, steps: int, data_dir: str, length: int = 30, group: str = "", eval_every: int = 500,
            embed_dim: int = 64, cons_every: int = 2_000, cons_steps: int = 50,
            hp: dict[str, Any] | None = None) -> dict[str, Any]:
    import gymnasium as gym

    from hippogym.envs import register_envs

    os.environ["MINARI_DATASETS_PATH"] = str(Path(data_dir).resolve())
    register_envs()
    did = dataset_id(length)
    env = gym.make("hippogym/SparseCorridor-v0", length=length)
    eval_env = gym.make("hippogym/SparseCorridor-v0", length=length)
    params = {**common.DQN_SPARSE, **(hp or {})}
    hippo = dict(consolidate_every=cons_every, consolidate_steps=cons_steps, embed_dim=embed_dim)
    prefilled = 0
    if arm == "expert-hybrid":
        from stable_baselines3 import DQN

        from hippogym.integrations.sb3 import HippoReplayBuffer

        memory = _expert_memory(did, int(params["buffer_size"]), embed_dim, seed)
        prefilled = len(memory)
        model = DQN("MlpPolicy", env, seed=seed, verbose=0, device="cpu", **params, replay_buffer_class=HippoReplayBuffer,
                    replay_buffer_kwargs=dict(buffer=memory, consolidate_every=cons_every, consolidate_steps=cons_steps))
    else:
        model = common.make_agent(env, "hybrid" if arm == "scratch-hybrid" else "uniform", seed, params, hippo)
        if arm == "expert-uniform":
            prefilled = _prefill_uniform(model, did)
    cb = common.make_eval_callback(lambda m: common.evaluate(m, eval_env, 10, 10_000 + seed, epsilon=0.05), eval_every)
    model.learn(steps, callback=cb)
    curve = cb.rows
    reached = common.first_sustained_step(curve, "eval_success", 0.9)
    return {
        "experiment": "offline_to_online", "arm": arm, "group": group, "seed": seed, "steps": int(model.num_timesteps),
        "prefilled_transitions": prefilled, "steps_to_90": reached,
        "steps_to_90_censored": reached if reached is not None else int(model.num_timesteps),
        "reached_90": float(reached is not None), "auc_success": common.curve_mean(curve, "eval_success"),
        "final_success": common.tail_mean(curve, "eval_success"), "train_s": cb.train_s, "curve": curve,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_common_args(parser, steps=20_000)
    parser.add_argument("--length", type=int, default=30)
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--expert-episodes", type=int, default=50)
    parser.add_argument("--expert-epsilon", type=float, default=0.1)
    parser.add_argument("--data-dir", default="runs/rl/minari_data")
    parser.add_argument("--eval-every", type=int, default=500)
    args = parser.parse_args(argv)
    out = Path(args.out)
    fn, why = loader()
    if fn is None:
        summary = {"experiment": "offline_to_online", "status": "unavailable", "reason": why, "command": " ".join(sys.argv)}
        common.dump_json(out / "summary.json", summary)
        print(f"offline-to-online: unavailable: {why}")
        return summary
    seeds = common.parse_seeds(args.seeds)
    arms = common.parse_list(args.arms, str)
    group = f"corridor {args.length}"
    jobs = [dict(arm=a, seed=s, steps=args.steps, data_dir=args.data_dir, length=args.length, group=group,
                 eval_every=args.eval_every, hp=common.hp_overrides(args)) for s in seeds for a in arms]
    if args.dry_run:
        return common.dry_run(jobs)
    did = record_dataset(args.data_dir, args.length, args.expert_episodes, args.expert_epsilon, seed=12_345)
    results = common.run_jobs("benchmarks.rl.offline_to_online:run_one", jobs, args.workers, on_result=lambda r: common.write_seed(out, r))
    summary = common.summarize(results, METRICS, baseline="scratch-uniform", extra={
        "experiment": "offline_to_online", "status": "ok", "dataset": did, "command": " ".join(sys.argv),
        "config": dict(steps=args.steps, seeds=seeds, arms=arms, length=args.length, expert_episodes=args.expert_episodes,
                       expert_epsilon=args.expert_epsilon, dqn=common.DQN_SPARSE)})
    common.finish(out, "Offline-to-online", summary, METRICS[:4])
    if not args.no_plot:
        common.plot_curves(results, "eval_success", out / "offline_to_online.png", "Offline-to-online", "greedy success",
                           panels=None)
    return summary


if __name__ == "__main__":
    main()
