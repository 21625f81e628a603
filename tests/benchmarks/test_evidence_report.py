"""benchmarks/rl/evidence_report.py: the committed results page is regenerated from the per-seed files."""

from __future__ import annotations

import json

import pytest

from benchmarks.rl import evidence_report


def test_the_results_page_and_readme_table_equal_what_the_report_prints_from_the_committed_runs():
    from benchmarks.retrieval_report import splice_markers

    data = evidence_report.load()
    page = evidence_report.PAGE.read_text(encoding="utf-8")
    assert evidence_report.splice(page, evidence_report.tables(data)) == page
    readme = evidence_report.README.read_text(encoding="utf-8")
    use = evidence_report.when_to_use(data)
    assert splice_markers(readme, use + "\n", evidence_report.USE_BEGIN, evidence_report.USE_END) == readme


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


def _curve_run(values, threshold=0.8, every=100, arm="a", seed=0):
    curve = [{"step": i * every, "eval_success": v} for i, v in enumerate(values)]
    return {"experiment": "evidence", "env": "e", "arm": arm, "seed": seed, "metric": "eval_success",
            "threshold": threshold, "steps": every * (len(values) - 1), "curve": curve,
            "steps_to_threshold": None, "final": values[-1]}


def test_reached_at_is_the_plans_definition_reached_and_held_at_the_next_evaluation():
    assert evidence_report.reached_at(_curve_run([0, 0.9, 0.2, 0.9, 0.85, 0.1])) == 300  # 100 is not held
    assert evidence_report.reached_at(_curve_run([0, 0.5, 0.9])) is None  # the last evaluation has no next
    assert evidence_report.reached_at({"steps_to_threshold": 700, "threshold": 0.9}) == 700  # no curve: runner's


def test_median_ratio_uses_censored_medians_and_a_log_rank_test():
    fast = [_curve_run([0, 1, 1, 1, 1], arm="h", seed=i) for i in range(6)]  # reached at 100
    slow = [_curve_run([0, 0, 0, 1, 1], arm="b", seed=i) for i in range(6)]  # reached at 300
    out = evidence_report.median_ratio(fast, slow)
    assert out["value"] == pytest.approx(1 / 3) and out["ci_high"] == pytest.approx(1 / 3) and out["p"] < 0.01
    never = [_curve_run([0, 0, 0, 0, 0], arm="b", seed=i) for i in range(6)]
    out = evidence_report.median_ratio(fast, never)
    assert out["value"] == 0.0 and out["b"] == float("inf")
    budget = never[0]["steps"]
    # Shown as a bound: the baseline's median lies beyond its budget, so the ratio is below 100 / budget.
    assert evidence_report._fmt_ratio_estimate(out).startswith(f"< {100 / budget:.2f} [")
    assert evidence_report._fmt_ratio_estimate(evidence_report.median_ratio(never, fast)).startswith(
        f"> {budget / 100:.2f} ["
    )
    same = evidence_report.median_ratio(slow, slow)
    assert same["value"] == 1.0 and same["ci_low"] <= 1.0 <= same["ci_high"] and same["p"] > 0.5


def test_final_difference_and_holm():
    a = [{"final": v} for v in (1.0, 0.9, 1.0, 0.95)]
    b = [{"final": v} for v in (0.1, 0.0, 0.2, 0.1)]
    out = evidence_report.final_difference(a, b)
    assert out["value"] > 0.8 and out["ci_low"] > 0.5 and out["p"] < 0.05
    # Holm with a family of 4 and two observed p-values: 4 * 0.01, then max(0.04, 3 * 0.02).
    assert evidence_report.holm({"P1": 0.01, "P3": 0.02}, family=4) == pytest.approx({"P1": 0.04, "P3": 0.06})


def test_plots_draw_curves_profiles_and_survival_per_stage_and_env(tmp_path):
    pytest.importorskip("matplotlib")
    runs = {"h": [_curve_run([0, 1, 1, 1], arm="h", seed=i) for i in range(3)],
            "b": [_curve_run([0, 0, 0, 0], arm="b", seed=i) for i in range(3)]}
    for arm_runs in runs.values():
        for r in arm_runs:
            r.update(budget=300, auc=0.5)
    written = evidence_report.plot({"pilot": {"e": runs}}, out=tmp_path)
    assert [p.name for p in written] == ["pilot_e.png"]
    assert written[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and written[0].stat().st_size > 10_000


def test_a_comparison_over_two_environments_with_one_run_enters_holm_as_p_one():
    def final_runs(env, arm, finals):
        return [{**_run(arm, i, v, None, env=env), "metric": "final_return"} for i, v in enumerate(finals)]

    good, base = (1.0, 0.9, 1.0, 0.95, 1.0), (0.1, 0.0, 0.2, 0.1, 0.0)
    data = {"confirmatory": {"repeatfirst": {"hippo-history": final_runs("repeatfirst", "hippo-history", good),
                                             "framestack": final_runs("repeatfirst", "framestack", base)}}}
    (row,) = evidence_report.primary_results(data)
    assert row["id"] == "P2" and row["met"] and row["p"] < 0.05
    assert row["incomplete"] == ["memoryS7"] and row["p_holm"] == 1.0
    assert "memoryS7 not run" in evidence_report.primary_table([row])
    data["confirmatory"]["memoryS7"] = {"hippo-history": final_runs("memoryS7", "hippo-history", good),
                                        "framestack": final_runs("memoryS7", "framestack", base)}
    rows = evidence_report.primary_results(data)
    assert len(rows) == 2 and all("incomplete" not in r and r["p_holm"] < 0.05 for r in rows)


def test_a_confirmatory_set_short_of_its_planned_seeds_is_not_judged():
    def steps_runs(arm, reached, first=0):
        return [{**_run(arm, first + i, -100.0, r, steps=120_000, env="mountaincar"), "metric": "eval_return",
                 "threshold": -110.0} for i, r in enumerate(reached)]

    # The pilot (3 seeds per arm, little spread) asks for the minimum, 10 confirmatory seeds per arm.
    pilot = {"mountaincar": {"nstep": steps_runs("nstep", (36_000, 42_000, 36_000)),
                             "hippo-value": steps_runs("hippo-value", (42_000, 36_000, 42_000))}}
    assert evidence_report.planned_seeds(pilot) == {"mountaincar": 10}
    fast, slow = [12_000] * 3, [60_000] * 3
    data = {"pilot": pilot, "confirmatory": {"mountaincar": {"hippo-value": steps_runs("hippo-value", fast, 100),
                                                             "nstep": steps_runs("nstep", slow, 100)}}}
    (row,) = evidence_report.primary_results(data)
    assert row["pending"] == (3, 10) and not row["met"] and row["p_holm"] == 1.0
    assert "not judged yet: 3 of 10 planned seeds" in evidence_report.primary_table([row])
    use = evidence_report.when_to_use(data)
    assert "3 / 3, pilot (exploratory)" in use and "confirmatory" not in use.split("MountainCar")[1].split("\n")[0]
    # With all ten seeds the same data is judged.
    data["confirmatory"]["mountaincar"] = {"hippo-value": steps_runs("hippo-value", [12_000] * 10, 100),
                                           "nstep": steps_runs("nstep", [60_000] * 10, 100)}
    (row,) = evidence_report.primary_results(data)
    assert "pending" not in row and row["met"] and row["p_holm"] < 0.05
    assert "10 / 10, confirmatory" in evidence_report.when_to_use(data)


def test_when_to_use_names_comparisons_without_runs():
    table = evidence_report.when_to_use({})
    assert table.count("not run yet") == len(evidence_report.USE_CASES)  # every registered comparison has a row
