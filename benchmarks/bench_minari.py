"""Minari adapter benchmark: converting a dataset into a memory vs Minari's own read of it.

Data: synthetic episodes written with ``minari.create_dataset_from_buffers``: 8-dim float32
observations (a smooth random walk per episode from a random start), 2-dim continuous actions,
float32 rewards, 30% of episodes terminated and the rest truncated. One dataset per storage format.

Figures, per format (medians over interleaved repeats, read and convert alternating, order flipped
every repeat):

* ``read``: ``for ep in dataset.iterate_episodes(): ...`` over every episode (Minari decoding the
  whole dataset into numpy), transitions/s;
* ``convert``: ``memory_from_minari(dataset)`` (default settings: 128-dim keys, every transition
  encoded by the MLP key encoder, one unit per episode), transitions/s; also with
  ``prefetch=0`` (no read-ahead thread) and with ``segmenter="window:32"``;
* ``ratio`` = convert time / read time; the bar is ``<= 2.0``;
* ``encode_only_s``: the key-encoding part of a conversion (encoding every unit's features as
  ``add_episode`` does, one call per unit, timed alone), and ``ratio_excluding_encoding``.

Memory: in a fresh subprocess, the peak RSS (sampled every 2 ms) of converting the HDF5 dataset, next to
the RSS before the conversion and the bytes the buffer itself allocates (so ``peak - start -
buffer`` is what the conversion costs beyond the result). For reference, another subprocess reads
every episode into a list (what a non-streaming conversion would hold).

Generation time is reported too. Minari's Arrow writer re-measures the dataset directory after
every episode (quadratic in the number of episodes), so in the full run the Arrow dataset holds
the same number of transitions in 10x fewer, 10x longer episodes.

Usage::

    python benchmarks/bench_minari.py              # 1M transitions (HDF5: 10k x 100 steps); minutes
    python benchmarks/bench_minari.py --quick      # 20k transitions (CI-sized, < 60 s)
    python benchmarks/bench_minari.py --episodes 2000 --steps 100 --formats hdf5 --data-dir /tmp/mb

Prints one JSON object on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys


def _pin_threads(threads: int) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)


if __name__ == "__main__":
    _early = argparse.ArgumentParser(add_help=False)
    _early.add_argument("--threads", type=int, default=1)
    _pin_threads(_early.parse_known_args()[0].threads)

import gc  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

OBS_DIM, ACT_DIM = 8, 2
BAR = 2.0

logger = logging.getLogger("bench_minari")


def _episodes(n: int, steps: int, seed: int) -> Iterator[Any]:
    """Synthetic Minari episode buffers, generated one at a time (bounded memory)."""
    from minari.data_collector.episode_buffer import EpisodeBuffer

    rng = np.random.default_rng(seed)
    for i in range(n):
        walk = rng.normal(0.0, 0.1, (steps + 1, OBS_DIM))
        walk[0] = rng.normal(0.0, 1.0, OBS_DIM)
        obs = np.cumsum(walk, axis=0).astype(np.float32)
        terminated = np.zeros(steps, dtype=bool)
        truncated = np.zeros(steps, dtype=bool)
        (terminated if rng.random() < 0.3 else truncated)[-1] = True
        yield EpisodeBuffer(
            id=i, observations=obs, actions=rng.uniform(-1.0, 1.0, (steps, ACT_DIM)).astype(np.float32),
            rewards=(-0.1 * np.linalg.norm(obs[1:], axis=1)).astype(np.float32),
            terminations=terminated, truncations=truncated,
        )


def make_dataset(dataset_id: str, episodes: int, steps: int, data_format: str, seed: int) -> tuple[Any, float, bool]:
    """Create (or reuse, when one of the same size exists) a synthetic dataset; returns it, the
    generation time and whether it was reused."""
    import gymnasium as gym
    import minari

    try:
        existing = minari.load_dataset(dataset_id)
        if existing.total_episodes == episodes and existing.total_steps == episodes * steps:
            return existing, 0.0, True
        minari.delete_dataset(dataset_id)
    except FileNotFoundError:
        pass
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        dataset = minari.create_dataset_from_buffers(
            dataset_id, _episodes(episodes, steps, seed),
            observation_space=gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32),
            action_space=gym.spaces.Box(-1.0, 1.0, (ACT_DIM,), np.float32),
            algorithm_name="synthetic-random-walk", author="hippogym benchmarks",
            author_email="bench@example.com", code_permalink="benchmarks/bench_minari.py",
            description="Synthetic random walks for the Minari adapter benchmark", data_format=data_format,
        )
    return dataset, time.perf_counter() - t0, False


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _read_all(dataset: Any) -> int:
    steps = 0
    for ep in dataset.iterate_episodes():
        steps += len(ep.rewards)
    return steps


def _convert(dataset: Any, **kwargs: Any) -> Any:
    from hippogym.integrations.minari import memory_from_minari

    return memory_from_minari(dataset, progress=False, seed=0, **kwargs)


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    gc.collect()
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def _encode_only_s(buffer: Any) -> float:
    """Time of encoding every stored unit's keys as ``add_episode`` does (one call per unit),
    on precomputed features: the share of a conversion that is key encoding."""
    import torch

    store, feat, enc = buffer.memory, buffer.featurizer, buffer.encoder
    inputs = []
    for slot in list(store.order):
        start, length = int(store.unit_start[slot]), int(store.unit_length[slot])
        rows = torch.arange(start, start + length)
        inputs.append(store.features(rows, feat))
    t0 = time.perf_counter()
    for x in inputs:
        enc.encode_keys(x)
    return time.perf_counter() - t0


def throughput(dataset: Any, repeats: int, segmenter_repeats: int) -> dict[str, Any]:
    """Interleaved read / convert timings on one dataset."""
    total = int(dataset.total_steps)
    runs: dict[str, list[float]] = {"read": [], "convert": [], "convert_no_prefetch": []}
    for r in range(repeats):
        order = ["read", "convert", "convert_no_prefetch"]
        for name in order if r % 2 == 0 else order[::-1]:
            if name == "read":
                dt, n = _timed(_read_all, dataset)
            else:
                dt, buffer = _timed(_convert, dataset, **({"prefetch": 0} if name == "convert_no_prefetch" else {}))
                n = len(buffer)
                if name == "convert":
                    runs.setdefault("encode_only", []).append(_encode_only_s(buffer))
                del buffer
            assert n == total, (name, n, total)
            runs[name].append(dt)
            logger.info("  %s %-20s %.2fs", dataset.id, name, dt)
    seg = []
    for _ in range(segmenter_repeats):
        dt, buffer = _timed(_convert, dataset, segmenter="window:32")
        del buffer
        seg.append(dt)
        logger.info("  %s %-20s %.2fs", dataset.id, "convert window:32", dt)
    gc.collect()
    med = {k: statistics.median(v) for k, v in runs.items()}
    ratio = med["convert"] / med["read"]
    out = {
        "transitions": total,
        "read_s": round(med["read"], 3),
        "read_transitions_per_s": round(total / med["read"]),
        "convert_s": round(med["convert"], 3),
        "convert_transitions_per_s": round(total / med["convert"]),
        "ratio": round(ratio, 3),
        "bar": BAR,
        "met": ratio <= BAR,
        "encode_only_s": round(med["encode_only"], 3),
        "encode_share_of_convert": round(med["encode_only"] / med["convert"], 3),
        "ratio_excluding_encoding": round((med["convert"] - med["encode_only"]) / med["read"], 3),
        "convert_no_prefetch_s": round(med["convert_no_prefetch"], 3),
        "ratio_no_prefetch": round(med["convert_no_prefetch"] / med["read"], 3),
        "min_max_s": {k: [round(min(v), 3), round(max(v), 3)] for k, v in runs.items()},
    }
    if seg:
        out["convert_window32_s"] = round(statistics.median(seg), 3)
        out["convert_window32_transitions_per_s"] = round(total / statistics.median(seg))
    return out


# ------------------------------------------------------------------------------ memory (child)


def _rss_now() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _PeakRSS:
    """Samples the resident set size every 2 ms in a thread; ``peak`` is the largest seen.

    (``ru_maxrss`` is not used: it also counts transient peaks from before the measured
    operation, such as imports.)"""

    def __enter__(self) -> _PeakRSS:
        import threading

        self.peak = _rss_now()
        self._stop = threading.Event()

        def sample() -> None:
            while not self._stop.wait(0.002):
                self.peak = max(self.peak, _rss_now())

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_now())


def _child(mode: str, dataset_id: str) -> None:
    """Runs in a fresh interpreter: one conversion (or full read), then its RSS figures as JSON."""
    import minari
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from hippogym.integrations.minari import memory_from_minari

    dataset = minari.load_dataset(dataset_id)
    next(iter(dataset.iterate_episodes([0])))  # warm up the storage backend's imports
    gc.collect()
    start = _rss_now()
    t0 = time.perf_counter()
    result: dict[str, Any] = {}
    with _PeakRSS() as peak:
        if mode == "convert":
            buffer = memory_from_minari(dataset, progress=False, seed=0)
            store = buffer.memory
            tensors = [*store.obs.values(), *store.next_obs.values(), store.actions, store.rewards, store.terminated,
                       store.truncated, store.steps, store.keys, store.key_version, store.row_slot, *store.infos.values()]
            result["buffer_bytes"] = int(sum(t.numel() * t.element_size() for t in tensors))
            result["transitions"] = len(buffer)
        else:
            episodes = list(dataset.iterate_episodes())
            result["transitions"] = sum(len(e.rewards) for e in episodes)
    result["seconds"] = time.perf_counter() - t0
    result["rss_start_bytes"] = start
    result["rss_end_bytes"] = _rss_now()
    result["peak_rss_bytes"] = peak.peak
    result["ru_maxrss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(result))


def memory_figures(dataset_id: str, data_dir: Path) -> dict[str, Any]:
    env = {**os.environ, "MINARI_DATASETS_PATH": str(data_dir)}

    def child(mode: str) -> dict[str, Any]:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", mode, "--child-dataset", dataset_id],
            env=env, capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"memory child ({mode}) failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    mb = 1 / 2**20
    conv = child("convert")
    read = child("materialize")
    overhead = conv["peak_rss_bytes"] - conv["rss_start_bytes"] - conv["buffer_bytes"]
    return {
        "dataset": dataset_id,
        "transitions": conv["transitions"],
        "convert_seconds": round(conv["seconds"], 2),
        "rss_before_convert_mb": round(conv["rss_start_bytes"] * mb, 1),
        "peak_rss_mb": round(conv["peak_rss_bytes"] * mb, 1),
        "rss_after_convert_mb": round(conv["rss_end_bytes"] * mb, 1),
        "buffer_mb": round(conv["buffer_bytes"] * mb, 1),
        "buffer_bytes_per_transition": round(conv["buffer_bytes"] / max(conv["transitions"], 1), 1),
        "conversion_overhead_mb": round(overhead * mb, 1),
        "materialize_all_episodes_peak_rss_mb": round(read["peak_rss_bytes"] * mb, 1),
        "materialize_all_episodes_growth_mb": round((read["peak_rss_bytes"] - read["rss_start_bytes"]) * mb, 1),
    }


# ------------------------------------------------------------------------------------- main


def run(args: argparse.Namespace) -> dict[str, Any]:
    import minari
    import torch

    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    load_start = os.getloadavg()
    tmp = None
    if args.data_dir is None:
        tmp = tempfile.mkdtemp(prefix="bench-minari-")
        data_dir = Path(tmp)
    else:
        data_dir = Path(args.data_dir).resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["MINARI_DATASETS_PATH"] = str(data_dir)
    datasets, figures = {}, {}
    memory = None
    try:
        for fmt in args.formats:
            episodes, steps = args.episodes, args.steps
            if fmt != "hdf5" and not args.quick and episodes > 2000:
                episodes, steps = episodes // 10, steps * 10  # Minari's Arrow writer is quadratic in episodes
            dataset_id = f"bench/synthetic-{fmt}-{episodes}x{steps}-v0"
            logger.info("dataset %s: %d episodes x %d steps (%s)", dataset_id, episodes, steps, fmt)
            dataset, gen_s, reused = make_dataset(dataset_id, episodes, steps, fmt, args.seed)
            datasets[fmt] = {
                "id": dataset_id, "episodes": episodes, "steps_per_episode": steps, "transitions": episodes * steps,
                "obs_dim": OBS_DIM, "action_dim": ACT_DIM, "generate_s": None if reused else round(gen_s, 2),
                "reused": reused, "bytes_on_disk": _dir_bytes(data_dir / dataset_id),
            }
            logger.info("  generated in %.1fs%s", gen_s, " (reused)" if reused else "")
            figures[fmt] = throughput(dataset, args.repeats, args.segmenter_repeats)
        if "hdf5" in datasets and not args.skip_memory:
            logger.info("peak RSS of converting %s (subprocess)", datasets["hdf5"]["id"])
            memory = memory_figures(datasets["hdf5"]["id"], data_dir)
    finally:
        if tmp is not None and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    import hippogym

    return {
        "benchmark": "minari",
        "quick": bool(args.quick),
        "threads": args.threads,
        "repeats": args.repeats,
        "datasets": datasets,
        "throughput": figures,
        "bars_met": sum(1 for f in figures.values() if f["met"]),
        "bars_total": len(figures),
        "memory": memory,
        "machine": {
            "cpu": platform.processor() or platform.machine(), "logical_cores": os.cpu_count(),
            "load_avg_at_start": load_start, "load_avg_at_end": os.getloadavg(),
            "python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "minari": minari.__version__, "hippogym": hippogym.__version__,
        },
        "elapsed_s": round(time.perf_counter() - t_start, 1),
    }


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CI-sized: 200 episodes x 100 steps, 3 repeats")
    parser.add_argument("--episodes", type=int, default=None, help="episodes per dataset (default 10000; quick 200)")
    parser.add_argument("--steps", type=int, default=100, help="steps per episode (default 100)")
    parser.add_argument("--formats", type=lambda s: [f for f in s.split(",") if f], default=["hdf5", "arrow"],
                        help="comma-separated Minari data formats (default hdf5,arrow)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats (default 3)")
    parser.add_argument("--segmenter-repeats", type=int, default=1, help="timings with segmenter='window:32' (default 1)")
    parser.add_argument("--skip-memory", action="store_true", help="skip the peak-RSS subprocesses")
    parser.add_argument("--data-dir", default=None, help="keep datasets here (reused when the size matches)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    parser.add_argument("--threads", type=int, default=1, help="torch/BLAS threads (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", choices=("convert", "materialize"), help=argparse.SUPPRESS)
    parser.add_argument("--child-dataset", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.child_dataset)
        return None
    if args.episodes is None:
        args.episodes = 200 if args.quick else 10_000
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    result = run(args)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
