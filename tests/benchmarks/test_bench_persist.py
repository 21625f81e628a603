"""benchmarks/bench_persist.py runs at a tiny size and reports every figure docs/benchmarks.md quotes (no timings checked)."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "benchmarks") not in sys.path:
    sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_persist  # noqa: E402


def _close(printed_ratio: float, num: float, den: float) -> bool:
    """True when ``printed_ratio`` is ``num / den`` to within the rounding of all three figures."""
    ratio = num / den
    slack = ratio * (0.5e-4 / num + 0.5e-4 / den) + 0.005 + 1e-9
    return abs(printed_ratio - ratio) <= slack


def test_persist_row_has_the_parts_of_a_save_and_the_fastest_repeats(tmp_path):
    row = bench_persist.measure(3_000, 2, 0, tmp_path)
    parts = ("save", "raw_write", "load", "load_size", "raw_read", "delete", "sha256", "verify")
    assert set(row["min_s"]) == set(row["all_s"]) == set(parts)
    assert len(row["all_s"]["save"]) == 2 and len(row["all_s"]["delete"]) == 1  # the first raw write deletes nothing
    for name in parts:
        assert row["min_s"][name] == min(row["all_s"][name]) > 0
    # The ratios come from the unrounded times and the times are printed to 4 decimals, so the
    # ratio recomputed from the printed times may differ by the rounding of both, never more.
    assert _close(row["save_ratio_min"], row["min_s"]["raw_write"], row["min_s"]["save"])
    assert _close(row["load_ratio_min"], row["min_s"]["raw_read"], row["min_s"]["load"])
    assert row["bytes"] > 0 and row["size"] == 3_000
    # Each floor is a ratio of the medians of its parts (see the module docstring).
    med = {name: statistics.median(row["all_s"][name]) for name in parts}
    assert _close(row["load_floor_ratio"], med["raw_read"], med["raw_read"] + med["verify"])
    assert _close(row["save_floor_ratio"], med["raw_write"], max(med["raw_write"], med["sha256"]) + med["delete"])
