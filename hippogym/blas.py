"""One BLAS thread inside hippogym's hot paths, so that retrieval never fights the learner for cores.

Retrieval, key geometry and the numpy query encoder run matrix-vector products through numpy's
BLAS (OpenBLAS in the numpy wheels). OpenBLAS splits products of a few thousand rows over all
cores, and its threads wait for work by spinning. During training the same cores are held by the
learner's own threads (torch's intra-op pool, the environment), so every small product waits for
threads that are not running. Measured on the 2-core machine of ``docs/benchmarks.md``: scoring
5,000 keys took 8 ms with OpenBLAS's two threads while other processes held the cores, and 57 µs
on one thread; SB3's DQN with its default settings and torch on 2 threads took 2.33x SB3's wall
time with BLAS left alone and 1.64x with the limit below (``benchmarks/bench_wrappers.py
--compare-blas``).

So the public entry points of the buffer and the memory (``sample``, ``retrieve``, ``add_episode``,
``consolidate``, ``MemoryStore.add``/``search``, ...) run under :func:`blas_limit`: numpy's BLAS
libraries are held to :func:`get_blas_threads` threads (default 1) while hippogym works, and given
back their previous setting when the outermost such call returns. Nothing happens at import; the
loaded BLAS libraries are looked up (with ``threadpoolctl``) at the first limited call. Calls nest
at the cost of a counter, and the limit is process-wide while any thread is inside one (as
``threadpoolctl``'s own limits are).

On an idle machine with large exact scans several BLAS threads can be faster (33 µs against 49 µs
for the 5,000-key scan above): ``set_blas_threads(None)`` leaves BLAS alone, ``set_blas_threads(n)``
allows ``n`` threads.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from hippogym.errors import ValidationError, describe

__all__ = ["blas_limit", "blas_limited", "get_blas_threads", "set_blas_threads"]

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

_lock = threading.Lock()
_limit: int | None = 1
_depth = 0
_saved: list[tuple[Any, int]] = []
_libraries: list[Any] | None = None  # threadpoolctl controllers of the BLAS libraries, found at first use


def set_blas_threads(threads: int | None) -> None:
    """Set how many BLAS threads hippogym's hot paths may use (``None``: leave BLAS as it is).

    Args:
        threads: An int >= 1 (default 1), or ``None`` to never touch the BLAS thread count.

    Raises:
        ValidationError: ``threads`` is neither ``None`` nor an int >= 1.

    Example:
        >>> from hippogym.blas import get_blas_threads, set_blas_threads
        >>> set_blas_threads(2); get_blas_threads()
        2
        >>> set_blas_threads(1)
    """
    global _limit
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValidationError("threads", "None or an int >= 1 (BLAS threads in the hot paths)", describe(threads))
    with _lock:
        _limit = threads


def get_blas_threads() -> int | None:
    """BLAS threads allowed inside hippogym's hot paths (``None``: BLAS is left alone)."""
    return _limit


def _blas_libraries() -> list[Any]:
    """The loaded BLAS libraries' thread controllers (empty without ``threadpoolctl``)."""
    global _libraries
    if _libraries is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # a core dependency; without it the limit is a no-op
            logger.warning("threadpoolctl is not installed: BLAS thread limits are off (pip install threadpoolctl)")
            _libraries = []
        else:
            _libraries = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]
    return _libraries


class _BlasLimit:
    """The context manager behind :func:`blas_limit` (one shared, reentrant instance)."""

    __slots__ = ()

    def __enter__(self) -> None:
        global _depth
        with _lock:
            if _depth == 0 and _limit is not None:
                for lib in _blas_libraries():
                    threads = lib.get_num_threads()
                    if threads is not None and threads > _limit:
                        lib.set_num_threads(_limit)
                        _saved.append((lib, threads))
            _depth += 1

    def __exit__(self, *exc: object) -> None:
        global _depth
        with _lock:
            _depth -= 1
            if _depth == 0:
                while _saved:
                    lib, threads = _saved.pop()
                    lib.set_num_threads(threads)


_LIMIT = _BlasLimit()


def blas_limit() -> _BlasLimit:
    """A context in which numpy's BLAS uses at most :func:`get_blas_threads` threads.

    Example:
        >>> import numpy as np
        >>> with blas_limit():
        ...     float(np.ones(4) @ np.ones(4))
        4.0
    """
    return _LIMIT


def blas_limited(fn: F) -> F:
    """Decorate a hot-path function so that it runs under :func:`blas_limit`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _LIMIT:
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
