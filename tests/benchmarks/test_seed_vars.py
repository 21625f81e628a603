"""benchmarks/rl/seed_vars.py: the scripts take the seed's environment variables with the seed's meaning."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.rl.seed_vars import seed_args

ROOT = Path(__file__).resolve().parents[2]


def _opt(args: list[str], name: str) -> str:
    return args[len(args) - 1 - args[::-1].index(name) + 1]


def test_the_seed_faster_line_maps_to_one_length_and_consolidation_every_10_episodes():
    args, notes = seed_args("corridor_zn", {"SEEDS": "2", "EPISODES": "150", "CONS_EVERY": "10", "CONS_STEPS": "50"})
    assert _opt(args, "--lengths") == "30" and _opt(args, "--episodes") == "150" and _opt(args, "--seeds") == "2"
    assert _opt(args, "--cons-every-episodes") == "10" and "--cons-every" not in args
    assert any("CONS_EVERY=10 counts episodes" in n for n in notes) and any("LENGTH=30" in n for n in notes)
    # Without seed variables, the script's own defaults; CONS_EVERY_STEPS counts transitions.
    args, notes = seed_args("corridor_zn", {"CONS_EVERY_STEPS": "500"})
    assert _opt(args, "--lengths") == "30,50,100" and _opt(args, "--cons-every") == "500" and not notes
    args, _ = seed_args("corridor_zn", {"LENGTH": "50", "OUT": "results/zn.csv"})
    assert _opt(args, "--lengths") == "50" and _opt(args, "--csv") == "results/zn.csv" and _opt(args, "--out") == "results/zn"


def test_quick_cartpole_takes_batch_schedule_interval_and_the_mixture_ramp():
    env = {"BATCH": "256", "SCHEDULE": "interleaved", "CONS_INTERVAL": "1000", "WARMUP": "8000", "SCHED_START": "0.0",
           "SCHED_END": "0.5", "MIXTURE_RATIO": "0.2", "LOG_INTERVAL": "1000", "EVAL_EPS": "3"}
    args, notes = seed_args("quick_cartpole", env)
    assert _opt(args, "--batch-size") == "256" and _opt(args, "--cons-schedule") == "interleaved"
    assert _opt(args, "--cons-every") == "1000" and _opt(args, "--mixture-ramp") == "0.0,0.5,8000"
    assert "--mixture" not in args and _opt(args, "--eval-episodes") == "3" and _opt(args, "--eval-every") == "1000"
    assert len(notes) == len(env) - 2  # one note per seed variable (the ramp's three share one) ...
    assert any("MIXTURE_RATIO=0.2 is overridden" in n for n in notes)  # ... and the override is said
    args, _ = seed_args("quick_cartpole", {"MIXTURE_RATIO": "0.2"})
    assert _opt(args, "--mixture") == "0.2"


def test_curriculum_builds_the_seed_lengths_and_episode_budget():
    env = {"EPISODES": "200", "LENGTH": "30", "MIN_LENGTH": "5", "LENGTH_STEP": "5", "CONS_EVERY": "10",
           "SUCCESS_WINDOW": "30", "SUCCESS_THRESHOLD": "0.8"}
    args, notes = seed_args("corridor_curriculum", env)
    assert _opt(args, "--lengths") == "5,10,15,20,25,30" and _opt(args, "--episodes") == "200"
    assert _opt(args, "--steps") == str(200 * 4 * 30) and _opt(args, "--cons-every-episodes") == "10"
    assert _opt(args, "--window") == "30" and _opt(args, "--promote-at") == "0.8" and len(notes) == 5


@pytest.mark.parametrize(("script", "module"), [("corridor_multiseed_zn.sh", "sparse_corridor"),
                                                ("corridor_curriculum.sh", "curriculum")])
def test_the_scripts_say_how_they_took_the_seed_variables(script, module, tmp_path):
    shim = tmp_path / "python-dry"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@" --dry-run\n')
    shim.chmod(0o755)
    env = {**os.environ, "PYTHON": str(shim), "SEEDS": "2", "EPISODES": "150", "CONS_EVERY": "10", "CONS_STEPS": "50",
           "OUT": str(tmp_path / "out")}
    proc = subprocess.run(["bash", str(ROOT / "scripts" / script)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "[seed variables] CONS_EVERY=10 counts episodes" in proc.stderr
    jobs = [json.loads(line[len("job: "):]) for line in proc.stdout.splitlines() if line.startswith("job: ")]
    assert len(jobs) == 4 and {j["seed"] for j in jobs} == {0, 1} and all(j["episodes"] == 150 for j in jobs)
    assert all(j["hippo"]["consolidate_every_episodes"] == 10 for j in jobs)
