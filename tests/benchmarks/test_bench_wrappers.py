"""benchmarks/bench_wrappers.py runs at CI size and reports what docs/benchmarks.md quotes (no timings checked)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "benchmarks") not in sys.path:
    sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_wrappers  # noqa: E402


@pytest.fixture(scope="module")
def recording() -> dict:
    """One CI-sized run of the recording figures, shared by the tests below."""
    return bench_wrappers.main(["--quick", "--skip-dqn"])


def test_recording_figures_include_the_drop_sink_floor(recording):
    out = recording
    single, drop, vector = out["record_single"], out["record_single_drop"], out["record_vector"]
    assert single["sink"] == "memory" and single["memory_transitions"] == 2_000
    assert drop["sink"] == "drop" and drop["memory_transitions"] is None
    assert drop["memory_units"] == single["memory_units"] > 0  # the same units reach either sink
    assert vector["n_envs"] == 8 and vector["memory_transitions"] > 0
    assert all(r["target_ratio"] == 1.5 and r["ratio"] > 0 for r in (single, drop, vector))
    assert "sb3_dqn_defaults" not in out


def test_recording_floor_figures(recording):
    out = recording
    batched, minimal, floor = out["record_single_batched"], out["record_single_minimal"], out["record_floor"]
    assert batched["sink"] == "memory-batched" and batched["memory_transitions"] == 2_000
    assert minimal["sink"] == "minimal" and minimal["memory_units"] is None and minimal["ratio"] > 0
    assert floor["units"] == out["record_single"]["memory_units"]
    for key in ("raw_step_us", "keys_us_unit", "keys_us_batch", "store_add_us"):
        assert floor[key] > 0, key
    # The floor is the sum of its measured parts, in units of one raw step.
    raw, added = floor["raw_step_us"], floor["keys_us_batch"] + floor["store_add_us"]
    parts = floor["minimal_recorder_ratio"] + added / raw
    # Each figure is printed rounded (ratios to 3 decimals, microseconds to 2): allow exactly that.
    slack = 0.0005 + 0.0005 + 0.01 / raw + added * 0.005 / raw**2 + 1e-6  # first order, plus a margin
    assert abs(floor["floor_ratio"] - parts) <= slack


def test_unknown_recording_sink_is_refused():
    with pytest.raises(ValueError, match="unknown sink"):
        bench_wrappers.bench_record(10, 1, 1, sink="nowhere")
    with pytest.raises(ValueError, match="single-env"):
        bench_wrappers.bench_record(10, 2, 1, sink="minimal")


def test_dqn_settings_name_sb3_defaults_and_the_rl_zoo():
    assert bench_wrappers.DQN_SETTINGS["sb3-defaults"] == ({}, 1.2)
    assert bench_wrappers.DQN_SETTINGS["rl-zoo"][0]["gradient_steps"] == 128


def test_dqn_figure_without_retrieval_runs_both_buffers():
    pytest.importorskip("stable_baselines3")
    out = bench_wrappers.bench_dqn(600, 0, 1, False, 1, "sb3-defaults", mixture=0.0)
    assert out["mixture_ratio"] == 0.0 and out["target_ratio"] == 1.2
    assert out["hippogym"]["num_timesteps"] == out["sb3"]["num_timesteps"] == 600
    assert out["hippogym"]["memory_transitions"] > 0 and out["ratio"] > 0
