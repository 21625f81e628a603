"""Progress reporting for long operations: a tqdm bar when tqdm is installed, log lines otherwise.

tqdm is optional (``pip install tqdm``; the ``hub`` and ``minari`` extras bring it). Without it,
or when stderr is not a terminal (a log file, CI), :func:`progress_bar` logs ``desc: n/total`` at
INFO about every 10 %, so a long consolidation or download still says how far it is under
``hippogym -v``::

    from hippogym.progress import progress_bar

    with progress_bar(total=steps, desc="consolidate", unit="step", enabled=True) as bar:
        for _ in range(steps):
            ...
            bar.update(1)
"""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType
from typing import Any

__all__ = ["progress_bar"]

logger = logging.getLogger(__name__)


class _Silent:
    """A bar that shows nothing (``enabled=False``)."""

    def update(self, n: float = 1) -> None:
        """Count ``n`` more units (ignored)."""

    def set_postfix_str(self, text: str) -> None:
        """Show ``text`` after the counts (ignored)."""

    def close(self) -> None:
        """Finish the bar (nothing to do)."""

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _LogBar(_Silent):
    """The fallback without tqdm: INFO log lines at about every 10 % (and at the end)."""

    def __init__(self, total: float, desc: str, unit: str) -> None:
        self.total, self.desc, self.unit = float(total), desc, unit
        self.n = 0.0
        self._next = self.total / 10
        self._t0 = time.perf_counter()
        self._closed = False

    def update(self, n: float = 1) -> None:
        """Count ``n`` more units; log when another tenth of the total is done."""
        self.n += n
        if self.total > 0 and self.n >= self._next and self.n < self.total:
            logger.info("%s: %s/%s %s (%.0f%%)", self.desc, _num(self.n), _num(self.total), self.unit,
                        100 * self.n / self.total)
            self._next = (int(10 * self.n / self.total) + 1) * self.total / 10

    def close(self) -> None:
        """Log the final count and the time taken (once)."""
        if self._closed:
            return
        self._closed = True
        logger.info("%s: %s/%s %s in %.1f s", self.desc, _num(self.n), _num(self.total), self.unit,
                    time.perf_counter() - self._t0)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()


def _num(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,.1f}"


def progress_bar(*, total: float, desc: str, unit: str = "it", enabled: bool = True) -> Any:
    """Return a progress bar with ``update(n)``, ``set_postfix_str(text)``, ``close()`` (and ``with``).

    Args:
        total: Units expected (steps, bytes, ...).
        desc: What is being done, shown before the counts.
        unit: Name of one unit (``"step"``, ``"B"``: bytes are shown scaled with tqdm).
        enabled: ``False`` returns a bar that shows nothing.

    Returns:
        A tqdm bar when tqdm is installed and stderr is a terminal (or a notebook runs the code),
        else a bar that logs at INFO about every 10 % (what ``-v`` shows in a log file or CI).
    """
    if not enabled:
        return _Silent()
    interactive = "ipykernel" in sys.modules or (hasattr(sys.stderr, "isatty") and sys.stderr.isatty())
    try:
        from tqdm.auto import tqdm
    except ImportError:
        interactive = False
    if not interactive:
        return _LogBar(total, desc, unit)
    scale = unit == "B"
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=scale, unit_divisor=1024 if scale else 1000, leave=False)
