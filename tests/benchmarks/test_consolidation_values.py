"""A CI-sized run of benchmarks/rl/consolidation_values.py, and its committed results are complete."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.rl import consolidation_values  # noqa: E402


def test_tiny_run_writes_every_arm(tmp_path):
    result = consolidation_values.main(
        ["--seeds", "1", "--steps", "600", "--held-out", "300", "--queries", "40", "--consolidate", "50",
         "--out", str(tmp_path)]
    )
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["runs"] == result["runs"] and saved["versions"]["torch"]
    for arm in consolidation_values.SETTINGS:
        assert set(saved["runs"][0][arm]) == {"mae", "spearman"} and saved["runs"][0][arm]["mae"] >= 0


def test_committed_results_hold_five_seeds_of_every_arm():
    saved = json.loads((ROOT / "docs/evidence/runs/consolidation_values/results.json").read_text())
    assert [r["seed"] for r in saved["runs"]] == [0, 1, 2, 3, 4]
    assert all(arm in r for r in saved["runs"] for arm in consolidation_values.SETTINGS)
