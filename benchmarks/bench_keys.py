"""What a key costs: bytes per transition, retrieval quality and speed for each key width and precision.

The memory keeps one key per transition, and the key is most of a transition's bytes. This compares,
on the same random-walk memory as ``bench_memory.py`` (8-d observations, 2-d actions, episodes of
100 steps), side by side in one process:

* ``128-d float32``: the former default;
* ``64-d float32``: the width every RL evidence run uses;
* ``64-d float16``: the default now (``DEFAULT_EMBED_DIM``, ``DEFAULT_KEY_DTYPE``).

The two 64-d memories share one encoder (same initial weights), so their keys differ only by the
rounding. For each size it reports:

* bytes per stored transition: the store's rows and unit table, the retrieval index on top, and
  both against SB3's ``ReplayBuffer`` of the same capacity (its arrays' bytes per row);
* recall@5 of the fast path (what hybrid sampling uses) against exact search, for queries built
  from stored transitions and for random observations;
* self-retrieval: the share of stored observations whose own unit comes first on the fast path;
* for float16, agreement with float32 keys of the same encoder: the share of the exact top-5
  units the two memories share;
* time: a hybrid ``sample(256)`` with a fresh query (mixture 0.5, top_k 5) for each setting and
  SB3's ``sample(256)``, interleaved; and the insert time per 100-step episode (keys encoded).

Usage::

    python benchmarks/bench_keys.py --sizes 100000,1000000 > docs/benchmarks/keys.json
    python benchmarks/bench_keys.py --table docs/benchmarks/keys.json           # the docs table
    python benchmarks/bench_keys.py --table docs/benchmarks/keys.json --write   # rewrite it in docs/benchmarks.md

Timings depend on the machine's load; run it on idle cores.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # BLAS thread pools read these when numpy loads
    _early = argparse.ArgumentParser(add_help=False)
    _early.add_argument("--threads", type=int, default=1)
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = str(_early.parse_known_args()[0].threads)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_memory as bm  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from retrieval_report import splice_markers  # noqa: E402

from hippogym import DualEncoder, HippocampalReplayBuffer, MemoryStore  # noqa: E402
from hippogym.types import DEFAULT_EMBED_DIM, DEFAULT_KEY_DTYPE  # noqa: E402

logger = logging.getLogger("bench_keys")

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- key-cost-table:begin -->", "<!-- key-cost-table:end -->"
#: (label, key width, key dtype), the last one the library's default.
SETTINGS = (
    ("128-d float32", 128, "float32"),
    ("64-d float32", 64, "float32"),
    (f"{DEFAULT_EMBED_DIM}-d {DEFAULT_KEY_DTYPE}", DEFAULT_EMBED_DIM, DEFAULT_KEY_DTYPE),
)


def make_buffer(size: int, width: int, key_dtype: str, seed: int) -> HippocampalReplayBuffer:
    """A buffer whose encoder's initial weights depend on ``width`` and ``seed`` only."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = DualEncoder(input_dim=bm.OBS_DIM + bm.ACT_DIM + 1, embed_dim=width)
    return HippocampalReplayBuffer(
        MemoryStore(embed_dim=width, capacity=size, key_dtype=key_dtype, seed=seed), encoder,
        mixture_ratio=0.5, semantic={"top_k": 5}, seed=seed,
    )


def sb3_bytes_per_row(rb: Any) -> float:
    """Bytes of SB3's ``ReplayBuffer`` arrays per stored transition."""
    arrays = (rb.observations, rb.next_observations, rb.actions, rb.rewards, rb.dones, rb.timeouts)
    return sum(a.nbytes for a in arrays) / rb.buffer_size


def self_retrieval(buffer: HippocampalReplayBuffer, rows: np.ndarray) -> float:
    """Share of the stored observations of ``rows`` whose own unit ranks first on the fast path."""
    store = buffer.memory
    queries = np.concatenate(
        [store.obs["obs"].numpy()[rows], np.zeros((rows.size, bm.ACT_DIM), np.float32),
         store.rewards.numpy()[rows][:, None]], axis=1,
    ).astype(np.float32)
    emb = buffer.embed_queries(queries).numpy()
    own = store.row_slots_np.take(rows)
    hits = sum(int(store.search_np(emb[i : i + 1], 1, exact=False)[1][0, 0] == own[i]) for i in range(rows.size))
    return hits / rows.size


def exact_top(buffer: HippocampalReplayBuffer, queries: np.ndarray, k: int = 5) -> list[set[int]]:
    emb = buffer.embed_queries(queries).numpy()
    return [set(buffer.memory.search_np(emb[i : i + 1], k, exact=True)[1][0].tolist()) for i in range(emb.shape[0])]


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    report = bm.Report()
    t_start, load_start = time.perf_counter(), os.getloadavg()
    held_out = bm.Trajectories(64, args.seed + 1)
    fresh = held_out.states[:, : bm.STEPS].reshape(-1, bm.OBS_DIM)[: args.fresh_queries].copy()
    details: dict[str, Any] = {}
    for size in sorted(args.sizes):
        n_eps = size // bm.STEPS
        data = bm.Trajectories(n_eps, args.seed)
        rb = bm.sb3_buffer(size, data, n_eps)
        sb3_row = sb3_bytes_per_row(rb)
        buffers: dict[str, HippocampalReplayBuffer] = {}
        sec: dict[str, Any] = {"sb3_bytes_per_transition": round(sb3_row, 1), "settings": {}}
        details[str(size)] = sec
        for label, width, key_dtype in SETTINGS:
            gc.collect()
            buffer = make_buffer(size, width, key_dtype, args.seed)
            t0 = time.perf_counter()
            bm.fill(buffer, data, 0, n_eps)
            insert_us = (time.perf_counter() - t0) / n_eps * 1e6
            buffer.sample(bm.BATCH, query_state=fresh[0])  # fits the IVF index before it is measured
            buffers[label] = buffer
            logger.info("%d %s: filled (%.0f us per episode)", size, label, insert_us)
            sec["settings"][label] = {
                "embed_dim": width, "key_dtype": key_dtype, "insert_us_per_episode": round(insert_us, 1),
                "index_mode": buffer.memory.index.describe(buffer.memory)["mode"],
            }

        recall_q = bm.recall_queries(buffers[SETTINGS[-1][0]], data, args.recall_queries, args.seed + 2)
        pick = np.random.default_rng(args.seed + 5).choice(size, args.recall_queries, replace=False)
        for label, buffer in buffers.items():
            entry = sec["settings"][label]
            mem = bm.store_bytes(buffer)  # rows and unit table per capacity row, the index per stored transition
            entry["bytes"] = {"store": mem["bytes_per_transition"], "index": mem["index_bytes_per_transition"]}
            entry["recall@5"] = {name: round(bm.recall_at_k(buffer, q), 3) for name, q in recall_q.items()}
            entry["self_retrieval@1"] = round(self_retrieval(buffer, pick), 3)
        wide32, narrow32, default = (label for label, _, _ in SETTINGS)
        for name, q in recall_q.items():
            a, b = exact_top(buffers[narrow32], q), exact_top(buffers[default], q)
            sec["settings"][default].setdefault("exact_top5_agreement_with_float32", {})[name] = round(
                float(np.mean([len(x & y) / max(len(x), 1) for x, y in zip(a, b)])), 3
            )

        cycles = {label: itertools.cycle(fresh) for label in buffers}
        variants: dict[str, Any] = {"sb3": lambda rb=rb: rb.sample(bm.BATCH)}
        for label, buffer in buffers.items():
            variants[label] = lambda b=buffer, c=cycles[label]: b.sample(bm.BATCH, query_state=next(c))
        timing = bm.interleaved(variants, args.calls, args.repeats)
        for label in buffers:
            entry = sec["settings"][label]
            entry["fresh_sample_us"] = bm.us(timing[label]["median"])
            b = entry["bytes"]
            report.add(
                f"key_cost[{label}]@{size}", timing["sb3"]["median"] / timing[label]["median"], None,
                bytes_store=b["store"], bytes_index=b["index"], sb3_bytes=round(sb3_row, 1),
                bytes_vs_sb3=round(b["store"] / sb3_row, 2),
                bytes_with_index_vs_sb3=round((b["store"] + b["index"]) / sb3_row, 2),
                recall_at_5=entry["recall@5"], self_retrieval_at_1=entry["self_retrieval@1"],
                exact_top5_agreement_with_float32=entry.get("exact_top5_agreement_with_float32"),
                fresh_sample_us=entry["fresh_sample_us"], sb3_sample_us=bm.us(timing["sb3"]["median"]),
                insert_us_per_episode=entry["insert_us_per_episode"], index_mode=entry["index_mode"],
                note="ratio = SB3 sample(256) time / hybrid sample(256) time with a fresh query",
            )
        del buffers, rb, variants
        gc.collect()
    return {
        "benchmark": "bench_keys",
        "config": {
            "sizes": sorted(args.sizes), "obs_dim": bm.OBS_DIM, "action_dim": bm.ACT_DIM, "episode_steps": bm.STEPS,
            "batch": bm.BATCH, "repeats": args.repeats, "calls_per_block": args.calls, "threads": args.threads,
            "seed": args.seed, "recall_queries": args.recall_queries, "settings": [list(s) for s in SETTINGS],
        },
        "machine": {"cpu": bm.cpu_name(), "logical_cores": os.cpu_count(), "load_avg_at_start": load_start,
                    "load_avg_at_end": os.getloadavg(), "torch": torch.__version__, "numpy": np.__version__},
        "figures": report.figures,
        "details": details,
        "elapsed_s": round(time.perf_counter() - t_start, 1),
    }


def table(result: dict[str, Any]) -> str:
    """The markdown table ``docs/benchmarks.md`` quotes from a run."""
    lines = [
        "| keys | size | B / transition: store (+ index) | × SB3's bytes: store (+ index) | recall@5 stored / random "
        "| own unit first | top-5 as float32 | fresh `sample(256)` µs (SB3) | insert µs / episode |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for fig in result["figures"]:
        label, size = fig["name"][len("key_cost[") :].split("]@")
        agree = fig.get("exact_top5_agreement_with_float32")
        agree_s = f"{agree['stored']:.2f} / {agree['random']:.2f}" if agree else "—"
        size_s = f"{int(size) // 1_000_000}M" if int(size) >= 1_000_000 else f"{int(size) // 1_000}k"
        lines.append(
            f"| {label} | {size_s} | {fig['bytes_store']:.0f} (+{fig['bytes_index']:.0f}) "
            f"| {fig['bytes_vs_sb3']:.1f}× ({fig['bytes_with_index_vs_sb3']:.1f}×) "
            f"| {fig['recall_at_5']['stored']:.2f} / {fig['recall_at_5']['random']:.2f} "
            f"| {fig['self_retrieval_at_1']:.2f} | {agree_s} "
            f"| {fig['fresh_sample_us']:.0f} ({fig['sb3_sample_us']:.0f}) | {fig['insert_us_per_episode']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=7, help="interleaved repeats of the timing (median)")
    parser.add_argument("--calls", type=int, default=100, help="calls per timed block")
    parser.add_argument("--fresh-queries", type=int, default=1000, help="distinct queries cycled through")
    parser.add_argument("--recall-queries", type=int, default=100, help="queries per recall set")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--table", type=Path, default=None, help="print the docs table of this JSON run instead")
    parser.add_argument("--write", action="store_true", help="with --table: rewrite it in docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.table is not None:
        text = table(json.loads(args.table.read_text(encoding="utf-8")))
        if args.write:
            page = ROOT / "docs" / "benchmarks.md"
            page.write_text(splice_markers(page.read_text(encoding="utf-8"), text + "\n", BEGIN, END), encoding="utf-8")
        else:
            print(text)
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    print(json.dumps(run(args), indent=1))


if __name__ == "__main__":
    main()
