"""benchmarks/bench_keys.py: the key-cost figures at a tiny size, and the docs table from the committed run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "benchmarks") not in sys.path:
    sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_keys  # noqa: E402
from retrieval_report import splice_markers  # noqa: E402

from hippogym.types import DEFAULT_EMBED_DIM, DEFAULT_KEY_DTYPE  # noqa: E402


@pytest.fixture(scope="module")
def tiny_run():
    args = bench_keys.argparse.Namespace(
        sizes=[2_000], repeats=1, calls=2, fresh_queries=20, recall_queries=10, threads=1, seed=0
    )
    return bench_keys.run(args)


def test_every_setting_reports_bytes_quality_and_time_against_sb3(tiny_run):
    figures = {f["name"]: f for f in tiny_run["figures"]}
    labels = [label for label, _, _ in bench_keys.SETTINGS]
    assert labels[-1] == f"{DEFAULT_EMBED_DIM}-d {DEFAULT_KEY_DTYPE}"  # the library's default is measured
    rows = [figures[f"key_cost[{label}]@2000"] for label in labels]
    for fig in rows:
        assert fig["bytes_vs_sb3"] == pytest.approx(fig["bytes_store"] / fig["sb3_bytes"], abs=0.01)
        assert fig["fresh_sample_us"] > 0 and fig["sb3_sample_us"] > 0 and fig["ratio"] > 0
        assert fig["self_retrieval_at_1"] == 1.0  # a stored observation finds its own unit first
        assert set(fig["recall_at_5"]) == {"stored", "random"}
    # 128-d float32 > 64-d float32 > 64-d float16: the key is most of a transition.
    # (The unit table's float32 centroids are as wide as the keys: a few more bytes for 128-d.)
    assert rows[0]["bytes_store"] - rows[1]["bytes_store"] >= 64 * 4
    assert rows[1]["bytes_store"] - rows[2]["bytes_store"] == pytest.approx(64 * 2, abs=0.2)
    agreement = rows[2]["exact_top5_agreement_with_float32"]
    assert rows[0]["exact_top5_agreement_with_float32"] is None and min(agreement.values()) >= 0.9


def test_the_docs_table_is_printed_from_the_committed_run():
    run = json.loads((ROOT / "docs" / "benchmarks" / "keys.json").read_text(encoding="utf-8"))
    page = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    body = bench_keys.table(run) + "\n"
    assert splice_markers(page, body, bench_keys.BEGIN, bench_keys.END) == page
    assert {f["name"] for f in run["figures"]} >= {f"key_cost[{label}]@1000000" for label, _, _ in bench_keys.SETTINGS}
