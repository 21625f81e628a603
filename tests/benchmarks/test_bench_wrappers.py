"""benchmarks/bench_wrappers.py runs at CI size and reports what docs/benchmarks.md quotes (no timings checked)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "benchmarks") not in sys.path:
    sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_wrappers  # noqa: E402


def test_recording_figures_include_the_drop_sink_floor(capsys):
    out = bench_wrappers.main(["--quick", "--skip-dqn"])
    capsys.readouterr()
    single, drop, vector = out["record_single"], out["record_single_drop"], out["record_vector"]
    assert single["sink"] == "memory" and single["memory_transitions"] == 2_000
    assert drop["sink"] == "drop" and drop["memory_transitions"] is None
    assert drop["memory_units"] == single["memory_units"] > 0  # the same units reach either sink
    assert vector["n_envs"] == 8 and vector["memory_transitions"] > 0
    assert all(r["target_ratio"] == 1.5 and r["ratio"] > 0 for r in (single, drop, vector))
    assert "sb3_dqn_defaults" not in out


def test_dqn_settings_name_sb3_defaults_and_the_rl_zoo():
    assert bench_wrappers.DQN_SETTINGS["sb3-defaults"] == ({}, 1.2)
    assert bench_wrappers.DQN_SETTINGS["rl-zoo"][0]["gradient_steps"] == 128
