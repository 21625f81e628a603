"""docs/benchmarks.md's retrieval tables are what benchmarks/retrieval_report.py prints from the committed run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _report():
    spec = importlib.util.spec_from_file_location("retrieval_report", ROOT / "benchmarks" / "retrieval_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_tables_are_regenerated_from_the_committed_run():
    report = _report()
    run = json.loads((ROOT / "docs" / "benchmarks" / "memory_retrieval.json").read_text(encoding="utf-8"))
    page = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    assert report.splice(page, report.tables(run)) == page


def test_the_committed_run_holds_every_key_set_and_path_at_every_size():
    run = json.loads((ROOT / "docs" / "benchmarks" / "memory_retrieval.json").read_text(encoding="utf-8"))
    names = {f["name"]: f for f in run["figures"]}
    for size in (10_000, 100_000, 1_000_000):
        for key_set in ("random-walk", "cartpole", "cartpole-consolidated"):
            fig = names[f"retrieval[{key_set}]@{size}"]
            for path in ("default", "centroid", "exact"):
                assert set(fig[path]["stored"]) == {"recall@1", "recall@5", "search_us"}
        assert f"hybrid_sample[default,fresh_query]@{size}" in names


def test_recall_table_runs_on_a_small_cartpole_memory():
    import logging

    spec = importlib.util.spec_from_file_location("retrieval_recall", ROOT / "benchmarks" / "retrieval_recall.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    buffer = module.cartpole_buffer(1_500, 32, 0)
    sets = module.recall_table(buffer, 1_500, 8, 0, True, 32, logging.getLogger("test"))
    assert set(sets) == {"random-walk", "cartpole", "cartpole-consolidated"}
    for res in sets.values():
        assert res["exact"]["stored"]["recall@5"] == 1.0  # the reference agrees with itself
        assert res["default"]["stored"]["recall@1"] == 1.0  # below exact_below: the exact path
        assert res["default"]["mode"] == "exact"
