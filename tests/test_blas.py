from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

threadpoolctl = pytest.importorskip("threadpoolctl")

from hippogym import Episode, HippocampalReplayBuffer, MemoryStore  # noqa: E402
from hippogym.blas import blas_limit, blas_limited, get_blas_threads, set_blas_threads  # noqa: E402
from hippogym.errors import ValidationError  # noqa: E402


def blas_threads() -> list[int]:
    """Threads of numpy's own BLAS (the one hippogym's hot paths call; other BLAS libraries loaded later
    in the test session, such as scipy's or faiss's, are not numpy's)."""
    return [info["num_threads"] for info in threadpoolctl.threadpool_info()
            if info["user_api"] == "blas" and "numpy" in info["filepath"]]


@pytest.fixture
def two_blas_threads():
    """numpy's BLAS set to 2 threads for the test (so that a limit to 1 is visible), then restored."""
    np.ones((4, 4)) @ np.ones(4)  # BLAS is loaded
    if not blas_threads():
        pytest.skip("numpy has no BLAS library threadpoolctl can see")
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        if set(blas_threads()) != {2}:
            pytest.skip("this BLAS does not take 2 threads")
        yield
    set_blas_threads(1)


def test_limit_holds_inside_nests_and_restores(two_blas_threads):
    assert get_blas_threads() == 1
    with blas_limit():
        assert set(blas_threads()) == {1}
        with blas_limit():
            assert set(blas_threads()) == {1}
        assert set(blas_threads()) == {1}, "an inner exit must not restore while an outer call runs"
    assert set(blas_threads()) == {2}


def test_restored_after_an_exception(two_blas_threads):
    @blas_limited
    def fails() -> None:
        assert set(blas_threads()) == {1}
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fails()
    assert set(blas_threads()) == {2}
    assert fails.__name__ == "fails"


def test_none_leaves_blas_alone_and_other_limits_apply(two_blas_threads):
    set_blas_threads(None)
    with blas_limit():
        assert set(blas_threads()) == {2}
    set_blas_threads(3)
    with blas_limit():
        assert set(blas_threads()) == {2}, "a limit above the current count changes nothing"


class CountingLibrary:
    """A stand-in BLAS controller (real OpenBLAS thread counts are process-wide but read oddly across
    threads), recording every change so that the nesting logic itself is checked."""

    def __init__(self, threads: int) -> None:
        self.threads, self.calls = threads, []

    def get_num_threads(self) -> int:
        return self.threads

    def set_num_threads(self, n: int) -> None:
        self.calls.append(n)
        self.threads = n


def test_concurrent_callers_restore_once(monkeypatch):
    lib = CountingLibrary(4)
    monkeypatch.setattr("hippogym.blas._libraries", [lib])
    inside, release = threading.Barrier(2, timeout=10), threading.Event()

    def worker() -> None:
        with blas_limit():
            inside.wait()
            release.wait(10)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    try:
        with blas_limit():
            inside.wait()
            assert lib.threads == 1
        assert lib.threads == 1, "the other thread is still inside"
    finally:
        release.set()
        thread.join(10)
    assert lib.threads == 4 and lib.calls == [1, 4], "set once on the first entry, restored once on the last exit"


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValidationError, match="threads"):
        set_blas_threads(bad)
    assert get_blas_threads() == 1


def test_buffer_and_store_calls_run_limited(two_blas_threads, monkeypatch):
    seen: list[set[int]] = []
    buffer = HippocampalReplayBuffer(MemoryStore(embed_dim=8, capacity=500, seed=0), seed=0, mixture_ratio=1.0)
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        buffer.add_episode(Episode(states=torch.randn(11, 3, generator=g), actions=torch.zeros(10), rewards=torch.ones(10)))
    index = buffer.memory.index
    original = index.search_np

    def spy(*args, **kwargs):
        seen.append(set(blas_threads()))
        return original(*args, **kwargs)

    monkeypatch.setattr(index, "search_np", spy)
    buffer.sample(16, query_state=torch.randn(3))
    buffer.memory.search_np(np.ones((1, 8), np.float32) / np.sqrt(8), 2)
    assert seen == [{1}, {1}]
    assert set(blas_threads()) == {2}
