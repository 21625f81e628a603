"""Smoke tests: the wrapper examples run end to end with tiny step counts."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name: str):
    return runpy.run_path(str(EXAMPLES / name))["main"]


def test_record_vector_env_example(capsys):
    summary = load("record_vector_env.py")(["--steps", "40", "--num-envs", "4", "--consolidate-steps", "2"])
    # Every real transition of 4 envs x 40 steps, flushed at close; each episode end costs one
    # NEXT_STEP reset step (not a transition), unless it came at the very last step.
    assert 160 - summary["episode_ends"] <= summary["transitions"] <= 160
    assert "hybrid batch" in capsys.readouterr().out


@pytest.mark.parametrize("steps", [1, 40])
def test_recall_observation_example(steps, capsys):
    result = load("recall_observation.py")(["--steps", str(steps), "--episodes", "3"])
    assert result["units"] >= 1 and 0.0 <= result["success_rate"] <= 1.0
    assert "recalls" in capsys.readouterr().out


def test_history_recall_example(capsys):
    result = load("history_recall.py")(["--episodes", "80", "--eval-episodes", "20"])
    assert result["window"] >= 0.9 and result["window"] > result["single_step"]
    assert "keys over 7 observation(s)" in capsys.readouterr().out
