"""The ``hippogym`` command line (also ``python -m hippogym``).

Subcommands::

    hippogym demo    [--steps N] [--out DIR] [--seed S]          record, consolidate, save, retrieve
    hippogym inspect PATH [--json] [--no-verify] [--all]         summarise a saved memory
    hippogym convert DATASET_ID OUT [--segmenter SPEC] ...       Minari dataset -> saved memory
    hippogym push    PATH REPO_ID [--private] [--token T] ...    saved memory -> Hugging Face Hub
    hippogym pull    REPO_ID OUT [--revision R] ...              Hub -> saved memory (verified)

Logging goes to stderr: warnings by default, progress with ``-v``, also the HTTP requests of the
Hub client with ``-vv``, everything with ``--debug``.
Exit codes: ``0`` success, ``1`` the command failed (bad data, missing file, network, ...),
``2`` bad usage (unknown option, malformed value), ``130`` interrupted. Errors are printed as one
``error: ...`` line on stderr; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hippogym.errors import CommandError, HippoError
from hippogym.types import DEFAULT_EMBED_DIM

__all__ = ["CommandError", "build_parser", "main"]

logger = logging.getLogger("hippogym.cli")


def _check_output_dir(path: Path) -> None:
    """Fail before any work when ``path`` cannot take a saved memory (saving replaces only a
    memory directory or an empty directory)."""
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink() or not path.is_dir():
        raise CommandError(f"{path}: exists and is not a directory; choose another output path")
    if not (path / "manifest.json").exists() and any(path.iterdir()):
        raise CommandError(f"{path}: exists, is not empty and is not a memory; remove it or choose another output path")


# --------------------------------------------------------------------------- argument types


def _int_at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value

    parse.__name__ = f"int>={low}"
    return parse


def _segmenter_spec(text: str) -> str:
    from hippogym.errors import ValidationError
    from hippogym.integrations.minari import make_segmenter

    try:
        make_segmenter(text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _dataset_id(text: str) -> str:
    from hippogym.errors import ValidationError
    from hippogym.integrations.minari import check_dataset_id

    try:
        return check_dataset_id(text)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# --------------------------------------------------------------------------- commands


def _cmd_demo(args: argparse.Namespace) -> int:
    from hippogym.demo import format_demo, run_demo

    if args.out is not None:
        _check_output_dir(Path(args.out))
    summary = run_demo(steps=args.steps, out=args.out, seed=args.seed, length=args.length,
                       consolidate_steps=args.consolidate, updates=args.updates, plot=not args.no_plot,
                       progress=not args.no_progress)
    print(json.dumps(summary, indent=2) if args.json else format_demo(summary))
    return 0


def _space_text(space: Any) -> str:
    """One line for a space as the manifest stores it (``hippo_format.space_to_json``), bounds included."""
    if not isinstance(space, dict):
        return json.dumps(space, default=str)
    kind = space.get("type")

    def bound(value: Any) -> str:
        if isinstance(value, list):
            flat = _flatten(value)
            if len(flat) <= 6:
                return json.dumps(value)
            return f"[{min(flat) + 0.0:g} .. {max(flat) + 0.0:g}] per element" if flat else "[]"
        return f"{value + 0.0:g}" if isinstance(value, (int, float)) else str(value)  # + 0.0: no "-0"

    if kind == "Box":
        shape = tuple(space.get("shape") or ())
        return f"Box({bound(space.get('low'))}, {bound(space.get('high'))}, shape={shape}, {space.get('dtype')})"
    if kind == "Discrete":
        start = space.get("start", 0)
        return f"Discrete({space.get('n')}" + (f", start={start}" if start else "") + ")"
    if kind == "MultiDiscrete":
        return f"MultiDiscrete({bound(space.get('nvec'))})"
    if kind == "MultiBinary":
        return f"MultiBinary({space.get('n')})"
    if kind == "Dict":
        parts = ", ".join(f"{k}: {_space_text(v)}" for k, v in (space.get("spaces") or {}).items())
        return f"Dict({parts})"
    return json.dumps(space, default=str)


def _flatten(value: Any) -> list[float]:
    if isinstance(value, list):
        return [x for v in value for x in _flatten(v)]
    return [float(value)] if isinstance(value, (int, float)) else []


def _is_internal(file_stem: str, name: str) -> bool:
    """Optimizer moments and RNG states: saved so training resumes exactly, of no use to read."""
    return file_stem == "state" and ("optimizer" in name or name.startswith("generator."))


def _settings(manifest: dict[str, Any], summary: dict[str, Any]) -> list[tuple[str, str]]:
    store = manifest.get("store") if isinstance(manifest.get("store"), dict) else {}
    config = store.get("config") or {}
    sampling = summary.get("sampling") or {}
    encoder = summary.get("encoder") or {}
    backbone = encoder.get("backbone") or {}
    consolidator = store.get("consolidator") or {}
    rows: list[tuple[str, Any]] = [
        ("capacity", f"{config['capacity']:,} transitions" if isinstance(config.get("capacity"), int) else None),
        ("keys", f"{summary.get('embed_dim')}-d, {config.get('key_dtype', 'float32')}" if summary.get("embed_dim") else None),
        ("encoder", ", ".join(f"{k} {v}" for k, v in (("backbone", backbone.get("type")), ("hidden", backbone.get("hidden")),
                                                      ("momentum", encoder.get("momentum"))) if v is not None) or None),
        ("eviction", (config.get("eviction") or {}).get("type")),
        ("index", (config.get("index") or {}).get("type")),
        ("segmenter", json.dumps(summary.get("segmenter")) if summary.get("segmenter") else None),
        ("sampling", ", ".join(
            f"{k} {' '.join(map(str, v.values())) if isinstance(v, dict) else v}" for k, v in sampling.items()
            if k in ("mixture_ratio", "top_k", "retrieval_temperature", "prioritized") and v is not None) or None),
        ("consolidation", ", ".join(f"{k} {v}" for k, v in consolidator.items()
                                    if k in ("lr", "temperature", "reward_weight", "refresh") and v is not None) or None),
        ("compression", summary.get("compression")),
    ]
    return [(k, str(v)) for k, v in rows if v is not None]


def _health(path: Path, manifest: dict[str, Any], summary: dict[str, Any], verified: bool) -> list[tuple[str, str]]:
    import numpy as np

    import hippo_format

    rows = []
    if not verified:
        rows.append(("checksums", "not verified (--no-verify)"))
    elif summary.get("checksums_ok"):
        rows.append(("checksums", "OK (digest of every file)"))
    else:
        rows.append(("checksums", f"FAILED: {summary.get('verify_error') or 'checksum mismatch'}"))
    store = manifest.get("store") if isinstance(manifest.get("store"), dict) else {}
    capacity = (store.get("config") or {}).get("capacity")
    transitions = (summary.get("counts") or {}).get("transitions", 0)
    if isinstance(capacity, int) and capacity > 0:
        rows.append(("fill", f"{transitions / capacity:.1%} of capacity"))
    steps = (store.get("consolidator_scalars") or {}).get("steps_done")
    if steps is not None:
        rows.append(("consolidated", f"{steps:,} steps" + (" (keys are the initial encoder's)" if steps == 0 else "")))
    tensors = summary.get("tensors") or {}
    if "key_version" in (tensors.get("keys") or {}) and "version" in (tensors.get("encoder") or {}):
        try:
            with hippo_format.open_memory(path, verify="none") as reader:
                versions = reader.tensor("keys", "key_version")
                current = int(reader.tensor("encoder", "version"))
        except (hippo_format.FormatError, OSError, ValueError, TypeError) as exc:
            rows.append(("key freshness", f"unreadable ({exc})"))
        else:
            if versions.size:
                fresh = float(np.mean(versions == current))
                rows.append(("key freshness", f"{fresh:.1%} of keys made by the current encoder (version {current})"))
    episodes = summary.get("episodes") or {}
    units = (summary.get("counts") or {}).get("episodes", 0)
    if units:
        rows.append(("outcomes", f"{episodes.get('success_known', 0):,} of {units:,} units have a known success"))
    return rows


def _format_inspect(path: Path, summary: dict[str, Any], manifest: dict[str, Any], *, show_all: bool, verified: bool) -> str:
    import hippo_format

    counts = summary.get("counts") or {}
    episodes = summary.get("episodes") or {}
    provenance = summary.get("provenance") or {}
    files = summary.get("files") or {}
    total = summary.get("total_bytes") or sum(files.values())
    producer = summary.get("producer") or {}
    lines = [
        f"memory        {path}",
        f"format        {hippo_format.FORMAT_NAME} v{summary.get('format_version_on_disk', summary.get('format_version'))}"
        + (f", written by {producer.get('name')} {producer.get('version')}" if producer else "")
        + (f" on {summary['created']}" if summary.get("created") else ""),
        f"size          {counts.get('transitions', 0):,} transitions in {counts.get('episodes', 0):,} units, "
        f"{total / 2**20:.1f} MiB in {len(files)} files",
    ]

    def stats(name: str) -> str | None:
        value = episodes.get(name)
        if not isinstance(value, dict):
            return None
        return "  ".join(f"{k} {value[k]:.4g}" for k in ("min", "mean", "max") if isinstance(value.get(k), (int, float)))

    lines.append("units")
    for label, key in (("length", "length"), ("return", "return")):
        text = stats(key)
        if text:
            lines.append(f"  {label:<12}{text}")
    rate = episodes.get("success_rate")
    lines.append(f"  {'success':<12}" + ("unknown" if rate is None else
                 f"{rate:.1%} of {episodes.get('success_known', 0):,} units with a known outcome"))
    returns = _returns_to_go(path, manifest)
    if returns:
        lines.append(f"  {'to go':<12}{returns}")
    lines.append(f"env           {provenance.get('env_id') or 'unknown'}")
    spaces = summary.get("spaces") or {}
    lines.append("spaces" + ("" if spaces else "        unknown (not recorded)"))
    for name, space in spaces.items():
        lines.append(f"  {name.removesuffix('_space'):<12}{_space_text(space)}")
    lines.append("provenance" + ("" if provenance else "    none"))
    width = max((len(k) for k in provenance), default=0)
    for key, value in provenance.items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        lines.append(f"  {key:<{max(width, 12)}}{text}")
    lines.append("settings")
    lines += [f"  {k:<14}{v}" for k, v in _settings(manifest, summary)]
    lines.append("health")
    lines += [f"  {k:<14}{v}" for k, v in _health(path, manifest, summary, verified)]
    lines.append("columns")
    for name, spec in (summary.get("columns") or {}).items():
        shape = spec.get("shape") or []
        lines.append(f"  {name:<24} {spec.get('dtype')}[{', '.join(map(str, shape))}]")
    lines.append("tensors")
    hidden = 0
    for stem, tensors in (summary.get("tensors") or {}).items():
        shown = {n: t for n, t in tensors.items() if show_all or not _is_internal(stem, n)}
        hidden += len(tensors) - len(shown)
        values = sum(int(_prod(t.get("shape") or [])) for t in tensors.values())
        lines.append(f"  {stem:<24} {len(tensors)} tensors, {values:,} values")
        if show_all or stem != "encoder":  # encoder layers: one line unless --all
            for name, t in shown.items():
                lines.append(f"    {name:<30} {t.get('dtype')}{list(t.get('shape') or [])}")
    if hidden:
        lines.append(f"  ({hidden} optimizer and RNG-state tensors hidden; --all lists them)")
    lines.append("files")
    for name, size in files.items():
        lines.append(f"  {name:<24} {size / 1024:.1f} KiB")
    return "\n".join(lines)


def _returns_to_go(path: Path, manifest: dict[str, Any]) -> str | None:
    """One line on the saved returns-to-go (``None`` when the memory predates them)."""
    import numpy as np

    import hippo_format

    section = manifest.get("returns")
    if not isinstance(section, dict):
        return None
    with hippo_format.open_memory(path, verify="none") as reader:
        if "return_to_go" not in reader.column_names:
            return None
        rtg = np.asarray(reader.column("return_to_go"), dtype=np.float64)
        complete = np.asarray(reader.column("return_complete"), dtype=bool) if "return_complete" in reader.column_names else None
    if rtg.size == 0:
        return None
    text = f"min {rtg.min():.4g}  mean {rtg.mean():.4g}  max {rtg.max():.4g}  (gamma {section.get('gamma')}"
    if complete is not None:
        text += f"; {complete.mean():.1%} of rows in terminated units, the rest partial"
    return text + ")"


def _prod(shape: list[int]) -> int:
    out = 1
    for n in shape:
        out *= int(n)
    return out


def _cmd_inspect(args: argparse.Namespace) -> int:
    import hippo_format

    path = Path(args.path)
    if not path.exists():
        raise CommandError(f"{path}: no such file or directory")
    summary = hippo_format.summarize(path, verify=not args.no_verify)
    with hippo_format.open_memory(path, verify="none") as reader:
        manifest = reader.manifest
    if args.json:
        if not args.all:
            state = (summary.get("tensors") or {}).get("state")
            if isinstance(state, dict):
                summary["tensors"]["state"] = {n: t for n, t in state.items() if not _is_internal("state", n)}
        summary["settings"] = dict(_settings(manifest, summary))
        summary["health"] = dict(_health(path, manifest, summary, not args.no_verify))
        summary["returns_to_go"] = _returns_to_go(path, manifest)
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(_format_inspect(path, summary, manifest, show_all=args.all, verified=not args.no_verify))
    if summary.get("checksums_ok") is False:
        raise CommandError(f"{path}: verification failed: {summary.get('verify_error') or 'checksum mismatch'}")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from hippogym.integrations.minari import memory_from_minari

    out = Path(args.out)
    _check_output_dir(out)
    buffer = memory_from_minari(
        args.dataset_id, segmenter=args.segmenter, capacity=args.capacity, embed_dim=args.embed_dim,
        consolidate_steps=args.consolidate, consolidate_batch_size=args.consolidate_batch_size,
        download=args.download, chunk_size=args.chunk_size, progress=not args.no_progress, seed=args.seed,
        info_keys=args.info_key,
    )
    path = buffer.save(out, compression=args.compression)
    prov = getattr(buffer, "provenance", {}) or {}
    print(
        f"converted {args.dataset_id}: {prov.get('episodes_converted', buffer.num_episodes):,} episodes, "
        f"{len(buffer):,} transitions in {buffer.num_episodes:,} units"
        + (f", consolidated {args.consolidate} steps" if args.consolidate else "")
        + f"\nsaved to {path}"
    )
    return 0


def _cmd_push(args: argparse.Namespace) -> int:
    from hippogym.integrations.hub import push_memory_to_hub

    path = Path(args.path)
    if not path.exists():
        raise CommandError(f"{path}: no such file or directory")
    commit = push_memory_to_hub(
        path, args.repo_id, private=args.private, token=args.token, revision=args.revision,
        commit_message=args.message, endpoint=args.endpoint, repo_type=args.repo_type, license=args.license,
    )
    url = getattr(commit, "commit_url", None)
    print(f"pushed {path} to {args.repo_id}" + (f"@{args.revision}" if args.revision else "")
          + f": commit {getattr(commit, 'oid', commit)}" + (f"\n{url}" if url else ""))
    return 0


def _cmd_pull(args: argparse.Namespace) -> int:
    import hippo_format
    from hippogym.integrations.hub import download_memory

    _check_output_dir(Path(args.out))  # refuse before anything is fetched (and before the Hub cache is touched)
    path = download_memory(args.repo_id, args.out, revision=args.revision, token=args.token,
                           endpoint=args.endpoint, force_download=args.force_download, repo_type=args.repo_type,
                           progress=True)
    counts = hippo_format.summarize(path, verify=False).get("counts", {})
    print(f"pulled {args.repo_id}" + (f"@{args.revision}" if args.revision else "")
          + f" to {path}: {counts.get('transitions', 0):,} transitions in {counts.get('episodes', 0):,} episodes")
    return 0


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The ``hippogym`` argument parser (subcommands ``demo``, ``inspect``, ``convert``, ``push``, ``pull``)."""
    from hippogym import __version__

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks and debug logging")
    common.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                        help="log progress (INFO) to stderr; -vv also logs the HTTP requests of the Hub client")

    parser = argparse.ArgumentParser(
        prog="hippogym", parents=[common],
        description="hippogym: a learnable episodic memory for reinforcement learning.",
        epilog="Run `hippogym COMMAND --help` for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"hippogym {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser(
        "demo", parents=[common], help="end-to-end run on a built-in env (no download)",
        description="Record a sparse-reward corridor into a memory, consolidate it, save and reload it, "
                    "show what retrieval surfaces, then train the same tabular learner on the memory with "
                    "and without its stored returns, and plot both comparisons.",
    )
    p.add_argument("--steps", type=_int_at_least(1), default=20_000, help="environment steps to record (default 20000)")
    p.add_argument("--out", metavar="DIR", help="where to save the memory (default: a new temporary directory)")
    p.add_argument("--seed", type=_int_at_least(0), default=0, help="random seed (default 0)")
    p.add_argument("--length", type=_int_at_least(3), default=14, help="corridor length in cells (default 14)")
    p.add_argument("--consolidate", type=_int_at_least(0), default=300, metavar="N",
                   help="consolidation steps (default 300)")
    p.add_argument("--updates", type=_int_at_least(1), default=40, metavar="N",
                   help="batches each learner is trained on (default 40)")
    p.add_argument("--no-plot", action="store_true", help="do not write the PNG beside the memory")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser(
        "inspect", parents=[common], help="summarise a saved memory",
        description="Print a summary of a saved memory (hippo_format directory): size, units, env id, spaces "
                    "with bounds, provenance, key settings and health (checksums, key freshness); every "
                    "file's checksum is verified. Optimizer and RNG-state tensors are listed with --all.",
    )
    p.add_argument("path", metavar="PATH", help="memory directory")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--no-verify", action="store_true", help="skip the full checksum verification")
    p.add_argument("--all", action="store_true", help="also list optimizer and RNG-state tensors and every encoder layer")
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser(
        "convert", parents=[common], help="convert a Minari dataset into a saved memory",
        description="Convert a local Minari dataset (MINARI_DATASETS_PATH, default ~/.minari/datasets) into a "
                    "hippogym memory and save it to OUT.",
    )
    p.add_argument("dataset_id", type=_dataset_id, metavar="DATASET_ID", help="Minari dataset id, e.g. D4RL/door/human-v2")
    p.add_argument("out", metavar="OUT", help="directory to save the memory to")
    p.add_argument("--segmenter", type=_segmenter_spec, default=None, metavar="SPEC",
                   help="terminal | window:N[:OVERLAP] | reward[:THRESH[:MIN_LENGTH]] "
                        "(default: one unit per Minari episode)")
    p.add_argument("--consolidate", type=_int_at_least(0), default=0, metavar="N",
                   help="consolidation steps after conversion (default 0)")
    p.add_argument("--consolidate-batch-size", type=_int_at_least(2), default=64, metavar="B")
    p.add_argument("--capacity", type=_int_at_least(1), default=None, metavar="N",
                   help="transitions the memory holds (default: the whole dataset)")
    p.add_argument("--embed-dim", type=_int_at_least(2), default=DEFAULT_EMBED_DIM, metavar="D", help=f"key width (default {DEFAULT_EMBED_DIM})")
    p.add_argument("--chunk-size", type=_int_at_least(1), default=64, metavar="N", help="episodes read at a time")
    p.add_argument("--info-key", action="append", default=None, metavar="KEY",
                   help="info key to keep (repeatable; default: every numeric per-step key)")
    p.add_argument("--seed", type=_int_at_least(0), default=None)
    p.add_argument("--compression", choices=("zstd", "lz4"), default=None, help="compress the Arrow tables")
    p.add_argument("--download", action="store_true", help="download the dataset if it is not present locally")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser(
        "push", parents=[common], help="push a saved memory to the Hugging Face Hub",
        description="Push a saved memory and a generated model card to a Hub repository, as one commit.",
    )
    p.add_argument("path", metavar="PATH", help="memory directory")
    p.add_argument("repo_id", metavar="REPO_ID", help="namespace/name")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--token", default=None, help="Hub token (default: the stored login or HF_TOKEN)")
    p.add_argument("--revision", default=None, metavar="BRANCH", help="branch to push to (created if missing)")
    p.add_argument("-m", "--message", default=None, help="commit message")
    p.add_argument("--endpoint", default=None, metavar="URL", help="Hub URL (default: HF_ENDPOINT or huggingface.co)")
    p.add_argument("--repo-type", choices=("model", "dataset"), default="model",
                   help="repository type (default model; a dataset repo is readable with datasets.load_dataset)")
    p.add_argument("--license", default=None, metavar="ID",
                   help="license of the data for the card, e.g. cc-by-4.0 (default: provenance, else unknown)")
    p.set_defaults(func=_cmd_push)

    p = sub.add_parser(
        "pull", parents=[common], help="download a memory from the Hugging Face Hub",
        description="Download a memory, verify every file's checksum, and place it at OUT atomically.",
    )
    p.add_argument("repo_id", metavar="REPO_ID", help="namespace/name, a local directory or a file:// URL")
    p.add_argument("out", metavar="OUT", help="directory to place the memory in")
    p.add_argument("--revision", default=None, help="branch, tag or commit id")
    p.add_argument("--token", default=None, help="Hub token (default: the stored login or HF_TOKEN)")
    p.add_argument("--endpoint", default=None, metavar="URL", help="Hub URL (default: HF_ENDPOINT or huggingface.co)")
    p.add_argument("--force-download", action="store_true", help="download again even if cached")
    p.add_argument("--repo-type", choices=("model", "dataset"), default="model", help="repository type (default model)")
    p.set_defaults(func=_cmd_pull)
    return parser


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {message}"
        return message


#: Loggers of libraries whose INFO records are noise at ``-v`` (every HTTP request, lock, file).
_THIRD_PARTY_LOGGERS = ("httpx", "httpx2", "httpcore", "urllib3", "filelock", "huggingface_hub", "h5py", "fsspec")


def _configure_logging(debug: bool, verbosity: int) -> Callable[[], None]:
    """Log to stderr for the duration of a command; returns the function that undoes it.

    Levels: warnings by default; ``-v`` INFO from hippogym; ``-vv`` INFO from the third-party
    libraries too (HTTP requests of the Hub client); ``--debug`` everything at DEBUG.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO if verbosity >= 1 else logging.WARNING)
    quieted = []
    if not debug and verbosity < 2:
        for name in _THIRD_PARTY_LOGGERS:
            lg = logging.getLogger(name)
            quieted.append((lg, lg.level))
            lg.setLevel(logging.WARNING)

    def undo() -> None:
        root.removeHandler(handler)
        root.setLevel(level)
        for lg, old in quieted:
            lg.setLevel(old)

    return undo


def _describe_error(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, (HippoError, ValueError, OSError, ImportError, LookupError)):
        return text
    return f"{type(exc).__name__}: {text}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``hippogym`` command line.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 success, 1 failure, 2 bad usage, 130 interrupted.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help/--version (0) or a usage error (2), already printed
        return int(exc.code) if isinstance(exc.code, int) else 2
    debug = bool(getattr(args, "debug", False))
    undo_logging = _configure_logging(debug, int(getattr(args, "verbose", 0) or 0))
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # every failure becomes one clean line (or a traceback with --debug)
        if debug:
            raise
        print(f"error: {_describe_error(exc)}", file=sys.stderr)
        return 1
    finally:
        undo_logging()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
