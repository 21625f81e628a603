"""Command line entry point: ``python -m hubserver --root DIR`` (run with ``tests/`` on ``sys.path``)."""

from __future__ import annotations

import argparse
import logging
import signal
import time

from .server import LocalHubServer

logger = logging.getLogger(__name__)



class _StopServing(Exception):
    """Raised in the main thread by the SIGINT/SIGTERM handler to leave the serving loop."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


def _raise_stop(signum: int, frame: object) -> None:
    raise _StopServing(signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hubserver",
        description="Serve a local Hugging Face Hub-compatible API (for tests and benchmarks).",
    )
    parser.add_argument("--root", required=True, help="directory holding the repositories")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--token", action="append", default=[], metavar="TOKEN:USER", help="accepted token and its user (repeatable)"
    )
    parser.add_argument(
        "--org", action="append", default=[], metavar="ORG:USER[,USER...]", help="organization members (repeatable)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    tokens = {}
    for spec in args.token:
        token, sep, user = spec.rpartition(":")
        if not sep or not token or not user:
            parser.error(f"--token expects TOKEN:USER, got {spec!r}")
        tokens[token] = user
    orgs = {}
    for spec in args.org:
        org, sep, members = spec.partition(":")
        if not sep or not org:
            parser.error(f"--org expects ORG:USER[,USER...], got {spec!r}")
        orgs[org] = [m for m in members.split(",") if m]

    hub = LocalHubServer(args.root, tokens, orgs=orgs, host=args.host, port=args.port)
    # Install the handlers explicitly: a process started in the background by a shell without job
    # control inherits SIGINT as *ignored*, and Python then never raises KeyboardInterrupt, so a
    # server that waited for Ctrl+C could not be stopped by SIGINT at all.
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        hub.start()
        logger.info("HF_ENDPOINT=%s (SIGINT or SIGTERM to stop)", hub.endpoint)
        while True:
            time.sleep(3600)
    except _StopServing as stop:
        logger.info("received signal %d", stop.signum)
    finally:
        for sig, handler in previous.items():  # a second signal must not interrupt the shutdown
            signal.signal(sig, handler)
        hub.stop()
    logger.info("LocalHubServer stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
