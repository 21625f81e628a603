"""Rebuild an experiment's summary (and plot) from the per-seed JSON files it wrote.

Useful to recompute figures with another definition, to merge runs done in pieces (several
``--out`` folders), or to regenerate the plots under ``docs/img/``::

    python benchmarks/rl/report.py runs/rl/corridor --metrics final_success,steps_to_90_censored \
        --plot eval_success --png docs/img/corridor_success.png

``steps_to_90`` / ``steps_to_90_censored`` / ``reached_90`` are recomputed from the curves with
the "reached and held" rule (:func:`common.first_sustained_step`); ``successes_in_replay`` and
``retained_share`` (successes still in the replay at the end / successes collected) are added for
runs that collected any success.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.rl import common


def load(folders: list[str], threshold: float = 0.9) -> list[dict[str, Any]]:
    results = []
    for folder in folders:
        for path in sorted(Path(folder).rglob("seed*.json")):
            r = json.loads(path.read_text())
            curve = r.get("curve") or []
            if curve and "eval_success" in curve[0] and "steps_to_90" in r:
                reached = common.first_sustained_step(curve, "eval_success", threshold)
                r["steps_to_90"] = reached
                r["steps_to_90_censored"] = reached if reached is not None else int(r["steps"])
                r["reached_90"] = float(reached is not None)
            if r.get("experiment") == "curriculum" and "retention_after" not in r and curve:
                from benchmarks.rl.curriculum import retention_after

                level = int(r["final_level"])
                start = 0 if level == 0 else r.get(f"steps_to_level_{level}") or 0
                r["retention_after"] = retention_after(curve, r["lengths"], level, start)
            # Successes still held by the replay at the end (hippogym: units with return > 0; SB3's
            # uniform buffer: rewarding transitions, one per successful episode), and their share
            # of the successes collected in training.
            held = r.get("memory_success_units", r.get("sb3_replay_successes"))
            if held is not None and r.get("train_successes"):
                r["successes_in_replay"] = held
                r["retained_share"] = held / r["train_successes"]
            results.append(r)

    def order(r: dict[str, Any]) -> tuple[Any, ...]:
        g = r.get("group", "")
        return (0, float(g), "") if isinstance(g, (int, float)) else (1, 0.0, str(g))

    return sorted(results, key=order)  # stable: seeds and arms keep their file order


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--metrics", default="final_success,auc_success,steps_to_90_censored,reached_90,train_s")
    parser.add_argument("--baseline", default="uniform")
    parser.add_argument("--out", default=None, help="where summary.json/md go (default: the first folder)")
    parser.add_argument("--plot", default=None, help="curve key to plot (e.g. eval_success)")
    parser.add_argument("--png", default=None)
    parser.add_argument("--title", default="")
    parser.add_argument("--panels", default="group", help="'group' (one panel per group) or 'none'")
    parser.add_argument("--digits", type=int, default=2)
    parser.add_argument("--group-label", default="", help="prefix of panel titles, e.g. 'length '")
    parser.add_argument("--ylabel", default=None)
    args = parser.parse_args(argv)
    results = load(args.folders)
    metrics = common.parse_list(args.metrics, str)
    summary = common.summarize(results, metrics, baseline=args.baseline,
                               extra={"rebuilt_from": args.folders, "command": " ".join(sys.argv)})
    out = Path(args.out or args.folders[0])
    common.finish(out, args.title or "Summary", summary, metrics, digits=args.digits)
    if args.plot:
        png = Path(args.png or out / f"{args.plot}.png")
        common.plot_curves(results, args.plot, png, args.title, args.ylabel or args.plot.replace("_", " "),
                           panels=None if args.panels == "none" else args.panels, group_label=args.group_label)
    return summary


if __name__ == "__main__":
    main()
