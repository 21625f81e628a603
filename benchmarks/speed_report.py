"""The speed table of consolidation, prioritised draws and persistence, from their committed runs.

``docs/benchmarks.md`` carries this table between ``<!-- speed-tables:begin -->`` and
``<!-- speed-tables:end -->``. It is built from the runs committed under ``docs/benchmarks/``
(``consolidation_small.json`` and ``consolidation_1m.json`` from ``bench_consolidation.py``,
``per.json`` from ``bench_per.py``, ``persist.json`` from ``bench_persist.py``), and a test checks
that the page equals what this script prints.

Usage::

    python benchmarks/speed_report.py            # prints the table
    python benchmarks/speed_report.py --write    # rewrites it in docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.retrieval_report import splice_markers  # noqa: E402 - the docs' one marker splice

RUNS = ROOT / "docs" / "benchmarks"
BEGIN, END = "<!-- speed-tables:begin -->", "<!-- speed-tables:end -->"


def _size(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1_000}k"


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def load_runs(root: Path = RUNS) -> dict[str, Any]:
    """The committed runs the table is built from."""
    names = ("consolidation_small", "consolidation_1m", "per", "persist")
    return {name: json.loads((root / f"{name}.json").read_text(encoding="utf-8")) for name in names}


def tables(runs: dict[str, Any]) -> str:
    """The markdown table (one row per figure, with its bar and whether it is met)."""
    lines = [
        "| What the user calls | Size | hippogym | Peer | Ratio | Bar | Met |",
        "| --- | --- | ---: | ---: | ---: | --- | :---: |",
    ]
    rows = runs["consolidation_small"]["rows"] + runs["consolidation_1m"]["rows"]
    by = {(r["size"], r["refresh"]): r for r in rows}
    for size in sorted({r["size"] for r in rows}):
        auto, full = by.get((size, "auto")), by.get((size, "full"))
        if auto is None:
            continue
        peer = f"{full['total_s']:.2f} s (full refresh)" if full else "—"
        ratio = f"{full['total_s'] / auto['total_s']:.1f}" if full else "—"
        bar = "< 0.5 s at 1M" if size >= 1_000_000 else "—"
        met = _met(auto["total_s"] < 0.5) if size >= 1_000_000 else "—"
        lines.append(
            f"| `consolidate(50, 64)` + next fresh-query `sample(256)`; {auto['keys_refreshed']:,} keys "
            f"re-encoded, {auto['stale_fraction_after']:.0%} stale after {auto['repeats']} calls "
            f"| {_size(size)} | {auto['total_s']:.2f} s | {peer} | {ratio} | {bar} | {met} |"
        )
    for row in runs["per"]["rows"]:
        bar = "≥ 1.0 × cpprb" if row["size"] == 100_000 else "—"
        met = _met(row["ratio_vs_cpprb"] >= 1.0) if row["size"] == 100_000 else "—"
        lines.append(
            f"| prioritised `sample(256)` + `update_priorities` | {_size(row['size'])} | {row['hippogym_us']:.0f} µs "
            f"| {row['cpprb_us']:.0f} µs (cpprb) | {row['ratio_vs_cpprb']:.2f} | {bar} | {met} |"
        )
    for row in runs["persist"]["rows"]:
        size = _size(row["size"])
        # Runs that also record the fastest repeat of each side show it beside the median ratio.
        fastest_load = f" (fastest: {row['load_ratio_min']:.2f})" if "load_ratio_min" in row else ""
        fastest_save = f" (fastest: {row['save_ratio_min']:.2f})" if "save_ratio_min" in row else ""
        # Runs that time the unavoidable parts show the best ratio those parts allow (the floor).
        load_bar = f"≥ 0.7; floor {row['load_floor_ratio']:.2f}" if "load_floor_ratio" in row else "≥ 0.7"
        save_bar = f"≥ 0.7; floor {row['save_floor_ratio']:.2f}" if "save_floor_ratio" in row else "≥ 0.7"
        lines.append(
            f"| `HippocampalReplayBuffer.load` (XXH3-128 of every file) | {size} | {row['load_s']:.2f} s "
            f"| {row['raw_read_s']:.2f} s (raw readers) | {row['load_ratio']:.2f}{fastest_load} | {load_bar} "
            f"| {_met(row['load_ratio'] >= 0.7)} |"
        )
        lines.append(
            f"| `HippocampalReplayBuffer.load(verify=\"size\")` | {size} | {row['load_size_s']:.2f} s "
            f"| {row['raw_read_s']:.2f} s (raw readers) | {row['load_size_ratio']:.2f} | — | — |"
        )
        lines.append(
            f"| `buffer.save` (SHA-256 + XXH3-128, fsync) | {size} | {row['save_s']:.2f} s "
            f"| {row['raw_write_s']:.2f} s (raw writers, fsync) | {row['save_ratio']:.2f}{fastest_save} | {save_bar} "
            f"| {_met(row['save_ratio'] >= 0.7)} |"
        )
    lines.append("")
    lines.append("Ratio = peer time / hippogym time (above 1: hippogym is faster).")
    return "\n".join(lines)


def splice(page: str, table: str) -> str:
    """``page`` with the text between the markers replaced by ``table``."""
    return splice_markers(page, table + "\n", BEGIN, END)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the table in docs/benchmarks.md")
    args = parser.parse_args(argv)
    table = tables(load_runs())
    if args.write:
        page_path = ROOT / "docs" / "benchmarks.md"
        page_path.write_text(splice(page_path.read_text(encoding="utf-8"), table), encoding="utf-8")
    else:
        print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
