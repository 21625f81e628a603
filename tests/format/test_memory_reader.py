"""Tests for hippo_format._memory_reader: the class moved out of reader.py."""

from __future__ import annotations

import hippo_format
from hippo_format import reader
from hippo_format._memory_reader import MemoryReader


def test_memory_reader_reexported():
    assert reader.MemoryReader is MemoryReader
    assert hippo_format.MemoryReader is MemoryReader
    assert MemoryReader.__module__ == "hippo_format._memory_reader"
    assert callable(MemoryReader.verify) and callable(MemoryReader.load_all)
