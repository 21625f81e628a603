"""benchmarks/bench_persist.py runs at a tiny size and reports every figure docs/benchmarks.md quotes (no timings checked)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "benchmarks") not in sys.path:
    sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_persist  # noqa: E402


def test_persist_row_has_the_parts_of_a_save_and_the_fastest_repeats(tmp_path):
    row = bench_persist.measure(3_000, 2, 0, tmp_path)
    parts = ("save", "raw_write", "load", "load_size", "raw_read", "delete", "sha256")
    assert set(row["min_s"]) == set(row["all_s"]) == set(parts)
    assert len(row["all_s"]["save"]) == 2 and len(row["all_s"]["delete"]) == 1  # the first raw write deletes nothing
    for name in parts:
        assert row["min_s"][name] == min(row["all_s"][name]) > 0
    assert row["save_ratio_min"] == round(row["min_s"]["raw_write"] / row["min_s"]["save"], 2)
    assert row["load_ratio_min"] == round(row["min_s"]["raw_read"] / row["min_s"]["load"], 2)
    assert row["bytes"] > 0 and row["size"] == 3_000
