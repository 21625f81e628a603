"""docs/benchmarks.md's speed table is what benchmarks/speed_report.py prints from the committed runs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _report():
    spec = importlib.util.spec_from_file_location("speed_report", ROOT / "benchmarks" / "speed_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_speed_table_is_regenerated_from_the_committed_runs():
    report = _report()
    page = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    assert report.splice(page, report.tables(report.load_runs())) == page


def test_the_committed_runs_hold_every_figure():
    runs = _report().load_runs()
    sizes = {(r["size"], r["refresh"]) for r in runs["consolidation_small"]["rows"] + runs["consolidation_1m"]["rows"]}
    assert {(1_000_000, "auto"), (1_000_000, "full"), (100_000, "auto")} <= sizes
    assert {r["size"] for r in runs["per"]["rows"]} == {100_000, 1_000_000}
    assert {r["size"] for r in runs["persist"]["rows"]} == {100_000, 1_000_000}
    for row in runs["per"]["rows"]:
        assert row["ratio_vs_cpprb"] == round(row["cpprb_us"] / row["hippogym_us"], 2)
