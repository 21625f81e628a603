"""Benchmark of the hippo_format on-disk format against raw safetensors + Arrow IPC.

Builds a memory of ``--transitions`` rows (obs 8 float32, next_obs 8 float32,
action 2 float32, reward, terminated, truncated, episode_id, step; episodes of
100 steps) plus ``[N, 128]`` float32 keys, and measures side by side in one run:

(a) save throughput of ``write_memory`` (validation, SHA-256, fsync, atomic
    swap included) vs ``safetensors.numpy.save_file`` + ``pyarrow.ipc.new_file``
    with fsync, on the same arrays;
(b) ``MemoryReader.load_all`` vs ``safetensors.numpy.load_file`` +
    ``pyarrow.ipc.open_file(...).read_all()`` converted to numpy;
(c) ``open_memory`` (lazy, size check) as a fraction of a full load;
(d) bytes on disk vs raw payload bytes, and the zstd option's size and times.

Each timing is the median of ``--repeats`` runs; files are read from the page
cache (they were just written), which is the fair setting for comparing the
formats' own costs. Prints one JSON object.

Usage::

    python benchmarks/bench_format.py [--transitions 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from safetensors.numpy import load_file, save_file

import hippo_format

STEPS = 100
EMBED_DIM = 128


def make_data(rows: int, seed: int = 0) -> dict[str, Any]:
    """Return write_memory arguments for the benchmark memory."""
    rng = np.random.default_rng(seed)
    episodes = rows // STEPS
    rows = episodes * STEPS
    transitions: dict[str, np.ndarray] = {
        "episode_id": np.repeat(np.arange(episodes, dtype=np.int64), STEPS),
        "step": np.tile(np.arange(STEPS, dtype=np.int32), episodes),
        "reward": rng.standard_normal(rows, dtype=np.float32),
        "terminated": rng.random(rows) < 0.01,
        "truncated": rng.random(rows) < 0.01,
        "obs": rng.standard_normal((rows, 8), dtype=np.float32),
        "next_obs": rng.standard_normal((rows, 8), dtype=np.float32),
        "action": rng.standard_normal((rows, 2), dtype=np.float32),
    }
    episode_table = {
        "episode_id": np.arange(episodes, dtype=np.int64),
        "start": np.arange(episodes, dtype=np.int64) * STEPS,
        "length": np.full(episodes, STEPS, dtype=np.int64),
        "return": np.add.reduceat(transitions["reward"].astype(np.float64), np.arange(episodes) * STEPS),
        "success": np.full(episodes, -1, dtype=np.int8),
    }
    keys = {"embeddings": rng.standard_normal((rows, EMBED_DIM), dtype=np.float32)}
    return {
        "manifest": {"embed_dim": EMBED_DIM, "encoder": {"architecture": "mlp"}},
        "transitions": transitions,
        "episodes": episode_table,
        "tensors": {"keys": keys},
        "row_aligned": {"keys": {"embeddings": "transitions"}},
    }


def payload_bytes(data: dict[str, Any]) -> int:
    """Bytes of all arrays as numpy holds them."""
    total = sum(a.nbytes for a in data["transitions"].values())
    total += sum(a.nbytes for a in data["episodes"].values())
    total += sum(a.nbytes for t in data["tensors"].values() for a in t.values())
    return total


def _arrow_table(columns: dict[str, np.ndarray]) -> pa.Table:
    arrays = {}
    for name, values in columns.items():
        if values.ndim == 1:
            arrays[name] = pa.array(values)
        else:
            arrays[name] = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])
    return pa.table(arrays)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def raw_save(directory: Path, data: dict[str, Any]) -> None:
    """The baseline: plain safetensors and Arrow IPC files, fsynced."""
    directory.mkdir()
    save_file(data["tensors"]["keys"], str(directory / "keys.safetensors"))
    _fsync(directory / "keys.safetensors")
    for name in ("transitions", "episodes"):
        table = _arrow_table(data[name])
        with pa.ipc.new_file(str(directory / f"{name}.arrow"), table.schema) as writer:
            writer.write_table(table)
        _fsync(directory / f"{name}.arrow")
    _fsync(directory)


def raw_load(directory: Path) -> dict[str, Any]:
    """The baseline reader: everything into numpy arrays in RAM."""
    out: dict[str, Any] = {"keys": load_file(str(directory / "keys.safetensors"))}
    for name in ("transitions", "episodes"):
        table = pa.ipc.open_file(str(directory / f"{name}.arrow")).read_all()
        columns = {}
        for field, column in zip(table.schema, table.columns, strict=True):
            if pa.types.is_fixed_size_list(field.type):
                flat = column.combine_chunks().flatten().to_numpy()
                columns[field.name] = flat.reshape(len(column), field.type.list_size)
            else:
                columns[field.name] = column.to_numpy()
        out[name] = columns
    return out


def _median_time(fn: Callable[[int], Any], repeats: int, cleanup: Callable[[int], None] | None = None) -> float:
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        result = fn(i)
        times.append(time.perf_counter() - start)
        del result
        if cleanup is not None:
            cleanup(i)
    return statistics.median(times)


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run(rows: int, repeats: int) -> dict[str, Any]:
    """Run every measurement and return the report."""
    data = make_data(rows)
    payload = payload_bytes(data)
    work = Path(tempfile.mkdtemp(prefix="hippo-bench-"))
    try:
        # warm-up: imports, allocator, page cache for the inputs
        hippo_format.write_memory(work / "warm", **data)
        raw_save(work / "warm-raw", data)
        shutil.rmtree(work / "warm")
        shutil.rmtree(work / "warm-raw")

        save_ours, save_raw = [], []
        for i in range(repeats):  # interleaved, alternating who goes first, so disk and memory state affect both alike
            for who in ("ours", "raw") if i % 2 == 0 else ("raw", "ours"):
                start = time.perf_counter()
                if who == "ours":
                    hippo_format.write_memory(work / f"mem{i}", **data)
                    save_ours.append(time.perf_counter() - start)
                else:
                    raw_save(work / f"raw{i}", data)
                    save_raw.append(time.perf_counter() - start)
            if i:
                shutil.rmtree(work / f"mem{i - 1}")
                shutil.rmtree(work / f"raw{i - 1}")
        ours_path, raw_path = work / f"mem{repeats - 1}", work / f"raw{repeats - 1}"
        t_save_ours, t_save_raw = statistics.median(save_ours), statistics.median(save_raw)

        raw_load(raw_path)
        hippo_format.open_memory(ours_path).load_all()  # warm both readers (and the allocator)
        load_ours, load_raw = [], []
        for _ in range(repeats):  # interleaved, like the saves
            start = time.perf_counter()
            loaded = hippo_format.open_memory(ours_path).load_all()
            load_ours.append(time.perf_counter() - start)
            del loaded
            start = time.perf_counter()
            loaded = raw_load(raw_path)
            load_raw.append(time.perf_counter() - start)
            del loaded
        t_load_ours, t_load_raw = statistics.median(load_ours), statistics.median(load_raw)
        t_open = _median_time(lambda _: hippo_format.open_memory(ours_path), max(repeats, 5))
        t_open_full = _median_time(lambda _: hippo_format.open_memory(ours_path, verify="full"), repeats)
        t_first_column = _median_time(lambda _: hippo_format.open_memory(ours_path).column("obs"), max(repeats, 5))

        disk = _dir_bytes(ours_path)
        raw_disk = _dir_bytes(raw_path)

        zstd_saves = []
        for i in range(repeats):
            start = time.perf_counter()
            hippo_format.write_memory(work / f"zstd{i}", compression="zstd", **data)
            zstd_saves.append(time.perf_counter() - start)
            if i:
                shutil.rmtree(work / f"zstd{i - 1}")
        zstd_path = work / f"zstd{repeats - 1}"
        hippo_format.open_memory(zstd_path).load_all()  # warm-up
        t_load_zstd = _median_time(lambda _: hippo_format.open_memory(zstd_path).load_all(), repeats)
        zstd_disk = _dir_bytes(zstd_path)
        zstd_arrow = sum((zstd_path / n).stat().st_size for n in ("transitions.arrow", "episodes.arrow"))
        plain_arrow = sum((ours_path / n).stat().st_size for n in ("transitions.arrow", "episodes.arrow"))
        conformance = hippo_format.check_conformance(ours_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    save_ratio = t_save_raw / t_save_ours
    load_ratio = t_load_raw / t_load_ours
    open_fraction = t_open / t_load_ours
    size_ratio = disk / payload
    report: dict[str, Any] = {
        "setup": {
            "transitions": rows // STEPS * STEPS,
            "episodes": rows // STEPS,
            "embed_dim": EMBED_DIM,
            "repeats": repeats,
            "payload_bytes": payload,
            "python": sys.version.split()[0],
            "pyarrow": pa.__version__,
            "cpu_count": os.cpu_count(),
        },
        "save": {
            "hippo_s": round(t_save_ours, 4),
            "raw_s": round(t_save_raw, 4),
            "hippo_runs_s": [round(t, 4) for t in save_ours],
            "raw_runs_s": [round(t, 4) for t in save_raw],
            "hippo_MBps": round(payload / t_save_ours / 1e6, 1),
            "raw_MBps": round(payload / t_save_raw / 1e6, 1),
            "throughput_ratio": round(save_ratio, 3),
            "target": ">= 0.7",
            "met": save_ratio >= 0.7,
        },
        "load": {
            "hippo_load_all_s": round(t_load_ours, 4),
            "raw_s": round(t_load_raw, 4),
            "hippo_runs_s": [round(t, 4) for t in load_ours],
            "raw_runs_s": [round(t, 4) for t in load_raw],
            "ratio": round(load_ratio, 3),
            "target": ">= 0.7",
            "met": load_ratio >= 0.7,
        },
        "lazy_open": {
            "open_s": round(t_open, 5),
            "open_and_first_column_s": round(t_first_column, 5),
            "open_verify_full_s": round(t_open_full, 4),
            "fraction_of_full_load": round(open_fraction, 4),
            "target": "< 0.05",
            "met": open_fraction < 0.05,
        },
        "size": {
            "disk_bytes": disk,
            "raw_files_bytes": raw_disk,
            "payload_bytes": payload,
            "ratio": round(size_ratio, 4),
            "target": "<= 1.05",
            "met": size_ratio <= 1.05,
        },
        "zstd": {
            "disk_bytes": zstd_disk,
            "size_ratio_vs_payload": round(zstd_disk / payload, 4),
            "arrow_size_ratio_vs_uncompressed": round(zstd_arrow / plain_arrow, 4),
            "save_s": round(statistics.median(zstd_saves), 4),
            "load_all_s": round(t_load_zstd, 4),
            "note": "random float data compresses poorly; the ratio is a floor, not typical",
        },
        "conformance_violations": conformance,
    }
    report["all_targets_met"] = all(report[k]["met"] for k in ("save", "load", "lazy_open", "size"))
    return report


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the benchmark, print the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transitions", type=int, default=1_000_000, help="rows in the memory (default 1,000,000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement; the median is reported (default 3)")
    args = parser.parse_args(argv)
    if args.transitions < STEPS or args.repeats < 1:
        parser.error(f"--transitions must be >= {STEPS} and --repeats >= 1")
    print(json.dumps(run(args.transitions, args.repeats), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
