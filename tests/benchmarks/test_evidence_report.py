"""benchmarks/rl/evidence_report.py: the committed results page is regenerated from the per-seed files."""

from __future__ import annotations

import json

import pytest

from benchmarks.rl import evidence_report


def test_the_results_page_equals_what_the_report_prints_from_the_committed_runs():
    page = evidence_report.PAGE.read_text(encoding="utf-8")
    assert evidence_report.splice(page, evidence_report.tables(evidence_report.load())) == page


def _run(arm, seed, final, reached, steps=1000, env="corridor30"):
    return {"experiment": "evidence", "env": env, "arm": arm, "seed": seed, "final": final, "steps": steps,
            "budget": steps, "metric": "eval_success", "threshold": 0.9, "steps_to_threshold": reached}


def test_kaplan_meier_median_treats_runs_that_never_reach_the_threshold_as_censored():
    # Reached at 100, 200, 300; two runs censored at 1000: S drops to 0.8, 0.6, 0.4 -> median 300.
    runs = [_run("a", i, 1.0, r) for i, r in enumerate((100, 200, 300))]
    runs += [_run("a", 3 + i, 0.0, None) for i in range(2)]
    assert evidence_report.km_median(runs) == 300.0
    # Counting the censored runs as reaching at the budget would be a different (wrong) answer.
    assert evidence_report.km_median(runs[:1] + runs[3:]) is None  # S never falls to 0.5


def test_tables_read_the_files_and_compare_with_uniform(tmp_path):
    for arm, finals in (("uniform", (0.0, 0.1, 0.0)), ("hippo-value", (0.9, 1.0, 1.0))):
        for seed, final in enumerate(finals):
            path = tmp_path / "pilot" / "corridor30" / arm / f"seed{seed}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(_run(arm, seed, final, 500 if final > 0.5 else None)))
    data = evidence_report.load(tmp_path)
    assert sorted(data["pilot"]["corridor30"]) == ["hippo-value", "uniform"]
    text = evidence_report.tables(data)
    row = next(line for line in text.splitlines() if line.startswith("| `hippo-value`"))
    assert "| 3 |" in row and "| 500 |" in row and "3/3" in row and "1.00 [" in row  # P(hippo > uniform) = 1
    assert "Confirmatory runs\n\nNone committed yet." in text
    with pytest.raises(ValueError):
        evidence_report.splice("no markers", text)


def test_best_baseline_ranks_by_km_median_then_runs_reached_and_skips_hippo_arms():
    def runs(arm, reached):
        return [{**_run(arm, i, 1.0 if r else 0.0, r), "auc": 0.5} for i, r in enumerate(reached)]

    arms = {"uniform": runs("uniform", (None, None, None)), "nstep": runs("nstep", (300, None, None)),
            "per": runs("per", (None, None, None)), "hippo-value": runs("hippo-value", (100, 100, 100))}
    assert evidence_report.best_baseline(arms) == "nstep"  # no median anywhere; nstep reached once
    arms["per"] = runs("per", (200, 250, None))
    assert evidence_report.best_baseline(arms) == "per"  # a median beats none
    with pytest.raises(ValueError):
        evidence_report.best_baseline({"hippo-value": arms["hippo-value"]})


def test_seed_count_follows_the_plans_formula_and_its_bounds():
    import numpy as np

    # sigma = 1, delta = 1: 2 * (2.4977 + 0.8416)^2 = 22.3 -> 23 seeds.
    a, b = np.array([-1.0, 0.0, 1.0]), np.array([1.0, 2.0, 3.0])
    out = evidence_report.seed_count(a, b, delta=1.0)
    assert out["sigma"] == pytest.approx(1.0) and out["raw"] == 23 and out["seeds"] == 23
    assert evidence_report.seed_count(a, b, delta=10.0)["seeds"] == 10  # at least 10
    big = evidence_report.seed_count(a * 10, b * 10, delta=1.0)
    assert big["seeds"] == 30 and big["underpowered"]
    assert evidence_report.seed_count(np.zeros(3), np.ones(3), delta=1.0)["seeds"] == 10  # no spread
