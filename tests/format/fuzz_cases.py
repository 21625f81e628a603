"""Hypothesis fuzz cases: damage a small valid memory, then open and load everything.

Not collected directly (the file name does not start with ``test_``):
``test_format_fuzz.py`` runs this module in a subprocess with faulthandler on,
so that a crash in native code shows up as a test failure instead of killing
the test session. ``HIPPO_FUZZ_EXAMPLES=10000 pytest tests/format/test_format_fuzz.py``
runs a long campaign (see docs/reliability.md); ``HIPPO_FUZZ_STATS=FILE`` appends
one JSON line per case (kind, outcome) for the figures.

Two families of cases, all derandomized (the same examples on every run):

* raw damage (byte flips at 1-8 positions, a truncation, or an insertion, in
  any file including the manifest): ``open_memory(path, verify=v)``, ``load_all()``,
  every column, tensor, extra file and ``verify(full=False)`` either succeed with
  well-formed arrays or raise :class:`hippo_format.FormatError`; ``verify="full"``
  detects every damage; ``check_conformance`` never raises and reports it;
* re-sealed damage: the manifest is mutated (values replaced by hostile ones,
  members deleted or added), or a data file is damaged, and then every file
  digest and ``manifest_sha256`` are recomputed, as anyone can, so that the
  damage reaches the parsers even under full verification. Each case must end
  in a :class:`~hippo_format.FormatError` or in data identical to the template's
  (manifest mutations) or to an independent decode of the same bytes by
  pyarrow and the ``safetensors`` package (data damage);

and for every case: no hang (a per-case timer, ``CASE_SECONDS``), and no
allocation beyond the bound (the peak resident memory of the case, measured
with ``/proc/self/clear_refs`` + ``VmHWM``, stays under ``RSS_BOUND_BYTES``).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hippo_format
from hippo_format import FormatError, LoadLimits, open_memory
from hippo_format._manifest import dump_manifest

from .memgen import bit_equal, write_small_memory

_ENV = os.environ.get("HIPPO_FUZZ_EXAMPLES")
PLAIN_EXAMPLES = int(_ENV) if _ENV else 130
COMPRESSED_EXAMPLES = max(1, PLAIN_EXAMPLES // 4) if _ENV else 30
RESEALED_MANIFEST_EXAMPLES = int(_ENV) if _ENV else 150
RESEALED_DATA_EXAMPLES = max(1, int(_ENV) // 2) if _ENV else 60
STATS = os.environ.get("HIPPO_FUZZ_STATS")

#: Per-case time limit (a hang fails the case).
CASE_SECONDS = 20.0
#: Tight limits for the fuzz: what a crafted memory may cost beyond its own size.
FUZZ_LIMITS = LoadLimits(allocation_floor_bytes=8 << 20, max_space_elements=1 << 16)
#: Peak resident memory a case may add (the templates are ~60 KB; decoding costs a few MB).
RSS_BOUND_BYTES = 64 << 20

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
            st.lists(
                st.tuples(st.integers(0, size - 1), st.integers(1, 255)),
                min_size=1,
                max_size=8,
                unique_by=lambda t: t[0],
            )
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
        with _guarded(f"raw {name} {mode} {args!r:.200}"):
            problems = hippo_format.check_conformance(path)
            assert problems, f"check_conformance missed a corruption of {name} ({mode} {args!r:.200})"
            try:
                _exercise(path, verify)
            except FormatError as exc:
                _record("raw", type(exc).__name__)
                return
        assert verify != "full", f"verify='full' missed a corruption of {name} ({mode} {args!r:.200})"
        _record("raw", "accepted")
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --------------------------------------------------------------------------- guards and statistics


class CaseTimeout(BaseException):  # noqa: N818 - BaseException so that no library handler swallows it
    """A case ran past CASE_SECONDS."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise CaseTimeout(f"case ran longer than {CASE_SECONDS} s")


def _status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:  # pragma: no cover - not Linux
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:  # pragma: no cover - not Linux or not permitted
        return False


@contextlib.contextmanager
def _guarded(label: str) -> Iterator[None]:
    """Fail the case if it runs longer than CASE_SECONDS or raises peak RSS by more than RSS_BOUND_BYTES."""
    measured = _reset_peak()
    before = _status_kib("VmRSS") if measured else None
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if before is not None:
        peak = _status_kib("VmHWM")
        if peak is not None:
            grown = (peak - before) * 1024
            assert grown <= RSS_BOUND_BYTES, f"{label}: peak RSS grew by {grown:,} bytes (bound {RSS_BOUND_BYTES:,})"


def _record(kind: str, outcome: str) -> None:
    if STATS:
        with open(STATS, "a", encoding="utf-8") as f:
            f.write(json.dumps({"kind": kind, "outcome": outcome}) + "\n")


# --------------------------------------------------------------------------- re-sealed cases

_HOSTILE_SCALARS = [
    0,
    -1,
    1,
    2,
    7,
    2**31,
    2**63,
    -(2**63),
    10**12,
    300_000_000,
    10**30,
    1e308,
    -0.5,
    0.5,
    True,
    False,
    None,
    "",
    "load",
    "torch.load",
    "float32\n",
    "float32",
    "bfloat16",
    "../escape",
    "/abs",
    "a" * 300,
    "nan",
    "inf",
    "keys\n",
    "Box",
    "Discrete",
    "MultiBinary",
    "Dict",
    "Tuple",
    "zstd",
    "transitions",
    "episodes",
]


def _deep(depth: int) -> Any:
    value: Any = 0
    for i in range(depth):
        value = [value] if i % 2 else {"x": value}
    return value


_HOSTILE_STRUCTURES = [
    [],
    {},
    [[]],
    [10**6],
    [30000, 30000],
    [20000, 20000],
    [-1],
    [1.5],
    [0, 2**40],
    ["a"],
    [None],
    {"type": "Box", "dtype": "float32", "shape": [30000, 30000], "low": 0, "high": 1},
    {"type": "Box", "dtype": "float64", "shape": [4096, 4096], "low": "-inf", "high": "inf"},
    {"type": "MultiBinary", "n": [100000, 100000]},
    {"type": "Discrete", "n": 10**30},
    {"type": "Dict", "spaces": {"a": {"type": "Tuple", "spaces": [{"type": "Box"}]}}},
    {"sha256": "0" * 64, "bytes": 10**12},
    {"transitions": 10**9, "episodes": 1},
    {"embeddings": "transitions", "missing": "episodes"},
    _deep(40),
    _deep(70),
    _deep(600),
]


def _hostile_values() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(_HOSTILE_SCALARS),
        st.sampled_from(range(len(_HOSTILE_STRUCTURES))).map(lambda i: copy.deepcopy(_HOSTILE_STRUCTURES[i])),
        st.integers(),
        st.text(max_size=20),
        st.lists(st.integers(-(2**40), 2**40), max_size=6),
    )


def _json_paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    paths = [prefix]
    if isinstance(value, dict):
        for key, sub in value.items():
            paths.extend(_json_paths(sub, (*prefix, key)))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            paths.extend(_json_paths(sub, (*prefix, i)))
    return paths


def _template_manifest(kind: str) -> dict[str, Any]:
    return json.loads((_template(kind) / "manifest.json").read_text(encoding="utf-8"))


@st.composite
def manifest_mutations(draw: st.DrawFn, kind: str) -> list[tuple[str, tuple, Any]]:
    doc = _template_manifest(kind)
    paths = [p for p in _json_paths(doc) if p and p != ("manifest_sha256",)]
    edits = []
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        key = draw(
            st.one_of(
                st.sampled_from(
                    [
                        "capacity",
                        "num_slots",
                        "hidden",
                        "shape",
                        "dtype",
                        "n",
                        "type",
                        "files",
                        "counts",
                        "spaces",
                        "row_aligned",
                        "x",
                    ]
                ),
                st.text(max_size=8),
            )
        )
        edits.append((op, path, draw(_hostile_values()) if op != "delete" else None, key))
    return edits


def _apply_manifest_edits(doc: dict[str, Any], edits: list) -> None:
    for op, path, value, key in edits:
        parent: Any = doc
        try:
            for part in path[:-1]:
                parent = parent[part]
            last = path[-1]
            if op == "replace":
                parent[last] = value
            elif op == "delete":
                del parent[last]
            else:
                target = parent[last]
                if isinstance(target, dict):
                    target[key] = value
                elif isinstance(target, list):
                    target.append(value)
                else:
                    parent[last] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed or replaced this path


def _reseal(path: Path, doc: dict[str, Any] | None = None) -> None:
    """Recompute every listed file's digest and size, then ``manifest_sha256``, as an attacker could."""
    if doc is None:
        doc = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    files = doc.get("files")
    if isinstance(files, dict):
        for name, entry in files.items():
            file = path / str(name)
            if isinstance(entry, dict) and file.is_file() and "sha256" in entry and "bytes" in entry:
                data = file.read_bytes()
                entry["sha256"] = hashlib.sha256(data).hexdigest()
                entry["bytes"] = len(data)
    doc.pop("manifest_sha256", None)
    (path / "manifest.json").write_bytes(dump_manifest(doc))


def _loaded_equal(a: dict[str, Any], b: dict[str, Any], *, subset: bool = False) -> bool:
    """Tables identical; tensor files and extra files identical (with ``subset``: those ``a`` has, a manifest
    may legitimately stop listing a file, which readers then ignore)."""
    for section in ("transitions", "episodes"):
        if set(a[section]) != set(b[section]) or not all(bit_equal(a[section][k], b[section][k]) for k in a[section]):
            return False
    for section in ("tensors", "extra_files"):
        if not (set(a[section]) <= set(b[section]) if subset else set(a[section]) == set(b[section])):
            return False
    for stem, tensors in a["tensors"].items():
        other = b["tensors"][stem]
        if set(tensors) != set(other) or not all(bit_equal(tensors[k], other[k]) for k in tensors):
            return False
    return all(a["extra_files"][k] == b["extra_files"][k] for k in a["extra_files"])


_TEMPLATE_DATA: dict[str, dict[str, Any]] = {}


def _template_data(kind: str) -> dict[str, Any]:
    if kind not in _TEMPLATE_DATA:
        _TEMPLATE_DATA[kind] = open_memory(_template(kind), verify="full").load_all()
    return _TEMPLATE_DATA[kind]


def _reference_decode(path: Path, reader: hippo_format.MemoryReader) -> dict[str, Any]:
    """Decode the same files with pyarrow and the safetensors package, independently of hippo_format."""
    import pyarrow as pa
    from safetensors.numpy import load_file

    def table(name: str) -> dict[str, np.ndarray]:
        t = pa.ipc.open_file(pa.BufferReader((path / name).read_bytes())).read_all()
        t.validate(full=True)
        out = {}
        for field, column in zip(t.schema, t.columns, strict=True):
            dtype, shape = (
                reader.column_spec(field.name)
                if name == "transitions.arrow"
                else (np.dtype(column.type.to_pandas_dtype()), ())
            )
            storage = column.combine_chunks()
            if isinstance(storage, pa.ExtensionArray):
                storage = storage.storage
            flat = storage.flatten() if shape else storage
            out[field.name] = np.asarray(flat.to_numpy(zero_copy_only=False), dtype=dtype).reshape((len(t), *shape))
        return out

    return {
        "transitions": table("transitions.arrow"),
        "episodes": table("episodes.arrow"),
        "tensors": {stem: load_file(str(path / f"{stem}.safetensors")) for stem in reader.tensor_files},
        "extra_files": {name: (path / name).read_bytes() for name in reader.extra_file_names},
    }


def _exercise_resealed(path: Path, verify: str) -> tuple[hippo_format.MemoryReader, dict[str, Any]]:
    reader = open_memory(path, verify=verify, limits=FUZZ_LIMITS)
    _exercise_reader(reader)
    loaded = reader.load_all()
    manifest = reader.manifest
    spaces = manifest.get("spaces")
    if isinstance(spaces, dict):
        for name, value in spaces.items():
            try:
                hippo_format.space_from_json(value, limits=FUZZ_LIMITS, where=f"spaces.{name}")
            except FormatError:
                pass  # a bad space description is the producer's problem, reported with a typed error
    store = manifest.get("store")
    if isinstance(store, dict):  # a consumer bounding what a producer section asks for
        for key, value in store.items():
            if isinstance(value, int) and not isinstance(value, bool):
                try:
                    reader.check_allocation(f"store.{key}", value * 64)
                except FormatError:
                    pass
    return reader, loaded


def _exercise_reader(reader: hippo_format.MemoryReader) -> None:
    n = reader.num_transitions
    for name in reader.column_names:
        dtype, shape = reader.column_spec(name)
        values = reader.column(name)
        assert values.shape == (n, *shape) and values.dtype == dtype, name
    assert all(len(v) == reader.num_episodes for v in reader.episodes().values())
    for stem in reader.tensor_files:
        for name in reader.tensor_names(stem):
            reader.tensor(stem, name)
    reader.verify(full=False)
    hippo_format.summarize(reader, verify=False)


def _run_resealed(kind: str, label: str, damage: Any, verify: str, *, data_changed: bool) -> None:
    work = Path(tempfile.mkdtemp(dir=_WORK))
    try:
        path = work / "mem"
        shutil.copytree(_template(kind), path)
        damage(path)
        with _guarded(label):
            problems = hippo_format.check_conformance(path, limits=FUZZ_LIMITS)
            assert isinstance(problems, list)
            try:
                reader, loaded = _exercise_resealed(path, verify)
            except FormatError as exc:
                _record("resealed-data" if data_changed else "resealed-manifest", type(exc).__name__)
                return
            expected = _reference_decode(path, reader) if data_changed else _template_data(kind)
        assert _loaded_equal(loaded, expected, subset=not data_changed), (
            f"{label}: accepted, but the data differ from {'an independent decode' if data_changed else 'the template'}"
        )
        _record("resealed-data" if data_changed else "resealed-manifest", "accepted-identical")
    finally:
        shutil.rmtree(work, ignore_errors=True)


_SETTINGS = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}


@settings(max_examples=PLAIN_EXAMPLES, derandomize=True, **_SETTINGS)
@given(case=corruptions("plain"), verify=st.sampled_from(["size", "full", "none"]))
def test_fuzz_uncompressed_memory(case, verify):
    _run("plain", case, verify)


@settings(max_examples=COMPRESSED_EXAMPLES, derandomize=True, **_SETTINGS)
@given(case=corruptions("zstd"), verify=st.sampled_from(["size", "full", "none"]))
def test_fuzz_compressed_memory(case, verify):
    _run("zstd", case, verify)


@settings(max_examples=RESEALED_MANIFEST_EXAMPLES, derandomize=True, **_SETTINGS)
@given(kind=st.sampled_from(["plain", "zstd"]), edits=st.data(), verify=st.sampled_from(["full", "size"]))
def test_fuzz_resealed_manifest(kind, edits, verify):
    mutation = edits.draw(manifest_mutations(kind))

    def damage(path: Path) -> None:
        doc = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        _apply_manifest_edits(doc, mutation)
        _reseal(path, doc)

    _run_resealed(kind, f"manifest {mutation!r:.300}", damage, verify, data_changed=False)


@settings(max_examples=RESEALED_DATA_EXAMPLES, derandomize=True, **_SETTINGS)
@given(kind=st.sampled_from(["plain", "zstd"]), data=st.data(), verify=st.sampled_from(["full", "size"]))
def test_fuzz_resealed_data(kind, data, verify):
    name, mode, args = data.draw(corruptions(kind).filter(lambda c: c[0] != "manifest.json"))

    def damage(path: Path) -> None:
        _apply(path / name, mode, args)
        _reseal(path)

    _run_resealed(kind, f"data {name} {mode} {args!r:.200}", damage, verify, data_changed=True)


def test_templates_are_valid():
    for kind in ("plain", "zstd"):
        _exercise(_template(kind), "full")
        assert hippo_format.check_conformance(_template(kind)) == []
