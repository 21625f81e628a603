"""Benchmark of pushing and pulling a memory through a Hub server vs copying its directory.

Builds a memory of ``--transitions`` transitions (obs 8 float32, action 2 float32, episodes of
100 steps, 128-d float32 keys; filled straight into a :class:`~hippogym.MemoryStore` with random
unit-norm keys, then saved as a whole buffer) and measures, against a
``LocalHubServer`` (the test Hub server in ``tests/hubserver/``) on 127.0.0.1 (run in its own process so that
server and client do not share a GIL):

* ``copy_s``: ``shutil.copytree`` of the memory directory (the floor: what moving the bytes costs);
* ``push_s``: :func:`~hippogym.integrations.hub.push_memory_to_hub` of the directory (full
  verification of the source, card, one commit; the test server takes every file as a "regular"
  upload, i.e. base64 inlined in the commit payload, where the real Hub would use Xet/LFS);
* ``pull_s``: :func:`~hippogym.integrations.hub.download_memory` into a new directory with an
  empty Hub cache (download, copy beside the target, fsync, SHA-256 of every file, rename);
* ``load_cold_s`` / ``load_warm_s``: :func:`~hippogym.integrations.hub.load_memory_from_hub` into a
  buffer with an empty cache / with the cache filled by the previous call, next to
  ``local_load_s``: ``HippocampalReplayBuffer.load`` of the directory itself (no Hub involved;
  the process's first load, which also pays first-touch page faults, is reported apart);
* ratios of each to ``copy_s``, and sizes (memory directory, server blob store, Hub cache).

Files are in the page cache (just written), the fair setting for comparing the transfer paths'
own costs. Prints one JSON object.

Usage::

    python benchmarks/bench_hub.py [--transitions 1000000] [--quick] [--in-process]
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import argparse
import gc
import json
import logging
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import torch

STEPS = 100
OBS_DIM = 8
ACTION_DIM = 2
EMBED_DIM = 128
TOKEN = "bench-token"
T = TypeVar("T")
_IN_PROCESS_SERVERS: list[Any] = []
TESTS_DIR = Path(__file__).resolve().parents[1] / "tests"  # holds the test Hub server package `hubserver`

logger = logging.getLogger("bench_hub")


def build_memory(path: Path, transitions: int, seed: int = 0) -> Path:
    """Fill a store with ``transitions // STEPS`` random episodes and save it as a buffer."""
    from hippogym import Episode, HippocampalReplayBuffer, MemoryStore

    episodes = max(1, transitions // STEPS)
    g = torch.Generator().manual_seed(seed)
    store = MemoryStore(embed_dim=EMBED_DIM, capacity=episodes * STEPS, eviction="fifo", seed=seed)
    for i in range(episodes):
        keys = torch.randn(STEPS, EMBED_DIM, generator=g)
        keys = keys / keys.norm(dim=1, keepdim=True)
        terminated = torch.zeros(STEPS, dtype=torch.bool)
        terminated[-1] = bool(i % 2)
        episode = Episode(
            states=torch.randn(STEPS + 1, OBS_DIM, generator=g),
            actions=torch.randn(STEPS, ACTION_DIM, generator=g),
            rewards=torch.randn(STEPS, generator=g),
            terminated=terminated,
            truncated=~terminated & (torch.arange(STEPS) == STEPS - 1),
            episode_id=i,
        )
        store.add(episode, keys)
    buffer = HippocampalReplayBuffer(memory=store, seed=seed)
    buffer.provenance = {"env_id": "bench/Random-v0"}  # type: ignore[attr-defined]
    return buffer.save(path)


def tree_bytes(path: Path) -> int:
    """Total size of the regular files under ``path``, each inode counted once (the cache holds links)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for p in path.rglob("*"):
        if p.is_file() and not p.is_symlink():
            st = p.stat()
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def hub_server(root: Path, in_process: bool) -> Iterator[str]:
    """Start a LocalHubServer (token ``TOKEN`` for user ``bench``) and yield its endpoint."""
    if in_process:
        sys.path.insert(0, str(TESTS_DIR))
        from hubserver import LocalHubServer

        with LocalHubServer(root=root, tokens={TOKEN: "bench"}) as hub:
            _IN_PROCESS_SERVERS.append(hub)
            yield hub.endpoint
        return
    port = _free_port()
    cmd = [sys.executable, "-m", "hubserver", "--root", str(root), "--port", str(port)]
    cmd += ["--token", f"{TOKEN}:bench"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/api/models", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the hub server did not start (exit code {proc.poll()})") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run(transitions: int, in_process: bool) -> dict[str, Any]:
    import huggingface_hub

    from hippogym import HippocampalReplayBuffer
    from hippogym.integrations.hub import (
        download_memory,
        load_memory_from_hub,
        push_memory_to_hub,
    )

    with tempfile.TemporaryDirectory(prefix="bench-hub-") as tmp:
        root = Path(tmp)
        memory, build_s = timed(lambda: build_memory(root / "memory", transitions))
        files = {p.name: p.stat().st_size for p in sorted(memory.iterdir()) if p.is_file()}
        memory_bytes = sum(files.values())

        _, copy_s = timed(lambda: shutil.copytree(memory, root / "copy"))
        # The first load of a process also pays first-touch page faults of the new tensors: keep it apart.
        _, first_load_s = timed(lambda: HippocampalReplayBuffer.load(memory))
        gc.collect()
        with hub_server(root / "hub", in_process) as endpoint:
            kw: dict[str, Any] = {"endpoint": endpoint, "token": TOKEN}
            repo = "bench/memory"
            info, push_s = timed(lambda: push_memory_to_hub(memory, repo, **kw))
            out, pull_s = timed(lambda: download_memory(repo, root / "pulled", cache_dir=root / "cache1", **kw))
            buffer, load_cold_s = timed(lambda: load_memory_from_hub(repo, cache_dir=root / "cache2", **kw))
            n = len(buffer)
            del buffer
            gc.collect()
            buffer, load_warm_s = timed(lambda: load_memory_from_hub(repo, cache_dir=root / "cache2", **kw))
            assert len(buffer) == n == transitions // STEPS * STEPS
            del buffer
            gc.collect()
            _, local_load_s = timed(lambda: HippocampalReplayBuffer.load(memory))  # no Hub: the load floor
            commits = len(huggingface_hub.HfApi(endpoint=endpoint, token=TOKEN).list_repo_commits(repo))
            server_commit_s = None
            if in_process:  # the server's own time answering the commit request (payload read + stored)
                server_commit_s = sum(r["seconds"] for r in _IN_PROCESS_SERVERS[-1].requests if "/commit/" in r["path"])
        return {
            "benchmark": "hub_push_pull",
            "transitions": transitions // STEPS * STEPS,
            "episodes": transitions // STEPS,
            "obs_dim": OBS_DIM,
            "action_dim": ACTION_DIM,
            "embed_dim": EMBED_DIM,
            "server": "LocalHubServer " + ("in-process thread" if in_process else "subprocess") + " on 127.0.0.1",
            "upload_mode": "regular (base64 in the commit payload)",
            "hf_xet_enabled": not huggingface_hub.constants.HF_HUB_DISABLE_XET,
            "build_s": round(build_s, 3),
            "copy_s": round(copy_s, 3),
            "push_s": round(push_s, 3),
            "pull_s": round(pull_s, 3),
            "load_cold_s": round(load_cold_s, 3),
            "load_warm_s": round(load_warm_s, 3),
            "local_load_s": round(local_load_s, 3),
            "first_local_load_in_process_s": round(first_load_s, 3),
            "load_warm_over_local_load": round(load_warm_s / local_load_s, 2),
            "server_commit_request_s": None if server_commit_s is None else round(server_commit_s, 3),
            "push_over_copy": round(push_s / copy_s, 2),
            "pull_over_copy": round(pull_s / copy_s, 2),
            "load_cold_over_copy": round(load_cold_s / copy_s, 2),
            "push_MBps": round(memory_bytes / push_s / 1e6, 1),
            "pull_MBps": round(memory_bytes / pull_s / 1e6, 1),
            "copy_MBps": round(memory_bytes / copy_s / 1e6, 1),
            "memory_bytes": memory_bytes,
            "files_bytes": files,
            "server_store_bytes": tree_bytes(root / "hub"),
            "hub_cache_bytes": tree_bytes(root / "cache1"),
            "pulled_bytes": tree_bytes(out),
            "commits_in_repo": commits,
            "commit": info.oid,
            "python": platform.python_version(),
            "torch_threads": torch.get_num_threads(),
            "cpus": os.cpu_count(),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transitions", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100k transitions (a smoke run)")
    parser.add_argument("--in-process", action="store_true", help="run the server in a thread of this process")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    transitions = 100_000 if args.quick else args.transitions
    print(json.dumps(run(transitions, args.in_process), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
