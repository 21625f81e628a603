"""Hypothesis fuzz cases: corrupt one file of a small valid memory, then open and load everything.

Not collected directly (the file name does not start with ``test_``):
``test_format_fuzz.py`` runs this module in a subprocess with faulthandler on,
so that a crash in native code shows up as a test failure instead of killing
the test session. ``HIPPO_FUZZ_EXAMPLES=5000 pytest tests/format -k fuzz``
runs a longer campaign.

Contract checked for every corruption (byte flips at 1-8 positions, a
truncation, or an insertion, in any file including the manifest):

* ``open_memory(path, verify=v)`` followed by ``load_all()``, every column,
  every tensor and ``verify(full=False)`` either succeeds with well-formed
  arrays or raises :class:`hippo_format.FormatError` — nothing else;
* with ``verify="full"`` every corruption is detected (it always raises);
* ``check_conformance`` never raises and reports every corruption.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hippo_format
from hippo_format import FormatError, open_memory

from .memgen import write_small_memory

_ENV = os.environ.get("HIPPO_FUZZ_EXAMPLES")
PLAIN_EXAMPLES = int(_ENV) if _ENV else 130
COMPRESSED_EXAMPLES = max(1, PLAIN_EXAMPLES // 4) if _ENV else 30

_TEMPLATES: dict[str, Path] = {}
_WORK = Path(tempfile.mkdtemp(prefix="hippo-fuzz-"))


def _template(kind: str) -> Path:
    if kind not in _TEMPLATES:
        options = {"image": True, "keys_dtype": np.float16, "episodes": 3, "steps": 3}
        if kind == "zstd":
            options.update(compression="zstd", batch_rows=4)
        _TEMPLATES[kind] = write_small_memory(_WORK / f"template-{kind}", **options)
    return _TEMPLATES[kind]


@st.composite
def corruptions(draw: st.DrawFn, kind: str) -> tuple[str, str, list]:
    template = _template(kind)
    names = sorted(p.relative_to(template).as_posix() for p in template.rglob("*") if p.is_file())
    name = draw(st.sampled_from(names))
    size = (template / name).stat().st_size
    mode = draw(st.sampled_from(["flip", "truncate", "insert"]) if size else st.just("insert"))
    if mode == "flip":
        flips = draw(
            st.lists(st.tuples(st.integers(0, size - 1), st.integers(1, 255)), min_size=1, max_size=8, unique_by=lambda t: t[0])
        )
        return name, mode, flips
    if mode == "truncate":
        return name, mode, [draw(st.integers(0, size - 1))]
    return name, mode, [draw(st.integers(0, size)), draw(st.binary(min_size=1, max_size=64))]


def _apply(path: Path, mode: str, args: list) -> None:
    data = bytearray(path.read_bytes())
    if mode == "flip":
        for position, mask in args:
            data[position] ^= mask
    elif mode == "truncate":
        del data[args[0] :]
    else:
        data[args[0] : args[0]] = args[1]
    path.write_bytes(bytes(data))


def _exercise(path: Path, verify: str) -> None:
    reader = open_memory(path, verify=verify)
    loaded = reader.load_all()
    n = reader.num_transitions
    assert set(loaded["transitions"]) == set(reader.column_names)
    for name in reader.column_names:
        dtype, shape = reader.column_spec(name)
        for values in (reader.column(name), loaded["transitions"][name]):
            assert values.shape == (n, *shape) and values.dtype == dtype, name
    episodes = reader.episodes()
    assert all(len(v) == reader.num_episodes for v in episodes.values())
    for stem in reader.tensor_files:
        for name in reader.tensor_names(stem):
            view = reader.tensor(stem, name)
            assert view.shape == loaded["tensors"][stem][name].shape
    for name in reader.extra_file_names:
        assert isinstance(reader.extra_file(name), bytes)
    reader.verify(full=False)
    hippo_format.summarize(reader, verify=False)


def _run(kind: str, case: tuple[str, str, list], verify: str) -> None:
    name, mode, args = case
    work = Path(tempfile.mkdtemp(dir=_WORK))
    try:
        path = work / "mem"
        shutil.copytree(_template(kind), path)
        _apply(path / name, mode, args)
        problems = hippo_format.check_conformance(path)
        assert problems, f"check_conformance missed a corruption of {name} ({mode} {args!r:.200})"
        try:
            _exercise(path, verify)
        except FormatError:
            return
        assert verify != "full", f"verify='full' missed a corruption of {name} ({mode} {args!r:.200})"
    finally:
        shutil.rmtree(work, ignore_errors=True)


_SETTINGS = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}


@settings(max_examples=PLAIN_EXAMPLES, **_SETTINGS)
@given(case=corruptions("plain"), verify=st.sampled_from(["size", "full", "none"]))
def test_fuzz_uncompressed_memory(case, verify):
    _run("plain", case, verify)


@settings(max_examples=COMPRESSED_EXAMPLES, **_SETTINGS)
@given(case=corruptions("zstd"), verify=st.sampled_from(["size", "full", "none"]))
def test_fuzz_compressed_memory(case, verify):
    _run("zstd", case, verify)


def test_templates_are_valid():
    for kind in ("plain", "zstd"):
        _exercise(_template(kind), "full")
        assert hippo_format.check_conformance(_template(kind)) == []
