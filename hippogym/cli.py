"""The ``hippogym`` command line (also ``python -m hippogym``).

Subcommands::

    hippogym demo    [--steps N] [--out DIR] [--seed S]          record, consolidate, save, retrieve
    hippogym inspect PATH [--json] [--no-verify]                 summarise a saved memory
    hippogym convert DATASET_ID OUT [--segmenter SPEC] ...       Minari dataset -> saved memory
    hippogym push    PATH REPO_ID [--private] [--token T] ...    saved memory -> Hugging Face Hub
    hippogym pull    REPO_ID OUT [--revision R] ...              Hub -> saved memory (verified)

Logging goes to stderr: warnings by default, progress with ``-v``, everything with ``--debug``.
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

from hippogym.errors import CommandError, HippoError

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
                       consolidate_steps=args.consolidate)
    print(json.dumps(summary, indent=2) if args.json else format_demo(summary))
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    import hippo_format

    path = Path(args.path)
    if not path.exists():
        raise CommandError(f"{path}: no such file or directory")
    summary = hippo_format.summarize(path, verify=not args.no_verify)
    print(json.dumps(summary, indent=2, default=str) if args.json else hippo_format.format_summary(summary))
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
                           endpoint=args.endpoint, force_download=args.force_download, repo_type=args.repo_type)
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
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log progress (INFO) to stderr")

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
                    "then show what retrieval surfaces near the start and near the goal.",
    )
    p.add_argument("--steps", type=_int_at_least(1), default=20_000, help="environment steps to record (default 20000)")
    p.add_argument("--out", metavar="DIR", help="where to save the memory (default: a new temporary directory)")
    p.add_argument("--seed", type=_int_at_least(0), default=0, help="random seed (default 0)")
    p.add_argument("--length", type=_int_at_least(3), default=14, help="corridor length in cells (default 14)")
    p.add_argument("--consolidate", type=_int_at_least(0), default=300, metavar="N",
                   help="consolidation steps (default 300)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser(
        "inspect", parents=[common], help="summarise a saved memory",
        description="Print a summary of a saved memory (hippo_format directory): counts, returns, spaces, "
                    "provenance, columns, files; every file's checksum is verified.",
    )
    p.add_argument("path", metavar="PATH", help="memory directory")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--no-verify", action="store_true", help="skip the full checksum verification")
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
    p.add_argument("--embed-dim", type=_int_at_least(2), default=128, metavar="D", help="key width (default 128)")
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


def _configure_logging(debug: bool, verbose: bool) -> Callable[[], None]:
    """Log to stderr for the duration of a command; returns the function that undoes it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING)
    quieted = []
    if not debug:
        for name in ("httpx", "httpcore", "urllib3", "filelock", "huggingface_hub", "h5py"):
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
    undo_logging = _configure_logging(debug, bool(getattr(args, "verbose", False)))
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
