"""Human-oriented summaries of a memory (the CLI prints :func:`format_summary`)."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from hippo_format.errors import FormatError
from hippo_format.reader import MemoryReader, open_memory

__all__ = ["format_summary", "summarize"]


def _stats(values: np.ndarray) -> dict[str, float] | None:
    if len(values) == 0:
        return None
    values = np.asarray(values, dtype=np.float64)
    return {"min": float(values.min()), "mean": float(values.mean()), "max": float(values.max())}


def summarize(path_or_reader: str | os.PathLike[str] | MemoryReader, *, verify: bool = True) -> dict[str, Any]:
    """Collect the facts a person wants to see about a memory.

    Args:
        path_or_reader: A memory directory or an open :class:`MemoryReader`.
        verify: Run a full verification (XXH3-128 or SHA-256 of every file, every column
            decoded) and report the outcome in ``checksums_ok``.

    Returns:
        A JSON-compatible dict: ``path``, ``format_version``,
        ``format_version_on_disk``, ``producer``, ``created``, ``counts``,
        ``columns`` (dtype and per-row shape), ``embed_dim``, ``spaces``,
        ``encoder``, ``segmenter``, ``sampling``, ``provenance``, ``episodes``
        (return and length min/mean/max, success rate over episodes whose
        outcome is known), ``tensors`` (per file: name -> dtype and shape),
        ``files`` (name -> bytes), ``total_bytes``, ``compression``,
        ``checksums_ok`` (``None`` when not verified) and ``verify_error``.

    Raises:
        FormatError: If the memory cannot be opened at all.
    """
    # NaN/inf are reported through verification (checksums_ok), not raised while collecting facts.
    reader = (
        path_or_reader if isinstance(path_or_reader, MemoryReader) else open_memory(path_or_reader, check_finite=False)
    )
    manifest = reader.manifest
    episodes = reader.episodes(check_finite=False)
    success = np.asarray(episodes["success"])
    known = success[success >= 0]
    checksums_ok: bool | None = None
    verify_error: str | None = None
    if verify:
        try:
            reader.verify(full=True)
            checksums_ok = True
        except FormatError as exc:
            checksums_ok = False
            verify_error = f"{type(exc).__name__}: {exc}"
    files = {name: entry["bytes"] for name, entry in sorted(manifest["files"].items())}
    columns = {}
    for name in reader.column_names:
        dtype, shape = reader.column_spec(name)
        columns[name] = {"dtype": dtype.name, "shape": list(shape)}
    tensors: dict[str, dict[str, Any]] = {}
    for stem in reader.tensor_files:
        tensors[stem] = {}
        for name in reader.tensor_names(stem):
            tag, shape = reader.tensor_spec(stem, name)
            tensors[stem][name] = {"dtype": tag, "shape": list(shape)}
    return {
        "path": str(reader.path),
        "format_version": manifest["format_version"],
        "format_version_on_disk": reader.format_version_on_disk,
        "producer": manifest.get("producer"),
        "created": manifest.get("created"),
        "counts": {"transitions": reader.num_transitions, "episodes": reader.num_episodes},
        "columns": columns,
        "embed_dim": manifest.get("embed_dim"),
        "spaces": manifest.get("spaces"),
        "encoder": manifest.get("encoder"),
        "segmenter": manifest.get("segmenter"),
        "sampling": manifest.get("sampling"),
        "provenance": manifest.get("provenance"),
        "episodes": {
            "return": _stats(episodes["return"]),
            "length": _stats(episodes["length"]),
            "success_rate": float(known.mean()) if len(known) else None,
            "success_known": int(len(known)),
        },
        "tensors": tensors,
        "files": files,
        "total_bytes": int(sum(files.values())),
        "compression": manifest.get("compression"),
        "checksums_ok": checksums_ok,
        "verify_error": verify_error,
    }


def _describe_space(space: Any) -> str:
    if not isinstance(space, dict):
        return json.dumps(space)[:120]
    kind = space.get("type")
    if kind == "Box":
        return f"Box({space.get('dtype')}, shape={space.get('shape')})"
    if kind == "Discrete":
        start = space.get("start", 0)
        return f"Discrete({space.get('n')}" + (f", start={start})" if start else ")")
    if kind == "MultiDiscrete":
        return f"MultiDiscrete({space.get('nvec')})"
    if kind == "MultiBinary":
        return f"MultiBinary({space.get('n')})"
    if kind == "Dict":
        members = space.get("spaces") or {}
        return "Dict(" + ", ".join(f"{k}: {_describe_space(v)}" for k, v in members.items()) + ")"
    if kind == "Tuple":
        return "Tuple(" + ", ".join(_describe_space(v) for v in space.get("spaces") or []) + ")"
    return json.dumps(space)[:120]


def _human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def _fmt_stats(stats: dict[str, float] | None) -> str:
    if not stats:
        return "n/a"
    return f"min {stats['min']:.4g}  mean {stats['mean']:.4g}  max {stats['max']:.4g}"


def format_summary(summary: dict[str, Any]) -> str:
    """Render :func:`summarize` output as aligned plain text.

    Args:
        summary: The dict from :func:`summarize`.

    Returns:
        Multi-line text (no trailing newline).
    """
    lines = [f"memory        {summary['path']}"]
    version = summary["format_version"]
    on_disk = summary.get("format_version_on_disk", version)
    lines.append(f"format        hippo-memory v{on_disk}" + (f" (read as v{version})" if on_disk != version else ""))
    producer = summary.get("producer") or {}
    lines.append(f"producer      {producer.get('name')} {producer.get('version')}, created {summary.get('created')}")
    counts = summary["counts"]
    lines.append(f"transitions   {counts['transitions']:,}")
    lines.append(f"episodes      {counts['episodes']:,}")
    ep = summary["episodes"]
    lines.append(f"  return      {_fmt_stats(ep['return'])}")
    lines.append(f"  length      {_fmt_stats(ep['length'])}")
    rate = ep["success_rate"]
    lines.append(
        "  success     "
        + (f"{rate:.1%} of {ep['success_known']} with known outcome" if rate is not None else "unknown")
    )
    if summary.get("embed_dim") is not None:
        lines.append(f"embed_dim     {summary['embed_dim']}")
    spaces = summary.get("spaces") or {}
    for key, value in spaces.items():
        lines.append(f"{key:<13} {_describe_space(value)}")
    for section in ("encoder", "segmenter", "sampling", "provenance"):
        value = summary.get(section)
        if value:
            text = json.dumps(value, sort_keys=True, separators=(", ", ": "))
            lines.append(f"{section:<13} {text if len(text) <= 160 else text[:157] + '...'}")
    lines.append("columns")
    for name, spec in summary["columns"].items():
        lines.append(f"  {name:<24} {spec['dtype']}{spec['shape']}")
    if summary.get("tensors"):
        lines.append("tensors")
        for stem, entries in summary["tensors"].items():
            for name, spec in entries.items():
                lines.append(f"  {stem}/{name:<20} {spec['dtype']}{spec['shape']}")
    lines.append(
        f"files         {len(summary['files'])} files, {_human_bytes(summary['total_bytes'])}"
        + (f", Arrow compression {summary['compression']}" if summary.get("compression") else "")
    )
    for name, size in summary["files"].items():
        lines.append(f"  {name:<24} {_human_bytes(size)}")
    ok = summary.get("checksums_ok")
    if ok is None:
        lines.append("checksums     not verified")
    elif ok:
        lines.append("checksums     OK (SHA-256 of every file, all columns decoded)")
    else:
        lines.append(f"checksums     FAILED: {summary.get('verify_error')}")
    return "\n".join(lines)
