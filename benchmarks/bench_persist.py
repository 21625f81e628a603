"""Saving and loading a whole buffer, against the raw safetensors + Arrow writers and readers.

What a user calls: ``buffer.save(path)`` and ``HippocampalReplayBuffer.load(path)`` (default
``verify="full"``: every file's digest checked before anything is decoded, XXH3-128 where the
manifest records one, as this library's saves do). The peer is what a user
would write by hand for the same data: the same tables and tensors with ``pyarrow.ipc`` and
``safetensors`` (write, then fsync each file and the directory; read everything back into numpy
arrays), with no checksums. Both sides handle exactly the same arrays: the raw peer reads and writes
the files of the saved memory itself.

Timings are interleaved (ours, raw, raw, ours, ...) and the median of ``--repeats`` is reported.
Parts are also timed on their own: ``delete_s``, removing a memory directory of this size (a save
that replaces a memory deletes the old one); ``sha256_s``, SHA-256 of every saved file on one core
(the save computes it on a second thread while it writes); ``verify_s``,
``hippo_format.open_memory(path, verify="full")``: opening the memory and checking every file's
digest, no data decoded.

**Floors.** A load that checks integrity by default has to hash every byte and read every byte, so
``load_floor_ratio = raw_read / (raw_read + verify)`` is the best load ratio a verified load reaches
without overlapping the two. A save that replaces a memory has to write it and delete the old one,
and SHA-256 runs beside the write, so ``save_floor_ratio = raw_write / (max(raw_write, sha256) +
delete)``. ``docs/benchmarks.md`` shows each ratio beside its floor.

**Ratio = raw time / hippogym time** (above 1: hippogym faster). Memories of ``--sizes``
transitions: observations of 8 floats, actions of 2, episodes of 100 steps, the library's default
keys (64-d float16; runs committed before 2026-12-08 used 128-d float32).

Example::

    python benchmarks/bench_persist.py --sizes 100000,1000000 > persist.json
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
from safetensors.numpy import load_file, save_file

import hippo_format

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_consolidation import make_buffer, report, start  # noqa: E402 - the same memory and report
from bench_format import _fsync  # noqa: E402 - the same fsync as the format benchmark

logger = logging.getLogger("bench_persist")


def sha256_file(path: Path) -> str:
    """SHA-256 of one file, streamed in 8 MiB reads."""
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        for chunk in iter(lambda: f.read(8 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def raw_read(directory: Path) -> dict[str, Any]:
    """Every table and tensor file of a memory into numpy arrays, no checks."""
    out: dict[str, Any] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix == ".safetensors":
            out[path.name] = load_file(str(path))
        elif path.suffix == ".arrow":
            table = pa.ipc.open_file(str(path)).read_all()
            columns = {}
            for field, column in zip(table.schema, table.columns):
                if pa.types.is_fixed_size_list(field.type):
                    flat = column.combine_chunks().flatten().to_numpy()
                    columns[field.name] = flat.reshape(len(column), field.type.list_size)
                else:
                    columns[field.name] = column.to_numpy()
            out[path.name] = (columns, table.schema)
    return out


def raw_write(directory: Path, data: dict[str, Any]) -> None:
    """The same arrays as plain safetensors and Arrow IPC files, each fsynced, then the directory."""
    directory.mkdir()
    for name, value in data.items():
        path = directory / name
        if name.endswith(".safetensors"):
            save_file(value, str(path))
        else:
            columns, schema = value
            arrays = []
            for field in schema:
                col = columns[field.name]
                if pa.types.is_fixed_size_list(field.type):
                    arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(col.reshape(-1)), field.type.list_size))
                else:
                    arrays.append(pa.array(col, type=field.type))
            table = pa.Table.from_arrays(arrays, schema=schema)
            with pa.ipc.new_file(str(path), table.schema) as writer:
                writer.write_table(table)
        _fsync(path)
    _fsync(directory)


def measure(size: int, repeats: int, seed: int, work: Path) -> dict[str, Any]:
    from hippogym import HippocampalReplayBuffer

    buffer = make_buffer(size, "auto", seed)
    ours_dir, raw_dir = work / "ours", work / "raw"
    buffer.save(ours_dir)
    data = raw_read(ours_dir)
    nbytes = sum(p.stat().st_size for p in ours_dir.iterdir())
    t: dict[str, list[float]] = {
        "save": [], "raw_write": [], "load": [], "load_size": [], "raw_read": [], "delete": [], "sha256": [],
        "verify": [],
    }
    for rep in range(repeats):
        order = ("ours", "raw") if rep % 2 == 0 else ("raw", "ours")
        for who in order:
            if who == "ours":
                t0 = time.perf_counter()
                buffer.save(ours_dir)  # replaces the previous one atomically, as a user's save does
                t["save"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                HippocampalReplayBuffer.load(ours_dir)
                t["load"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                HippocampalReplayBuffer.load(ours_dir, verify="size")
                t["load_size"].append(time.perf_counter() - t0)
            else:
                if raw_dir.exists():  # what replacing a memory of this size deletes (a part of every save)
                    t0 = time.perf_counter()
                    shutil.rmtree(raw_dir)
                    t["delete"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                raw_write(raw_dir, data)
                t["raw_write"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                raw_read(raw_dir)
                t["raw_read"].append(time.perf_counter() - t0)
        # SHA-256 of every saved file on one core (read back from the page cache): the digest that
        # format version 1 requires, which a save computes on a second thread while it writes.
        t0 = time.perf_counter()
        for path in sorted(ours_dir.iterdir()):
            sha256_file(path)
        t["sha256"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        hippo_format.open_memory(ours_dir, verify="full").close()
        t["verify"].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in t.items() if v}
    return {
        "size": size, "bytes": nbytes, "repeats": repeats,
        **{f"{k}_s": round(v, 4) for k, v in med.items()},
        "load_ratio": round(med["raw_read"] / med["load"], 2),
        "load_size_ratio": round(med["raw_read"] / med["load_size"], 2),
        "save_ratio": round(med["raw_write"] / med["save"], 2),
        "load_floor_ratio": round(med["raw_read"] / (med["raw_read"] + med["verify"]), 2),
        "save_floor_ratio": round(med["raw_write"] / (max(med["raw_write"], med["sha256"]) + med["delete"]), 2),
        # The fastest of each: on a virtual disk some repeats of either side stall on storage for
        # seconds (the same raw read took 0.44-2.24 s at 1M in one run); the minima show the calls
        # without the stalls, the medians what a user may see.
        "min_s": {k: round(min(v), 4) for k, v in t.items() if v},
        "all_s": {k: [round(x, 4) for x in v] for k, v in t.items() if v},
        "load_ratio_min": round(min(t["raw_read"]) / min(t["load"]), 2),
        "save_ratio_min": round(min(t["raw_write"]) / min(t["save"]), 2),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start()
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="bench-persist-") as tmp:
            row = measure(size, args.repeats, args.seed, Path(tmp))
        logger.info("%s", row)
        rows.append(row)
    return report("persist", "bench_persist.py", rows, argv, distributions=("pyarrow",))


if __name__ == "__main__":
    main()
