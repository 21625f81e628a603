"""Tables of the evidence runs (``benchmarks/rl/evidence.py``), regenerated from the per-seed files.

Reads ``<runs>/<stage>/<env>/<arm>/seed<N>.json`` for each stage (``pilot``, ``confirmatory``) and
writes one table per stage and environment into ``docs/evidence/results.md``, between
``<!-- evidence-tables:begin -->`` and ``<!-- evidence-tables:end -->``. A test checks that the
committed page equals what this script prints from the committed files.

Per arm:
- the final metric (mean of the last 3 evaluations): its IQM and mean, with 95% bootstrap CIs over
  seeds (``benchmarks/rl/stats.py``, the estimators rliable uses);
- for environments with a threshold, the Kaplan–Meier median of the steps until the threshold was
  reached and held (runs that never reach it are right-censored at their budget, scipy's ``ecdf``),
  and how many runs reached it;
- the probability of improvement over ``uniform`` on the final metric, with its CI.

Usage::

    python benchmarks/rl/evidence_report.py            # prints the tables
    python benchmarks/rl/evidence_report.py --write    # rewrites them in docs/evidence/results.md and the
                                                       # README's "When to use it" table
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.retrieval_report import splice_markers
from benchmarks.rl import stats

ROOT = Path(__file__).resolve().parents[2]
RUNS = ROOT / "docs" / "evidence" / "runs" / "evidence"
PAGE = ROOT / "docs" / "evidence" / "results.md"
README = ROOT / "README.md"
BEGIN, END = "<!-- evidence-tables:begin -->", "<!-- evidence-tables:end -->"
USE_BEGIN, USE_END = "<!-- when-to-use:begin -->", "<!-- when-to-use:end -->"
STAGES = ("pilot", "confirmatory")
REFERENCE = "uniform"

#: The plan's primary comparisons: id -> (metric kind, hippogym arm per env, fixed baseline per env or None
#: when the pilot picks the best baseline, and the effect size ``delta`` the seed count is sized for).
PRIMARY: dict[str, dict[str, Any]] = {
    "P1": {"kind": "steps", "arms": {"doorkey5": "hippo-value", "bitflip15": "hippo-her"}, "baseline": None,
           "delta": float(np.log(2.0))},
    "P2": {"kind": "final", "arms": {"memoryS7": "hippo-history", "repeatfirst": "hippo-history"},
           "baseline": "framestack", "delta": 0.1},
    "P3": {"kind": "final", "arms": {"cartpole": "hippo-replay"}, "baseline": "uniform", "delta": 0.1},
    "P4": {"kind": "steps", "arms": {"mountaincar": "hippo-value"}, "baseline": "nstep",
           "delta": float(np.log(1.25))},
}
#: Arms that are hippogym's own, never a baseline.
HIPPO_ARMS = ("hippo-replay", "hippo-value", "hippo-her", "hippo-history")
SEEDS_MIN, SEEDS_MAX = 10, 30


def load(root: Path = RUNS) -> dict[str, dict[str, dict[str, list[dict[str, Any]]]]]:
    """``{stage: {env: {arm: [per-seed results, by seed]}}}`` from the committed files."""
    out: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = {}
    for stage in STAGES:
        for path in sorted((root / stage).glob("*/*/seed*.json")):
            result = json.loads(path.read_text(encoding="utf-8"))
            if result.get("experiment") != "evidence":
                continue
            out.setdefault(stage, {}).setdefault(result["env"], {}).setdefault(result["arm"], []).append(result)
    for envs in out.values():
        for arms in envs.values():
            for runs in arms.values():
                runs.sort(key=lambda r: int(r["seed"]))
    return out


def reached_at(run: dict[str, Any]) -> int | None:
    """Steps-to-threshold as the plan defines it, from the run's learning curve.

    The first evaluation whose metric reaches the threshold while the next evaluation also does
    (the last evaluation, having no next, does not count). ``None`` if that never happens.
    The runner's own ``steps_to_threshold`` is stricter (held at every later evaluation); the
    tables report it as "held to the end". Runs without a stored curve fall back to it.
    """
    curve = run.get("curve")
    if not isinstance(curve, list) or run.get("threshold") is None:
        return run.get("steps_to_threshold")
    key, threshold = run["metric"], float(run["threshold"])
    for row, following in zip(curve, curve[1:]):
        if row.get(key, -np.inf) >= threshold and following.get(key, -np.inf) >= threshold:
            return int(row["step"])
    return None


def censored_steps(runs: list[dict[str, Any]]) -> Any:
    """Steps-to-threshold as scipy ``CensoredData``: runs that never reach it are right-censored at their steps."""
    from scipy.stats import CensoredData

    reached = [reached_at(r) for r in runs]
    return CensoredData(uncensored=[float(t) for t in reached if t is not None],
                        right=[float(r["steps"]) for r, t in zip(runs, reached) if t is None])


def km_median(runs: list[dict[str, Any]]) -> float | None:
    """Kaplan–Meier median of steps-to-threshold (right-censored at the budget); ``None`` if not reached."""
    from scipy.stats import ecdf

    if all(reached_at(r) is None for r in runs):
        return None
    sf = ecdf(censored_steps(runs)).sf
    below = np.flatnonzero(sf.probabilities <= 0.5)
    return float(sf.quantiles[below[0]]) if below.size else None


def _ci(entry: dict[str, Any], digits: int) -> str:
    return f"{entry['value']:.{digits}f} [{entry['ci_low']:.{digits}f}, {entry['ci_high']:.{digits}f}]"


def env_table(env: str, arms: dict[str, list[dict[str, Any]]]) -> str:
    """One environment's table."""
    first = next(iter(arms.values()))[0]
    metric, threshold = first["metric"], first["threshold"]
    # Success rates and small returns (popgym's lie in [-1, 1], MiniGrid's in [0, 1]) with 2 decimals.
    small = max(abs(float(r["final"])) for runs in arms.values() for r in runs) < 10
    digits = 2 if metric == "eval_success" or small else 1
    head = f"**{env}**: final {metric.replace('eval_', '')}"
    if threshold is not None:
        head += f", threshold {threshold:g}"
    lines = [head, ""]
    cols = ["arm", "seeds", "final IQM [95% CI]", "final mean [95% CI]"]
    if threshold is not None:
        cols += ["KM median steps to threshold", "reached", "held to the end"]
    # The reference of P(improvement): uniform replay, or the baseline when a stage ran without it.
    reference = REFERENCE if REFERENCE in arms else next((a for a in sorted(arms) if a not in HIPPO_ARMS), None)
    cols += [f"P(arm > {reference}) [95% CI]"]
    lines += ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    ref = [r["final"] for r in arms.get(reference, [])] if reference else []
    for arm in sorted(arms, key=lambda a: (a != reference, a)):
        runs = arms[arm]
        finals = [float(r["final"]) for r in runs]
        row = [f"`{arm}`", str(len(runs)),
               _ci(stats.stratified_bootstrap_ci({env: finals}), digits),
               _ci(stats.stratified_bootstrap_ci({env: finals}, statistic=np.mean), digits)]
        if threshold is not None:
            median = km_median(runs)
            reached = sum(reached_at(r) is not None for r in runs)
            held = sum(r["steps_to_threshold"] is not None for r in runs)
            row += ["not reached" if median is None else f"{median:,.0f}", f"{reached}/{len(runs)}",
                    f"{held}/{len(runs)}"]
        if arm == reference or not ref:
            row.append("—")
        else:
            row.append(_ci(stats.probability_of_improvement({env: finals}, {env: ref}), 2))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def tables(data: dict[str, Any]) -> str:
    """Every stage's tables, or a line saying that no run is committed yet."""
    parts = []
    for stage in STAGES:
        envs = data.get(stage)
        if not envs:
            parts.append(f"### {stage.capitalize()} runs\n\nNone committed yet.")
            continue
        budgets = sorted({r["budget"] for arms in envs.values() for runs in arms.values() for r in runs})
        parts.append(f"### {stage.capitalize()} runs")
        for env in sorted(envs):
            parts.append(env_table(env, envs[env]))
        if stage == "pilot":
            parts.append("Pilot runs pick the best baseline of P1 and size the confirmatory seeds; they are never "
                         f"part of a confirmatory comparison (budgets: {', '.join(f'{b:,}' for b in budgets)} steps).")
            parts.append(seed_table(seed_plan(envs)))
        if stage == "confirmatory":
            parts.append(primary_table(primary_results(data)))
    return "\n\n".join(parts)


def best_baseline(arms: dict[str, list[dict[str, Any]]]) -> str:
    """The baseline arm that reached the threshold soonest in the pilot.

    Ranked by Kaplan–Meier median steps (not reached ranks last), then by how many runs reached
    the threshold, then by the mean area under the curve.
    """
    def rank(arm: str) -> tuple[float, int, float]:
        runs = arms[arm]
        median = km_median(runs)
        reached = sum(reached_at(r) is not None for r in runs)
        return (np.inf if median is None else median, -reached, -float(np.mean([r["auc"] for r in runs])))

    baselines = [a for a in arms if a not in HIPPO_ARMS]
    if not baselines:
        raise ValueError(f"Expected a baseline arm among {sorted(arms)}, got none")
    return min(sorted(baselines), key=rank)


def _log_steps(runs: list[dict[str, Any]]) -> np.ndarray:
    """log steps-to-threshold, a censored run entering at its budget (so its spread is a lower bound)."""
    return np.log([float(reached_at(r) if reached_at(r) is not None else r["steps"]) for r in runs])


def seed_count(
    a: np.ndarray, b: np.ndarray, delta: float, alpha: float = 0.05 / 4, power: float = 0.8
) -> dict[str, Any]:
    """The plan's per-arm seed count ``ceil(2 (z_{1-alpha/2} + z_power)^2 sigma^2 / delta^2)``, clipped to 10..30.

    ``sigma`` is the pooled standard deviation of the two pilot samples.
    """
    from scipy import stats as sps

    pooled = ((a.size - 1) * np.var(a, ddof=1) + (b.size - 1) * np.var(b, ddof=1)) / max(a.size + b.size - 2, 1)
    sigma = float(np.sqrt(pooled))
    z = float(sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power))
    raw = int(np.ceil(2 * z * z * sigma * sigma / (delta * delta))) if sigma > 0 else 0
    return {"sigma": sigma, "raw": raw, "seeds": int(min(max(raw, SEEDS_MIN), SEEDS_MAX)),
            "underpowered": raw > SEEDS_MAX}


def seed_plan(pilot: dict[str, dict[str, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """Per primary comparison and environment with a pilot: the baseline, sigma and the confirmatory seed count."""
    rows = []
    for pid, spec in PRIMARY.items():
        for env, arm in spec["arms"].items():
            arms = pilot.get(env, {})
            baseline = spec["baseline"] or (best_baseline(arms) if arms else None)
            if arm not in arms or baseline not in arms:
                rows.append({"id": pid, "env": env, "arm": arm, "baseline": baseline, "pilot": False})
                continue
            if spec["kind"] == "steps":
                a, b, delta = _log_steps(arms[arm]), _log_steps(arms[baseline]), spec["delta"]
            else:
                a = np.array([r["final"] for r in arms[arm]], dtype=np.float64)
                b = np.array([r["final"] for r in arms[baseline]], dtype=np.float64)
                delta = spec["delta"] * abs(float(stats.iqm(b)))
            rows.append({"id": pid, "env": env, "arm": arm, "baseline": baseline, "pilot": True, "delta": delta,
                         **seed_count(a, b, delta)})
    return rows


def seed_table(rows: list[dict[str, Any]]) -> str:
    """The confirmatory seed counts the pilot gives, as a markdown table."""
    lines = ["### Confirmatory seed counts (from the pilot)", "",
             "Per arm, `ceil(2 (z(1 - 0.05/8) + z(0.8))² σ² / δ²)`, at least 10 and at most 30 (plan, "
             "\"Seeds\"). For steps-to-threshold σ is the pooled SD of log steps, a censored run entering at its "
             "budget.", "",
             "| comparison | env | arm | baseline | pilot σ | δ | formula | seeds per arm |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if not r["pilot"]:
            lines.append(f"| {r['id']} | {r['env']} | `{r['arm']}` | `{r['baseline'] or 'best baseline'}` | "
                         "no pilot yet | | | |")
            continue
        seeds = f"{r['seeds']}" + (" (underpowered)" if r["underpowered"] else "")
        lines.append(f"| {r['id']} | {r['env']} | `{r['arm']}` | `{r['baseline']}` | {r['sigma']:.3f} | "
                     f"{r['delta']:.3g} | {r['raw']} | {seeds} |")
    return "\n".join(lines)


def _km_or_inf(runs: list[dict[str, Any]]) -> float:
    median = km_median(runs)
    return np.inf if median is None else median


def median_ratio(
    a: list[dict[str, Any]], b: list[dict[str, Any]], n_boot: int = 2_000, seed: int = 0
) -> dict[str, Any]:
    """Ratio of Kaplan–Meier medians ``a / b`` with a 95% bootstrap interval (seeds resampled within arm).

    A resample whose median is never reached counts as infinite; a resample where neither arm
    reaches it has no ratio and is left out (``undefined`` counts them).
    """
    from scipy.stats import logrank

    def times(runs: list[dict[str, Any]]) -> np.ndarray:
        return np.array([np.inf if reached_at(r) is None else float(reached_at(r)) for r in runs])

    ta, tb = times(a), times(b)
    # Every censored run stops at its budget, after every event: the Kaplan–Meier median is then the
    # plain median with censored runs at +inf (smallest t whose ECDF reaches 0.5), which numpy
    # computes for all resamples at once. Checked against scipy's estimate on the data.
    for runs, t in ((a, ta), (b, tb)):
        if np.isfinite(t).any() and any(reached_at(r) is None and r["steps"] < t[np.isfinite(t)].max() for r in runs):
            raise ValueError("a run was censored before another reached the threshold; use km_median per resample")
        assert np.quantile(t, 0.5, method="inverted_cdf") == _km_or_inf(runs)
    rng = np.random.default_rng(seed)
    ma = np.quantile(ta[rng.integers(0, ta.size, (n_boot, ta.size))], 0.5, axis=1, method="inverted_cdf")
    mb = np.quantile(tb[rng.integers(0, tb.size, (n_boot, tb.size))], 0.5, axis=1, method="inverted_cdf")
    with np.errstate(divide="ignore", invalid="ignore"):
        value = float(np.float64(_km_or_inf(a)) / np.float64(_km_or_inf(b)))
        boots = ma / mb
    defined = boots[~np.isnan(boots)]
    lo, hi = (np.quantile(defined, [0.025, 0.975], method="inverted_cdf") if defined.size else (np.nan, np.nan))
    try:
        p_value = float(logrank(censored_steps(a), censored_steps(b)).pvalue)
    except ValueError:  # no event in either arm
        p_value = 1.0
    if not np.isfinite(p_value):  # identical event times in both arms: no evidence of a difference
        p_value = 1.0
    return {"value": value, "ci_low": float(lo), "ci_high": float(hi), "p": p_value,
            "undefined": int(n_boot - defined.size), "a": _km_or_inf(a), "b": _km_or_inf(b),
            "budget_a": min(float(r["steps"]) for r in a), "budget_b": min(float(r["steps"]) for r in b)}


def final_difference(a: list[dict[str, Any]], b: list[dict[str, Any]], n_boot: int = 2_000, seed: int = 0
                     ) -> dict[str, Any]:
    """IQM(a) − IQM(b) of the final metric with a 95% bootstrap interval, and a Mann–Whitney p-value."""
    from scipy.stats import mannwhitneyu

    x = np.array([float(r["final"]) for r in a])
    y = np.array([float(r["final"]) for r in b])
    rng = np.random.default_rng(seed)
    boots = (stats.iqm(x[rng.integers(0, x.size, (n_boot, x.size))], axis=1)
             - stats.iqm(y[rng.integers(0, y.size, (n_boot, y.size))], axis=1))
    lo, hi = np.percentile(boots, [2.5, 97.5])
    p_value = 1.0 if np.array_equal(np.sort(x), np.sort(y)) else float(mannwhitneyu(x, y).pvalue)
    return {"value": float(stats.iqm(x) - stats.iqm(y)), "ci_low": float(lo), "ci_high": float(hi), "p": p_value,
            "a": float(stats.iqm(x)), "b": float(stats.iqm(y))}


def holm(p_values: dict[str, float], family: int) -> dict[str, float]:
    """Holm's step-down adjusted p-values; comparisons of the family without data count as p = 1."""
    order = sorted(p_values, key=lambda k: p_values[k])
    adjusted, running = {}, 0.0
    for rank, key in enumerate(order):
        running = max(running, min(1.0, (family - rank) * p_values[key]))
        adjusted[key] = running
    return adjusted


def planned_seeds(pilot: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, int]:
    """Per environment of a primary comparison with a pilot: the confirmatory seeds per arm it needs."""
    return {r["env"]: int(r["seeds"]) for r in seed_plan(pilot) if r["pilot"]}


def _short_of_plan(arms: dict[str, list[dict[str, Any]]], arm: str, baseline: str, planned: int | None) -> bool:
    """Whether either arm has fewer confirmatory seeds than the plan asks for (its runs are still going)."""
    return planned is not None and min(len(arms[arm]), len(arms[baseline])) < planned


def primary_results(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every primary comparison with confirmatory runs: its estimate, CI, p-value and criterion.

    A comparison whose arms have fewer confirmatory seeds than the pilot's seed count asks for is
    listed as ``pending`` (seeds run, seeds planned): it is not judged, and Holm counts it as p = 1.
    """
    confirmatory, pilot = data.get("confirmatory", {}), data.get("pilot", {})
    plans = planned_seeds(pilot)
    rows = []
    for pid, spec in PRIMARY.items():
        for env, arm in spec["arms"].items():
            arms = confirmatory.get(env, {})
            baseline = spec["baseline"] or (best_baseline(pilot[env]) if env in pilot else None)
            if arm not in arms or baseline not in arms:
                continue
            if spec["kind"] == "steps":
                est = median_ratio(arms[arm], arms[baseline])
                bar = 0.5 if pid == "P1" else None
                met = est["ci_high"] < 1 and (bar is None or est["value"] <= bar)
            else:
                est = final_difference(arms[arm], arms[baseline])
                margin = spec["delta"] * abs(est["b"])
                met = (est["ci_low"] > -margin) if pid == "P2" else (
                    est["ci_low"] <= 0 <= est["ci_high"] and -margin <= est["ci_low"] and est["ci_high"] <= margin)
            row = {"id": pid, "env": env, "arm": arm, "baseline": baseline, "kind": spec["kind"],
                   "n": (len(arms[arm]), len(arms[baseline])), "met": bool(met), **est}
            if _short_of_plan(arms, arm, baseline, plans.get(env)):
                row["met"] = False
                row["pending"] = (min(row["n"]), plans[env])
            rows.append(row)
    # One p-value per comparison of the family (P1 and P2 span two environments: the larger of theirs;
    # while one of them has no confirmatory runs, the comparison is incomplete and enters as p = 1).
    per_id: dict[str, float] = {}
    for r in rows:
        per_id[r["id"]] = max(per_id.get(r["id"], 0.0), r["p"])
    for pid, spec in PRIMARY.items():
        done = {r["env"] for r in rows if r["id"] == pid and "pending" not in r}
        if any(r["id"] == pid and "pending" in r for r in rows):
            per_id[pid] = 1.0
        if done and done != set(spec["arms"]):
            per_id[pid] = 1.0
            for r in rows:
                if r["id"] == pid:
                    r["incomplete"] = sorted(set(spec["arms"]) - done)
    adjusted = holm(per_id, family=len(PRIMARY))
    for r in rows:
        r["p_holm"] = adjusted[r["id"]]
    return rows


def _fmt_steps(x: float) -> str:
    return "not reached" if not np.isfinite(x) else f"{x:,.0f} steps"


def _fmt_ratio(x: float) -> str:
    return "∞" if x == np.inf else ("nan" if np.isnan(x) else f"{x:.2f}")


def _fmt_ratio_estimate(est: dict[str, Any]) -> str:
    """A ratio of medians with its interval; a bound where one median lies beyond its run's budget.

    A median that is never reached is only known to exceed the budget, so ``a / b`` is then below
    ``a / budget_b`` (or above ``budget_a / b``), not 0 (or ∞). Interval ends of 0 or ∞ come from
    resamples in which one arm never reached the threshold.
    """
    a, b, value = est["a"], est["b"], _fmt_ratio(est["value"])
    if np.isfinite(a) and not np.isfinite(b) and "budget_b" in est:
        value = f"< {a / est['budget_b']:.2f}"
    elif np.isfinite(b) and not np.isfinite(a) and "budget_a" in est:
        value = f"> {est['budget_a'] / b:.2f}"
    return f"{value} [{_fmt_ratio(est['ci_low'])}, {_fmt_ratio(est['ci_high'])}]"


def primary_table(rows: list[dict[str, Any]]) -> str:
    """The confirmatory primary comparisons as markdown (or a line saying none has run)."""
    head = ["### Primary comparisons (confirmatory runs)", ""]
    if not rows:
        return "\n".join(head + ["None has confirmatory runs yet."])
    lines = head + [
        "Steps: ratio of Kaplan–Meier medians (hippogym / baseline, below 1 = hippogym faster), 95% bootstrap "
        "CI over seeds, log-rank p. Final: IQM difference, 95% bootstrap CI, Mann–Whitney p. Holm over the "
        f"{len(PRIMARY)} registered comparisons (those without confirmatory runs count as p = 1; a comparison "
        "over two environments takes the larger of their p-values, since both must hold).", "",
        "| comparison | env | arm vs baseline | seeds | hippogym | baseline | estimate [95% CI] | p | Holm p "
        "| criterion met |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if r["kind"] == "steps":
            cells = [_fmt_steps(r["a"]), _fmt_steps(r["b"]), _fmt_ratio_estimate(r)]
        else:
            cells = [f"{r['a']:.2f}", f"{r['b']:.2f}", f"{r['value']:+.2f} [{r['ci_low']:+.2f}, {r['ci_high']:+.2f}]"]
        met = "yes" if r["met"] else "**no**"
        if r.get("pending"):
            met = f"not judged yet: {r['pending'][0]} of {r['pending'][1]} planned seeds per arm have run (Holm p = 1)"
        elif r.get("incomplete"):
            met += f" (this env; {', '.join(r['incomplete'])} not run, so Holm counts it as p = 1)"
        lines.append(f"| {r['id']} | {r['env']} | `{r['arm']}` vs `{r['baseline']}` | {r['n'][0]} / {r['n'][1]} | "
                     + " | ".join(cells) + f" | {r['p']:.3g} | {r['p_holm']:.3g} | {met} |")
    return "\n".join(lines)


#: The README's "When to use it" rows: (situation, env, hippogym arm, baseline arm, kind).
USE_CASES: tuple[tuple[str, str, str, str, str], ...] = (
    ("Sparse reward, several sub-goals (MiniGrid `DoorKey-5x5`)", "doorkey5", "hippo-value", "nstep", "steps"),
    ("… against plain uniform replay (`DoorKey-5x5`)", "doorkey5", "hippo-value", "uniform", "steps"),
    ("Sparse reward, one long corridor (built-in, length 30)", "corridor30", "hippo-value", "nstep", "steps"),
    ("Sparse reward, one long corridor (built-in, length 50)", "corridor50", "hippo-value", "nstep", "steps"),
    ("Goal-conditioned, sparse (`BitFlippingEnv`, 15 bits)", "bitflip15", "hippo-her", "her", "steps"),
    ("Goal-conditioned, sparse (`BitFlippingEnv`, 10 bits)", "bitflip10", "hippo-her", "her", "steps"),
    ("Dense reward (`CartPole-v1`), replay through the memory", "cartpole", "hippo-replay", "uniform", "final"),
    ("Dense reward (`CartPole-v1`), value term", "cartpole", "hippo-value", "uniform", "final"),
    ("Semantic replay alone, no value term (`DoorKey-5x5`)", "doorkey5", "hippo-replay", "uniform", "final"),
    ("Semantic replay alone, no value term (corridor 30)", "corridor30", "hippo-replay", "uniform", "final"),
    ("Semantic replay alone, no value term (`MountainCar-v0`)", "mountaincar", "hippo-replay", "uniform", "steps"),
    ("Partial observability, recall of the first cue (popgym `RepeatFirstEasy`)", "repeatfirst", "hippo-history",
     "framestack", "final"),
    ("Partial observability, a cue seen at the start (MiniGrid `MemoryS7`)", "memoryS7", "hippo-history",
     "framestack", "final"),
    ("Delayed reward, no goal to relabel (`MountainCar-v0`)", "mountaincar", "hippo-value", "nstep", "steps"),
    ("… against plain uniform replay (`MountainCar-v0`)", "mountaincar", "hippo-value", "uniform", "steps"),
    ("Partial observability, against a recurrent policy (popgym `RepeatFirstEasy`)", "repeatfirst", "hippo-history",
     "recurrent-ppo", "final"),
    ("Partial observability, against a recurrent policy (MiniGrid `MemoryS7`)", "memoryS7", "hippo-history",
     "recurrent-ppo", "final"),
)


def _verdict(kind: str, est: dict[str, Any], baseline: str) -> str:
    if kind == "steps":
        if est["ci_high"] < 1:
            return "**Yes**: reaches the threshold sooner"
        if est["ci_low"] > 1:
            return f"**No**: `{baseline}` reaches it sooner"
        return "No difference detected"
    if est["ci_low"] > 0:
        return "**Yes**: higher final score"
    if est["ci_high"] < 0:
        return f"**No**: `{baseline}` scores higher"
    return "No difference detected"


def when_to_use(data: dict[str, Any]) -> str:
    """The README's "When to use it" table, from the confirmatory runs where they exist, else the pilot."""
    lines = ["| situation | hippogym arm vs baseline | runs | hippogym | baseline | estimate [95% CI] | verdict |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    plans = planned_seeds(data.get("pilot", {}))

    def usable(stage: str, env: str, arm: str, baseline: str) -> bool:
        arms = data.get(stage, {}).get(env, {})
        if arm not in arms or baseline not in arms:
            return False
        # Confirmatory runs count once all the planned seeds have run; until then the pilot speaks.
        return stage != "confirmatory" or not _short_of_plan(arms, arm, baseline, plans.get(env))

    for situation, env, arm, baseline, kind in USE_CASES:
        stage = next((st for st in ("confirmatory", "pilot") if usable(st, env, arm, baseline)), None)
        if stage is None:
            lines.append(f"| {situation} | `{arm}` vs `{baseline}` | not run yet | | | | not measured |")
            continue
        a, b = data[stage][env][arm], data[stage][env][baseline]
        est = median_ratio(a, b) if kind == "steps" else final_difference(a, b)
        if kind == "steps":
            cells = [_fmt_steps(est["a"]), _fmt_steps(est["b"]), f"ratio {_fmt_ratio_estimate(est)}"]
        else:
            # Success rates and small returns (popgym's lie in [-1, 1]) with 2 decimals, larger returns whole.
            digits = 2 if a[0]["metric"] == "eval_success" or max(abs(est["a"]), abs(est["b"])) < 10 else 0
            cells = [f"{est['a']:.{digits}f}", f"{est['b']:.{digits}f}",
                     f"Δ {est['value']:+.{digits}f} [{est['ci_low']:+.{digits}f}, {est['ci_high']:+.{digits}f}]"]
        runs = f"{len(a)} / {len(b)}, {stage}" + (" (exploratory)" if stage == "pilot" else "")
        lines.append(f"| {situation} | `{arm}` vs `{baseline}` | {runs} | " + " | ".join(cells)
                     + f" | {_verdict(kind, est, baseline)} |")
    return "\n".join(lines)


PLOTS = ROOT / "docs" / "evidence" / "plots"


def _curve_band(runs: list[dict[str, Any]], metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Evaluation steps, the mean over runs and its 95% bootstrap band (runs resampled), per step."""
    length = min(len(r["curve"]) for r in runs)
    steps = np.array([row["step"] for row in runs[0]["curve"][:length]], dtype=np.float64)
    values = np.array([[row.get(metric, np.nan) for row in r["curve"][:length]] for r in runs], dtype=np.float64)
    rng = np.random.default_rng(0)
    boots = values[rng.integers(0, len(runs), (1_000, len(runs)))].mean(axis=1)
    lo, hi = np.percentile(boots, [2.5, 97.5], axis=0)
    return steps, values.mean(axis=0), lo, hi


def plot(data: dict[str, Any], out: Path = PLOTS) -> list[Path]:
    """Per stage and environment: learning curves with 95% bands, Kaplan–Meier curves of steps to the
    threshold (where there is one) and the performance profile of the final metric. Returns the files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import ecdf

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for stage, envs in data.items():
        for env, arms in sorted(envs.items()):
            first = next(iter(arms.values()))[0]
            metric, threshold = first["metric"], first["threshold"]
            panels = 3 if threshold is not None else 2
            fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 3.6))
            for arm in sorted(arms):
                runs = [r for r in arms[arm] if isinstance(r.get("curve"), list) and r["curve"]]
                if not runs:
                    continue
                steps, mean, lo, hi = _curve_band(runs, metric)
                (line,) = axes[0].plot(steps, mean, label=f"{arm} (n={len(runs)})")
                axes[0].fill_between(steps, lo, hi, color=line.get_color(), alpha=0.2)
                finals = np.sort([float(r["final"]) for r in runs])
                grid = np.linspace(min(finals.min(), 0.0), max(finals.max(), 1e-9), 200)
                axes[1].plot(grid, [(finals > t).mean() for t in grid], color=line.get_color())
                if threshold is not None:
                    if any(reached_at(r) is not None for r in runs):
                        sf = ecdf(censored_steps(runs)).sf
                        axes[2].step(np.r_[0.0, sf.quantiles], np.r_[1.0, sf.probabilities], where="post",
                                     color=line.get_color())
                    else:
                        axes[2].plot([0, first["budget"]], [1, 1], color=line.get_color(), linestyle=":")
            label = metric.replace("eval_", "")
            axes[0].set(title=f"{env} ({stage}): mean {label}, 95% band", xlabel="env steps", ylabel=label)
            axes[1].set(title="performance profile", xlabel=f"final {label} τ", ylabel="fraction of runs > τ")
            if threshold is not None:
                axes[2].set(title=f"runs not yet at {threshold:g} (Kaplan–Meier)", xlabel="env steps",
                            ylabel="fraction")
            axes[0].legend(fontsize=7)
            fig.tight_layout()
            path = out / f"{stage}_{env}.png"
            fig.savefig(path, dpi=90, metadata={"Software": None})
            plt.close(fig)
            written.append(path)
    return written


def splice(page: str, body: str) -> str:
    """``page`` with the text between the markers replaced by ``body``."""
    return splice_markers(page, body + "\n", BEGIN, END)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"rewrite the tables in {PAGE.relative_to(ROOT)}")
    parser.add_argument("--plots", action="store_true", help=f"draw the plots into {PLOTS.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    data = load()
    if args.plots:
        plot(data)
    body, use = tables(data), when_to_use(data)
    if args.write:
        PAGE.write_text(splice(PAGE.read_text(encoding="utf-8"), body), encoding="utf-8")
        README.write_text(splice_markers(README.read_text(encoding="utf-8"), use + "\n", USE_BEGIN, USE_END),
                          encoding="utf-8")
    else:
        print(body + "\n\n" + use)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
