"""Memory-engine benchmark: hippogym's replay buffer against Stable-Baselines3's, side by side.

Data: 8-dim observations, 2-dim actions, 128-dim keys, 100-step episodes. Observations are smooth
trajectories (a random walk per episode from a random start), not i.i.d. noise, so keys of one
episode are correlated as in real RL data. Every hippogym figure is measured in the same run as
its SB3 ``ReplayBuffer`` reference (observation ``Box(8)``, action ``Box(2)``, ``n_envs=1``),
in interleaved blocks (A, B, A, B, ...; the order flips every repeat); the figure is the median
over repeats, and the ratio is SB3 time / hippogym time (so > 1 means hippogym is faster).

Figures (each with ``ratio``, ``bar`` and ``met``):

* ``add_episode`` (key encoding included) transitions/s vs SB3 per-transition ``add()`` fed numpy
  arrays as SB3's off-policy loop passes them; at a small fill level and at the largest size (full,
  so every insert evicts). The scaling figure is the time per episode at the largest size over
  the time at the small level, each normalised by the SB3 add time measured interleaved with it
  (the raw ratio is reported too).
* uniform ``sample(256)`` calls/s vs SB3 ``sample(256)``.
* hybrid ``sample(256)`` (mixture 0.5, ``top_k=5``) vs SB3 uniform, for the torch index and the
  FAISS index (``index="faiss"``: a flat FAISS index until 2048 units, IVF after), each with a
  fresh query per call and with a repeated query (the buffer caches the last query's embedding
  and, while the memory is unchanged, its retrieval). Plus recall@5 of each fast path against
  exact search on ~100 queries built from stored transitions and ~100 random observations.
* prioritised ``sample(256)`` + ``update_priorities`` vs SB3 uniform ``sample(256)``.
* ``consolidate(steps=50, batch_size=64)``: steps/s and the share of time spent refreshing keys.
* bytes per stored transition vs the raw payload, and peak RSS.

Everything runs on one thread (``torch.set_num_threads``, BLAS and FAISS/OpenMP threads).
Prints one JSON object on stdout; progress goes to stderr.

Usage::

    python benchmarks/bench_memory.py                 # 100k and 1M (several minutes)
    python benchmarks/bench_memory.py --quick         # CI-sized (< 60 s)
    python benchmarks/bench_memory.py --sizes 100000,1000000 --repeats 9
"""

from __future__ import annotations

import argparse
import os
import sys


def _pin_threads(threads: int) -> None:
    # Must run before numpy/torch/faiss load their thread pools.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)


if __name__ == "__main__":
    _early = argparse.ArgumentParser(add_help=False)
    _early.add_argument("--threads", type=int, default=1)
    _pin_threads(_early.parse_known_args()[0].threads)

import gc  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import torch  # noqa: E402

from hippogym import Episode, HippocampalReplayBuffer, MemoryStore  # noqa: E402
from hippogym.types import DEFAULT_EMBED_DIM, DEFAULT_KEY_DTYPE  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from retrieval_recall import recall_table  # noqa: E402

OBS_DIM, ACT_DIM, STEPS, BATCH = 8, 2, 100, 256
RAW_BYTES = 2 * OBS_DIM * 4 + ACT_DIM * 4 + 4 + 1 + 1  # obs + next_obs + action + reward + 2 flags

logger = logging.getLogger("bench_memory")


# ---------------------------------------------------------------------------------------- data
class Trajectories:
    """``n`` smooth episodes: a random start, then a Gaussian random walk (step 0.1 per axis)."""

    def __init__(self, n: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        start = rng.normal(0.0, 1.0, (n, 1, OBS_DIM))
        walk = rng.normal(0.0, 0.1, (n, STEPS + 1, OBS_DIM))
        walk[:, 0] = 0.0
        self.states = (start + np.cumsum(walk, axis=1)).astype(np.float32)  # [n, T + 1, obs]
        self.actions = rng.uniform(-1.0, 1.0, (n, STEPS, ACT_DIM)).astype(np.float32)
        dist = np.linalg.norm(self.states[:, 1:], axis=2)
        self.rewards = (-0.1 * dist + rng.normal(0.0, 0.01, (n, STEPS))).astype(np.float32)
        self.terminated = np.zeros((n, STEPS), dtype=bool)
        self.truncated = np.zeros((n, STEPS), dtype=bool)
        ends = rng.random(n) < 0.3
        self.terminated[ends, -1] = True
        self.truncated[~ends, -1] = True
        self.n = n

    def episode(self, i: int) -> Episode:
        return Episode(
            states=torch.from_numpy(self.states[i]), actions=torch.from_numpy(self.actions[i]),
            rewards=torch.from_numpy(self.rewards[i]), terminated=torch.from_numpy(self.terminated[i]),
            truncated=torch.from_numpy(self.truncated[i]),
        )

    def episode_from_numpy(self, i: int) -> Episode:
        """As a recorder would build it: from numpy arrays."""
        return Episode(states=self.states[i], actions=self.actions[i], rewards=self.rewards[i],
                       terminated=self.terminated[i], truncated=self.truncated[i])

    def sb3_steps(self, i: int) -> list[tuple[Any, ...]]:
        """The arguments of SB3's ``ReplayBuffer.add`` for each step (what its off-policy loop passes)."""
        out = []
        for t in range(STEPS):
            out.append((
                self.states[i, t][None].copy(), self.states[i, t + 1][None].copy(), self.actions[i, t][None].copy(),
                np.array([self.rewards[i, t]], dtype=np.float32), np.array([self.terminated[i, t] or self.truncated[i, t]]),
                [{"TimeLimit.truncated": bool(self.truncated[i, t])}],
            ))
        return out


def sb3_buffer(size: int, data: Trajectories | None = None, episodes: int = 0) -> Any:
    """An SB3 ``ReplayBuffer``; with ``data``, its first ``episodes`` episodes written in directly."""
    from gymnasium import spaces
    from stable_baselines3.common.buffers import ReplayBuffer

    rb = ReplayBuffer(
        size, spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32), spaces.Box(-1.0, 1.0, (ACT_DIM,), np.float32),
        device="cpu", n_envs=1,
    )
    if data is not None and episodes:
        n = episodes * STEPS
        rb.observations[:n, 0] = data.states[:episodes, :-1].reshape(n, OBS_DIM)
        rb.next_observations[:n, 0] = data.states[:episodes, 1:].reshape(n, OBS_DIM)
        rb.actions[:n, 0] = data.actions[:episodes].reshape(n, ACT_DIM)
        rb.rewards[:n, 0] = data.rewards[:episodes].reshape(n)
        rb.dones[:n, 0] = (data.terminated[:episodes] | data.truncated[:episodes]).reshape(n)
        rb.timeouts[:n, 0] = data.truncated[:episodes].reshape(n)
        rb.pos, rb.full = n % size, n >= size
    return rb


# ---------------------------------------------------------------------------------------- timing
def interleaved(variants: dict[str, Callable[[], Any]], calls: int, repeats: int, warmup: int = 3) -> dict[str, dict[str, float]]:
    """Seconds per call of each variant: blocks of ``calls`` calls, interleaved, order flipped
    every repeat; median over repeats (with min and max)."""
    for fn in variants.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            fn = variants[name]
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            times[name].append((time.perf_counter() - t0) / calls)
    return {n: {"median": statistics.median(v), "min": min(v), "max": max(v)} for n, v in times.items()}


def us(seconds: float) -> float:
    return round(seconds * 1e6, 2)


class Report:
    """Collects figures; every one has ``ratio``, ``bar`` and ``met`` (``None`` when informative)."""

    def __init__(self) -> None:
        self.figures: list[dict[str, Any]] = []

    def add(self, name: str, ratio: float | None, bar: float | None, **detail: Any) -> dict[str, Any]:
        fig = {"name": name, "ratio": None if ratio is None else round(ratio, 3), "bar": bar,
               "met": None if bar is None or ratio is None else bool(ratio >= bar)}
        fig.update(detail)
        self.figures.append(fig)
        level = logging.INFO if fig["met"] is not False else logging.WARNING
        logger.log(level, "%s: ratio %s (bar %s) %s", name, fig["ratio"], bar, "" if fig["met"] is None else ("met" if fig["met"] else "MISSED"))
        return fig

    def add_speed(self, name: str, ours: dict[str, float], sb3: dict[str, float], bar: float | None, **detail: Any) -> dict[str, Any]:
        return self.add(
            name, sb3["median"] / ours["median"], bar, hippogym_us=us(ours["median"]), sb3_us=us(sb3["median"]),
            hippogym_calls_per_s=round(1.0 / ours["median"], 1), sb3_calls_per_s=round(1.0 / sb3["median"], 1),
            hippogym_us_range=[us(ours["min"]), us(ours["max"])], sb3_us_range=[us(sb3["min"]), us(sb3["max"])], **detail,
        )


# ---------------------------------------------------------------------------------------- pieces
def fill(buffer: HippocampalReplayBuffer, data: Trajectories, start: int, stop: int) -> float:
    t0 = time.perf_counter()
    for i in range(start, stop):
        buffer.add_episode(data.episode(i % data.n))
    return time.perf_counter() - t0


def bench_add(report: Report, small: HippocampalReplayBuffer, large: HippocampalReplayBuffer,
              inserts: list[Trajectories], args: argparse.Namespace) -> None:
    """Inserts into a nearly empty memory and into a full one (evicting), and SB3 adds, interleaved.

    Blocks of ``add_block`` episodes per memory vs the same number of transitions added to SB3
    one by one. ``inserts`` hold episodes not inserted otherwise; every insert takes the next one
    (duplicates in memory would create ties and distort the recall figures).
    """
    block = args.add_block
    sb3_steps = [step for i in range(4) for step in inserts[0].sb3_steps(i)]
    rb = sb3_buffer(large.memory.capacity)
    step_cycle = itertools.cycle(range(len(sb3_steps)))

    def sb3() -> None:
        for _ in range(block * STEPS):
            rb.add(*sb3_steps[next(step_cycle)])

    variants: dict[str, Callable[[], Any]] = {"sb3": sb3}
    stored = {"small": len(small), "large": len(large)}
    for (name, buffer), data in zip((("small", small), ("large", large)), inserts):
        pool = [data.episode(i) for i in range(data.n)]
        cycle = itertools.cycle(range(data.n))

        def ours(buffer: HippocampalReplayBuffer = buffer, pool: list[Episode] = pool, cycle: Any = cycle) -> None:
            for _ in range(block):
                buffer.add_episode(pool[next(cycle)])

        def ours_numpy(buffer: HippocampalReplayBuffer = buffer, data: Trajectories = data, cycle: Any = cycle) -> None:
            for _ in range(block):
                buffer.add_episode(data.episode_from_numpy(next(cycle)))

        variants[name] = ours
        variants[f"{name}_with_episode"] = ours_numpy
    res = interleaved(variants, 1, args.repeats, warmup=1)
    per_tr = {k: v["median"] / (block * STEPS) for k, v in res.items()}
    for name, buffer in (("small", small), ("large", large)):
        level = stored[name]
        report.add(
            f"add_episode@{level}", per_tr["sb3"] / per_tr[name], 0.5,
            stored_before=level, stored_after=len(buffer), capacity=buffer.memory.capacity,
            evicting=level >= buffer.memory.capacity,
            hippogym_transitions_per_s=round(1 / per_tr[name]), sb3_transitions_per_s=round(1 / per_tr["sb3"]),
            hippogym_us_per_episode=us(per_tr[name] * STEPS), sb3_us_per_100_adds=us(per_tr["sb3"] * STEPS),
            note="add_episode (key encoding included) on pre-built Episodes vs 100 SB3 add() calls",
        )
        report.add(
            f"add_episode_including_Episode_construction@{level}", per_tr["sb3"] / per_tr[f"{name}_with_episode"], None,
            hippogym_us_per_episode=us(per_tr[f"{name}_with_episode"] * STEPS),
            note="Episode(...) built from numpy arrays for every insert (validation included)",
        )
    growth = per_tr["large"] / per_tr["small"]
    report.add(
        f"add_episode_time@{stored['large']}_vs_@{stored['small']}", 1.5 / growth, 1.0, time_ratio=round(growth, 3),
        max_time_ratio=1.5, us_per_episode={str(stored["small"]): us(per_tr["small"] * STEPS), str(stored["large"]): us(per_tr["large"] * STEPS)},
        note="both memories have the same capacity and are timed in the same interleaved loop; ratio = 1.5 / time ratio "
             "(met when the time per episode at the large size is at most 1.5x the time at the small one)",
    )


def recall_at_k(buffer: HippocampalReplayBuffer, queries: np.ndarray, k: int = 5) -> float:
    store = buffer.memory
    emb = buffer.embed_queries(queries).numpy()
    hits = 0
    for i in range(emb.shape[0]):
        _, fast = store.search_np(emb[i : i + 1], k, exact=False)
        _, exact = store.search_np(emb[i : i + 1], k, exact=True)
        hits += len(set(fast[0].tolist()) & set(exact[0].tolist()))
    return hits / (emb.shape[0] * k)


def recall_queries(buffer: HippocampalReplayBuffer, data: Trajectories, n: int, seed: int) -> dict[str, np.ndarray]:
    """``n`` encoder inputs built from stored transitions (observation, zero action, reward: equal
    to a stored key) and ``n`` random observations with the data's per-axis mean and spread."""
    rng = np.random.default_rng(seed)
    store = buffer.memory
    rows = store.sample_rows(n, generator=torch.Generator().manual_seed(seed)).numpy()
    stored = np.concatenate(
        [store.obs["obs"].numpy()[rows], np.zeros((n, ACT_DIM), np.float32), store.rewards.numpy()[rows][:, None]], axis=1
    ).astype(np.float32)
    flat = data.states.reshape(-1, OBS_DIM)
    random = rng.normal(flat.mean(0), flat.std(0), (n, OBS_DIM)).astype(np.float32)
    return {"stored": stored, "random": random}


def bench_hybrid(report: Report, buffer: HippocampalReplayBuffer, rb: Any, label: str, size: int,
                 queries: np.ndarray, recall_q: dict[str, np.ndarray], args: argparse.Namespace) -> dict[str, Any]:
    fresh = itertools.cycle(queries)
    repeated = queries[0]
    res = interleaved({
        "sb3": lambda: rb.sample(BATCH),
        "fresh": lambda: buffer.sample(BATCH, query_state=next(fresh)),
        "repeated": lambda: buffer.sample(BATCH, query_state=repeated),
    }, args.calls, args.repeats)
    index = buffer.memory.index
    if hasattr(index, "describe"):
        kind = f"transition-{index.describe(buffer.memory)['mode']}"
    else:
        kind = "faiss-ivf" if getattr(index, "_trained_ivf", False) else "faiss-flat"
    out: dict[str, Any] = {"index": kind}
    bar = (0.5 if size <= 100_000 else 0.33) if label == "default" else None  # the retrieval issue's bars
    out["fresh"] = report.add_speed(f"hybrid_sample[{label},fresh_query]@{size}", res["fresh"], res["sb3"], bar, index=kind)
    out["repeated"] = report.add_speed(f"hybrid_sample[{label},repeated_query]@{size}", res["repeated"], res["sb3"], 0.5, index=kind)
    t0 = time.perf_counter()
    recalls = {name: round(recall_at_k(buffer, q), 3) for name, q in recall_q.items()}
    out["recall@5"] = recalls
    report.add(f"recall@5[{label}]@{size}", None, None, index=kind, queries={k: len(v) for k, v in recall_q.items()},
               recall_at_5=recalls, note="fast path vs exact MaxSim search (buffer.retrieve(..., exact=True))")
    logger.info("recall %s@%d: %s (%.1f s)", label, size, recalls, time.perf_counter() - t0)
    return out


def store_bytes(buffer: HippocampalReplayBuffer) -> dict[str, Any]:
    store = buffer.memory
    rows = sum(t.numel() * t.element_size() for t in store._row_tensors().values())
    rows += store.row_slot.numel() * store.row_slot.element_size()
    units = sum(getattr(store, name).numel() * getattr(store, name).element_size() for name in store._UNIT_FIELDS)
    per = (rows + units) / store.capacity
    per_field = {name: t[0].numel() * t.element_size() for name, t in store._row_tensors().items()}
    per_field["row_slot"] = store.row_slot.element_size()
    index = store.index.describe(store).get("bytes", 0) if hasattr(store.index, "describe") else 0
    return {"bytes_per_transition": round(per, 1), "raw_payload_bytes": RAW_BYTES, "row_bytes_by_field": per_field,
            "unit_table_bytes_per_transition": round(units / store.capacity, 2),
            "index_bytes_per_transition": round(index / max(len(store), 1), 1),
            "note": "bytes_per_transition counts the store's rows and unit table; the retrieval index's cells "
                    "(index_bytes_per_transition, per stored transition) come on top"}


def rss() -> int:
    return psutil.Process().memory_info().rss


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ---------------------------------------------------------------------------------------- main
def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    try:
        import faiss

        faiss.omp_set_num_threads(args.threads)
    except ImportError:  # pragma: no cover
        faiss = None
    sizes = sorted(args.sizes)
    largest = sizes[-1]
    small_level = args.small_level or min(10_000, max(largest // 10, 1000))
    report = Report()
    t_start = time.perf_counter()
    load_start = os.getloadavg()
    data = Trajectories(max(largest // STEPS, 1) + 64, args.seed)
    held_out = Trajectories(64, args.seed + 1)
    inserts = [Trajectories(2 * (args.repeats + 1) * args.add_block + 8, args.seed + 10 + i) for i in range(2)]
    fresh_queries = held_out.states[:, :STEPS].reshape(-1, OBS_DIM)[: args.fresh_queries].copy()
    sections: dict[str, Any] = {"sizes": {}}
    rss_base = rss()

    for size in sizes:
        n_eps = size // STEPS
        sec: dict[str, Any] = {}
        sections["sizes"][str(size)] = sec
        logger.info("== %d transitions: default index", size)
        gc.collect()
        before = rss()
        buffer = HippocampalReplayBuffer(
            MemoryStore(embed_dim=args.embed_dim, capacity=size, key_dtype=args.key_dtype, seed=args.seed),
            mixture_ratio=0.5, semantic={"top_k": 5}, seed=args.seed,
        )
        sec["fill_s"] = round(fill(buffer, data, 0, n_eps), 2)
        sec["rss_increase_bytes_per_transition"] = round((rss() - before) / size, 1)
        if size == largest and not args.retrieval_only:
            # A second memory of the same capacity holding only ``small_level`` transitions.
            small = HippocampalReplayBuffer(
                MemoryStore(embed_dim=args.embed_dim, capacity=size, key_dtype=args.key_dtype, seed=args.seed),
                mixture_ratio=0.5, semantic={"top_k": 5}, seed=args.seed,
            )
            fill(small, data, 0, small_level // STEPS)
            bench_add(report, small, buffer, inserts, args)
            del small
            gc.collect()
        sec["stored"] = len(buffer)
        rb = sb3_buffer(size, data, n_eps)

        res = interleaved({"sb3": lambda rb=rb: rb.sample(BATCH), "uniform": lambda b=buffer: b.sample(BATCH)}, args.calls, args.repeats)
        sec["uniform"] = report.add_speed(f"uniform_sample@{size}", res["uniform"], res["sb3"], 1.0)

        recall_q = recall_queries(buffer, data, args.recall_queries, args.seed + 2)
        sec["hybrid_default"] = bench_hybrid(report, buffer, rb, "default", size, fresh_queries, recall_q, args)
        sec["retrieval"] = recall_table(buffer, size, args.recall_queries, args.seed + 4, not args.skip_cartpole,
                                        args.embed_dim, logger, key_dtype=args.key_dtype)
        for key_set, paths in sec["retrieval"].items():
            report.add(f"retrieval[{key_set}]@{size}", None, None, **paths,
                       note="recall@1/@5 against exact search (ties count as hits) and median cost of one search")
        if args.retrieval_only:
            del buffer
            rb = None
            gc.collect()
            continue

        per = HippocampalReplayBuffer(
            memory=buffer.memory, encoder=buffer.encoder, sampler="prioritized", seed=args.seed + 3
        )
        td = np.abs(np.random.default_rng(args.seed).normal(0, 1, (64, BATCH))).astype(np.float32)
        td_cycle = itertools.cycle([torch.from_numpy(t) for t in td])

        def per_step(per: HippocampalReplayBuffer = per, td_cycle: Any = td_cycle) -> None:
            batch = per.sample(BATCH)
            per.update_priorities(batch.indices, next(td_cycle))

        res = interleaved({"sb3": lambda rb=rb: rb.sample(BATCH), "per": per_step}, args.calls, args.repeats)
        sec["prioritized"] = report.add_speed(
            f"prioritized_sample+update@{size}", res["per"], res["sb3"], 0.3 if size == largest else None,
            note="sample(256) + update_priorities(256) vs SB3 uniform sample(256)",
        )
        buffer.memory.listeners.remove(per.sampler)
        per = per_step = None  # drop the references to the memory

        sec["memory"] = store_bytes(buffer)
        if size == sizes[0]:
            runs = [buffer.consolidate(steps=50, batch_size=64) for _ in range(args.consolidate_repeats)]
            pick = sorted(runs, key=lambda m: m["steps_per_s"])[len(runs) // 2]
            sec["consolidate"] = report.add(
                f"consolidate(50,64)@{size}", None, None, steps_per_s=round(pick["steps_per_s"], 1),
                refresh_s=round(pick["refresh_s"], 4), refresh_share=round(pick["refresh_share"], 3),
                keys_refreshed=pick["keys_refreshed"], runs=len(runs),
            )
        del buffer
        gc.collect()

        if faiss is not None and not args.skip_faiss:
            logger.info("== %d transitions: FAISS index", size)
            buffer = HippocampalReplayBuffer(
                MemoryStore(embed_dim=args.embed_dim, capacity=size, index="faiss", key_dtype=args.key_dtype, seed=args.seed),
                mixture_ratio=0.5, semantic={"top_k": 5}, seed=args.seed,
            )
            sec["fill_faiss_s"] = round(fill(buffer, data, 0, n_eps), 2)
            sec["hybrid_faiss"] = bench_hybrid(report, buffer, rb, "faiss", size, fresh_queries, recall_q, args)
            del buffer
            gc.collect()
        rb = None
        gc.collect()

    sb3_bytes = 2 * OBS_DIM * 4 + ACT_DIM * 4 + 4 + 4 + 4
    mem = sections["sizes"][str(largest)].get("memory")
    if mem is not None:  # not measured with --retrieval-only
        report.add("bytes_per_transition", mem["bytes_per_transition"] / RAW_BYTES, None,
                   bytes_per_transition=mem["bytes_per_transition"], raw_payload_bytes=RAW_BYTES,
                   sb3_bytes_per_transition=sb3_bytes, index_bytes_per_transition=mem["index_bytes_per_transition"],
                   rss_increase_bytes_per_transition=sections["sizes"][str(largest)]["rss_increase_bytes_per_transition"],
                   note=f"ratio = stored bytes / raw payload (obs + next_obs + action + reward + flags); keys are "
                        f"{args.embed_dim} {args.key_dtype}; the index's cells come on top (index_bytes_per_transition)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    report.add("peak_rss", None, None, peak_rss_bytes=peak, peak_rss_gib=round(peak / 2**30, 2),
               note="whole process: includes the second memory of the largest capacity used by the insert-scaling figure, "
                    "SB3 buffers and the test data")
    figures = report.figures
    bars = [f for f in figures if f["met"] is not None]
    return {
        "benchmark": "bench_memory",
        "quick": args.quick,
        "config": {
            "obs_dim": OBS_DIM, "action_dim": ACT_DIM, "embed_dim": args.embed_dim, "key_dtype": args.key_dtype, "episode_steps": STEPS, "batch": BATCH,
            "sizes": sizes, "repeats": args.repeats, "calls_per_block": args.calls, "add_block_episodes": args.add_block,
            "threads": args.threads, "seed": args.seed, "mixture_ratio": 0.5, "top_k": 5,
            "data": "random-walk trajectories (start N(0,1), step N(0,0.1) per axis)",
        },
        "machine": {
            "cpu": cpu_name(), "logical_cores": os.cpu_count(), "load_avg_at_start": load_start,
            "python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "faiss": getattr(faiss, "__version__", None) if faiss is not None else None,
            "sb3": __import__("stable_baselines3").__version__, "load_avg_at_end": os.getloadavg(),
        },
        "figures": figures,
        "bars_met": sum(1 for f in bars if f["met"]), "bars_total": len(bars),
        "all_bars_met": all(f["met"] for f in bars),
        "details": sections,
        "peak_rss_bytes": peak, "rss_at_start_bytes": rss_base,
        "elapsed_s": round(time.perf_counter() - t_start, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CI-sized run: small sizes, few repeats (< 60 s)")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=None,
                        help="comma-separated memory sizes in transitions (default 100000,1000000; quick 20000,50000)")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repeats per figure (default 9; quick 3)")
    parser.add_argument("--calls", type=int, default=None, help="calls per timed block (default 200; quick 50)")
    parser.add_argument("--add-block", type=int, default=None, help="episodes per timed insert block (default 20; quick 5)")
    parser.add_argument("--small-level", type=int, default=None, help="fill level of the small insert measurement (default 10000)")
    parser.add_argument("--fresh-queries", type=int, default=1000, help="distinct queries cycled through for fresh-query figures")
    parser.add_argument("--recall-queries", type=int, default=None, help="queries per recall set (default 100; quick 30)")
    parser.add_argument("--consolidate-repeats", type=int, default=None, help="consolidate() runs (median; default 3; quick 1)")
    parser.add_argument("--skip-faiss", action="store_true")
    parser.add_argument("--skip-cartpole", action="store_true", help="recall table on the random-walk memory only")
    parser.add_argument("--retrieval-only", action="store_true",
                        help="only the uniform/hybrid sampling figures and the recall table (no inserts, PER, consolidation)")
    parser.add_argument("--threads", type=int, default=1, help="torch/BLAS/FAISS threads (default 1)")
    parser.add_argument("--embed-dim", type=int, default=DEFAULT_EMBED_DIM, help="key width (default: the library's)")
    parser.add_argument("--key-dtype", default=DEFAULT_KEY_DTYPE, choices=["float32", "float16"],
                        help="key storage (default: the library's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    quick = args.quick
    args.sizes = args.sizes or ([20_000, 50_000] if quick else [100_000, 1_000_000])
    args.repeats = args.repeats or (3 if quick else 9)
    args.calls = args.calls or (50 if quick else 200)
    args.add_block = args.add_block or (5 if quick else 20)
    args.recall_queries = args.recall_queries or (30 if quick else 100)
    args.consolidate_repeats = args.consolidate_repeats or (1 if quick else 3)
    if args.small_level is None and quick:
        args.small_level = 2_000
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    result = run(args)
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
