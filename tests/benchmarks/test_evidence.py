"""benchmarks/rl/evidence.py: the plan's environments and arms, and what each result records."""

from __future__ import annotations

import pytest

from benchmarks.rl import evidence


def test_every_planned_arm_is_known_and_every_environment_has_a_reference():
    for spec in evidence.ENVS.values():
        assert set(spec.arms) <= set(evidence.ARMS) and "uniform" in spec.arms
    assert {"doorkey5", "memoryS7", "repeatfirst", "bitflip10", "bitflip15", "mountaincar", "corridor30",
            "corridor50", "cartpole"} == set(evidence.ENVS)
    assert evidence._seeds("0,1,2") == [0, 1, 2] and evidence._seeds("100-103,7") == [100, 101, 102, 103, 7]


@pytest.mark.parametrize("arm", ["uniform", "per", "hippo-value"])
def test_a_short_run_records_its_curve_threshold_and_provenance(arm):
    result = evidence.run_one("corridor30", arm, seed=0, steps=1_200, command="test")
    assert result["steps"] == 1_200 and result["budget"] == 1_200 and result["curve"]
    assert result["metric"] == "eval_success" and result["threshold"] == 0.9
    assert result["censored"] is (result["steps_to_threshold"] is None)
    assert result["versions"]["torch"] and result["versions"]["stable-baselines3"]
    assert result["commit"] is None or len(result["commit"]) == 40


def test_an_unplanned_arm_is_refused():
    with pytest.raises(ValueError, match="not planned"):
        evidence.run_one("corridor30", "her", seed=0, steps=100)
    jobs = evidence.main(["--env", "bitflip10", "--seeds", "0-1", "--dry-run"])
    assert jobs == []  # a dry run prints the jobs and runs none


def test_the_pinned_evidence_environment_is_the_one_every_committed_run_recorded():
    import json
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    pins = {}
    for line in (root / "benchmarks/rl/requirements-evidence.txt").read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if match:
            pins[match.group(1)] = match.group(2)
    assert {"torch", "numpy", "gymnasium", "stable-baselines3", "minigrid", "popgym"} <= set(pins)
    runs = sorted((root / "docs/evidence/runs/evidence").rglob("seed*.json"))
    assert len(runs) > 100
    for path in runs:
        recorded = json.loads(path.read_text())["versions"]
        for name, version in pins.items():
            # torch records its local build tag (2.13.0+cpu); the release must match.
            assert recorded[name].split("+")[0] == version, (path, name, recorded[name], version)
