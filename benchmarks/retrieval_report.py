"""Markdown tables of the retrieval figures of a ``bench_memory.py`` JSON output.

``docs/benchmarks.md`` carries these tables between the markers
``<!-- retrieval-tables:begin -->`` and ``<!-- retrieval-tables:end -->``; the run they come from is
committed as ``docs/benchmarks/memory_retrieval.json`` and a test checks that the page equals what
this script prints from it.

Usage::

    python benchmarks/bench_memory.py --sizes 10000,100000,1000000 --retrieval-only > run.json
    python benchmarks/retrieval_report.py run.json            # prints the tables
    python benchmarks/retrieval_report.py run.json --write    # rewrites them in docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

BEGIN, END = "<!-- retrieval-tables:begin -->", "<!-- retrieval-tables:end -->"
PATHS = (
    ("default", "default: `TransitionIndex`"),
    ("centroid", "former default: centroids + re-rank"),
    ("faiss-centroid", "`FaissIndex` (centroids)"),
    ("exact", "exact brute force"),
)


def _size(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1_000}k"


def tables(result: dict[str, Any]) -> str:
    """The markdown of the recall table and the hybrid-sampling ratios."""
    figures = {f["name"]: f for f in result["figures"]}
    sizes = sorted(int(s) for s in result["details"]["sizes"])
    lines = [
        "| keys | size | path | recall@1 stored / random | recall@5 stored / random | µs per search |",
        "| --- | --- | --- | --- | --- | ---: |",
    ]
    for size in sizes:
        for key_set in ("random-walk", "cartpole", "cartpole-consolidated"):
            fig = figures.get(f"retrieval[{key_set}]@{size}")
            if fig is None:
                continue
            for key, label in PATHS:
                row = fig.get(key)
                if row is None:
                    continue
                mode = f" ({row['mode']})" if "mode" in row else ""
                r1 = f"{row['stored']['recall@1']:.2f} / {row['random']['recall@1']:.2f}"
                r5 = f"{row['stored']['recall@5']:.2f} / {row['random']['recall@5']:.2f}"
                us = (row["stored"]["search_us"] + row["random"]["search_us"]) / 2
                lines.append(f"| {key_set} | {_size(size)} | {label}{mode} | {r1} | {r5} | {us:.0f} |")
    lines += [
        "",
        "| hybrid `sample(256)`, mixture 0.5, top_k 5 | size | hippogym µs | SB3 µs | ratio | bar | met |",
        "| --- | --- | ---: | ---: | ---: | ---: | :---: |",
    ]
    for size in sizes:
        for query in ("fresh", "repeated"):
            fig = figures.get(f"hybrid_sample[default,{query}_query]@{size}")
            if fig is None:
                continue
            bar = "—" if fig["bar"] is None else f"{fig['bar']:.2f}"
            met = "—" if fig["met"] is None else ("yes" if fig["met"] else "**no**")
            lines.append(
                f"| {query} query ({fig['index']}) | {_size(size)} | {fig['hippogym_us']:.0f} | {fig['sb3_us']:.0f} "
                f"| {fig['ratio']:.2f} | {bar} | {met} |"
            )
    return "\n".join(lines) + "\n"


def splice_markers(page: str, body: str, begin: str, end: str) -> str:
    """``page`` with the text between the lines ``begin`` and ``end`` replaced by ``body``.

    Every generated table of the docs lives between such markers (this script's, and those of
    ``speed_report.py`` and ``rl/evidence_report.py``). ``body`` is written as given, so it ends
    with its own newline.

    Raises:
        ValueError: ``page`` does not hold both markers.
    """
    if begin not in page or end not in page.split(begin, 1)[1]:
        raise ValueError(f"markers {begin} ... {end} not found")
    head, rest = page.split(begin, 1)
    return f"{head}{begin}\n{body}{end}{rest.split(end, 1)[1]}"


def splice(page: str, body: str) -> str:
    """``page`` with the retrieval tables replaced by ``body``."""
    return splice_markers(page, body, BEGIN, END)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="bench_memory.py JSON output")
    parser.add_argument("--write", action="store_true", help="rewrite the tables in docs/benchmarks.md")
    args = parser.parse_args(argv)
    body = tables(json.loads(args.run.read_text(encoding="utf-8")))
    if args.write:
        page = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
        page.write_text(splice(page.read_text(encoding="utf-8"), body), encoding="utf-8")
    else:
        sys.stdout.write(body)


if __name__ == "__main__":
    main()
