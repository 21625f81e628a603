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
    python benchmarks/rl/evidence_report.py --write    # rewrites them in docs/evidence/results.md
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
BEGIN, END = "<!-- evidence-tables:begin -->", "<!-- evidence-tables:end -->"
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


def km_median(runs: list[dict[str, Any]]) -> float | None:
    """Kaplan–Meier median of steps-to-threshold (right-censored at the budget); ``None`` if not reached."""
    from scipy.stats import CensoredData, ecdf

    reached = [float(r["steps_to_threshold"]) for r in runs if r["steps_to_threshold"] is not None]
    censored = [float(r["steps"]) for r in runs if r["steps_to_threshold"] is None]
    if not reached:
        return None
    sf = ecdf(CensoredData(uncensored=reached, right=censored)).sf
    below = np.flatnonzero(sf.probabilities <= 0.5)
    return float(sf.quantiles[below[0]]) if below.size else None


def _ci(entry: dict[str, Any], digits: int) -> str:
    return f"{entry['value']:.{digits}f} [{entry['ci_low']:.{digits}f}, {entry['ci_high']:.{digits}f}]"


def env_table(env: str, arms: dict[str, list[dict[str, Any]]]) -> str:
    """One environment's table."""
    first = next(iter(arms.values()))[0]
    metric, threshold = first["metric"], first["threshold"]
    digits = 2 if metric == "eval_success" else 1
    head = f"**{env}**: final {metric.replace('eval_', '')}"
    if threshold is not None:
        head += f", threshold {threshold:g}"
    lines = [head, ""]
    cols = ["arm", "seeds", "final IQM [95% CI]", "final mean [95% CI]"]
    if threshold is not None:
        cols += ["KM median steps to threshold", "reached"]
    cols += [f"P(arm > {REFERENCE}) [95% CI]"]
    lines += ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    ref = [r["final"] for r in arms.get(REFERENCE, [])]
    for arm in sorted(arms, key=lambda a: (a != REFERENCE, a)):
        runs = arms[arm]
        finals = [float(r["final"]) for r in runs]
        row = [f"`{arm}`", str(len(runs)),
               _ci(stats.stratified_bootstrap_ci({env: finals}), digits),
               _ci(stats.stratified_bootstrap_ci({env: finals}, statistic=np.mean), digits)]
        if threshold is not None:
            median = km_median(runs)
            reached = sum(r["steps_to_threshold"] is not None for r in runs)
            row += ["not reached" if median is None else f"{median:,.0f}", f"{reached}/{len(runs)}"]
        if arm == REFERENCE or not ref:
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
    return "\n\n".join(parts)


def best_baseline(arms: dict[str, list[dict[str, Any]]]) -> str:
    """The baseline arm that reached the threshold soonest in the pilot.

    Ranked by Kaplan–Meier median steps (not reached ranks last), then by how many runs reached
    the threshold, then by the mean area under the curve.
    """
    def rank(arm: str) -> tuple[float, int, float]:
        runs = arms[arm]
        median = km_median(runs)
        reached = sum(r["steps_to_threshold"] is not None for r in runs)
        return (np.inf if median is None else median, -reached, -float(np.mean([r["auc"] for r in runs])))

    baselines = [a for a in arms if a not in HIPPO_ARMS]
    if not baselines:
        raise ValueError(f"Expected a baseline arm among {sorted(arms)}, got none")
    return min(sorted(baselines), key=rank)


def _log_steps(runs: list[dict[str, Any]]) -> np.ndarray:
    """log steps-to-threshold, a censored run entering at its budget (so its spread is a lower bound)."""
    return np.log([float(r["steps_to_threshold"] if r["steps_to_threshold"] is not None else r["steps"])
                   for r in runs])


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


def splice(page: str, body: str) -> str:
    """``page`` with the text between the markers replaced by ``body``."""
    return splice_markers(page, body + "\n", BEGIN, END)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"rewrite the tables in {PAGE.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    body = tables(load())
    if args.write:
        PAGE.write_text(splice(PAGE.read_text(encoding="utf-8"), body), encoding="utf-8")
    else:
        print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
