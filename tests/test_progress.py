"""progress_bar: tqdm on a terminal, INFO log lines otherwise (or without tqdm), nothing when disabled."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from hippogym.progress import progress_bar


def _messages(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "hippogym.progress"]


def test_disabled_bar_shows_and_logs_nothing(caplog, capsys):
    with caplog.at_level(logging.INFO), progress_bar(total=10, desc="x", enabled=False) as bar:
        for _ in range(10):
            bar.update(1)
        bar.set_postfix_str("loss 1")
    assert _messages(caplog) == [] and capsys.readouterr().err == ""


def test_log_fallback_reports_every_tenth_and_the_end(caplog, monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal
    with caplog.at_level(logging.INFO, logger="hippogym.progress"), progress_bar(
        total=200, desc="consolidate", unit="step"
    ) as bar:
        for _ in range(200):
            bar.update(1)
    lines = _messages(caplog)
    assert [line.split(" (")[0] for line in lines[:-1]] == [f"consolidate: {20 * k}/200 step" for k in range(1, 10)]
    assert lines[-1].startswith("consolidate: 200/200 step in ")


def test_log_fallback_is_silent_about_an_aborted_run(caplog, monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with pytest.raises(RuntimeError), caplog.at_level(logging.INFO, logger="hippogym.progress"):
        with progress_bar(total=10, desc="copy", unit="B") as bar:
            bar.update(3)
            raise RuntimeError("boom")
    assert not any(" in " in m for m in _messages(caplog))


def test_tqdm_on_a_terminal_and_the_fallback_without_tqdm(monkeypatch, caplog):
    tqdm = pytest.importorskip("tqdm")

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    bar = progress_bar(total=5, desc="load", unit="B")
    assert isinstance(bar, tqdm.tqdm) and bar.unit_scale
    bar.close()
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    with caplog.at_level(logging.INFO, logger="hippogym.progress"):
        fallback = progress_bar(total=5, desc="load")
        fallback.update(5)
        fallback.close()
    assert not isinstance(fallback, tqdm.tqdm) and _messages(caplog)[-1].startswith("load: 5/5 it in ")
