"""Reading, validating and writing ``manifest.json``."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from hippo_format._files import Snapshot
from hippo_format._paths import check_relative_name
from hippo_format._schema import (
    COMPRESSIONS,
    EPISODES_FILE,
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_FILE,
    MAX_MANIFEST_BYTES,
    SAFETENSORS_SUFFIX,
    TRANSITIONS_FILE,
    is_sha256_hex,
    is_xxh3_128_hex,
)
from hippo_format.errors import (
    ChecksumMismatchError,
    CorruptFileError,
    LimitExceededError,
    ManifestError,
    MissingFileError,
    UnsupportedVersionError,
)
from hippo_format.limits import DEFAULT_LIMITS, LoadLimits, check_json_depth, json_depth

SELF_DIGEST_KEY = "manifest_sha256"

#: Top-level keys owned by the format; the writer fills them, producers may not.
RESERVED_KEYS = (
    "format",
    "format_version",
    "producer",
    "created",
    "counts",
    "compression",
    "files",
    "row_aligned",
    SELF_DIGEST_KEY,
)

#: Producer sections whose type is fixed when present (``None`` is always allowed).
SECTION_TYPES: dict[str, type | tuple[type, ...]] = {
    "embed_dim": int,
    "encoder": dict,
    "spaces": dict,
    "segmenter": dict,
    "sampling": dict,
    "provenance": dict,
    "store": dict,
}

ROW_KINDS = ("transitions", "episodes")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ManifestError(f"{MANIFEST_FILE}: key {key!r} appears twice in one object; the manifest is corrupt")
        out[key] = value
    return out


def _reject_constant(value: str) -> Any:
    raise ManifestError(f"{MANIFEST_FILE}: holds the non-standard JSON constant {value}; JSON has no NaN or infinity")


def read_manifest_from(snapshot: Snapshot, limits: LoadLimits = DEFAULT_LIMITS) -> bytes:
    """Read ``manifest.json`` of an open directory, refusing non-regular files and oversized manifests.

    Raises:
        MissingFileError: If the manifest is missing.
        ManifestError: If it is not a regular file or is unreadable.
        LimitExceededError: If it is larger than ``limits.max_manifest_bytes``.
    """
    root = snapshot.root
    path = root / MANIFEST_FILE
    try:
        handle = snapshot.open(MANIFEST_FILE, "the manifest")
    except MissingFileError:
        raise MissingFileError(
            f"{path}: missing; a memory directory must contain {MANIFEST_FILE} — is {root} a hippo memory?",
            field=MANIFEST_FILE,
        ) from None
    except CorruptFileError as exc:
        raise ManifestError(f"{exc}", field=MANIFEST_FILE) from None
    try:
        limit = min(MAX_MANIFEST_BYTES, limits.max_manifest_bytes)
        if handle.size > limit:
            raise LimitExceededError(
                f"{path}: {handle.size} bytes, larger than the {limit}-byte limit; a manifest holds metadata only",
                field=MANIFEST_FILE,
            )
        return handle.read()
    finally:
        handle.close()


def read_manifest_bytes(root: Path, limits: LoadLimits = DEFAULT_LIMITS) -> bytes:
    """Read ``root/manifest.json`` (see :func:`read_manifest_from`).

    Raises:
        MissingFileError: If the directory or the manifest is missing.
        ManifestError: If it is not a regular file or unreadable.
        LimitExceededError: If it is larger than the limit.
    """
    snapshot = Snapshot(root)
    try:
        return read_manifest_from(snapshot, limits)
    finally:
        snapshot.close()


def parse_manifest(raw: bytes, limits: LoadLimits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Decode manifest bytes into a dict, checking the nesting depth before parsing.

    Raises:
        ManifestError: If the bytes are not UTF-8, not JSON, or not a JSON object.
        LimitExceededError: If the JSON is nested deeper than ``limits.max_json_depth``.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(
            f"{MANIFEST_FILE}: not valid UTF-8 (byte {exc.start}: {exc.reason}); the manifest is corrupt",
            field=MANIFEST_FILE,
        ) from None
    check_json_depth(raw, MANIFEST_FILE, limits)
    try:
        doc = json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
    except ManifestError:
        raise
    except (ValueError, RecursionError) as exc:
        raise ManifestError(
            f"{MANIFEST_FILE}: not valid JSON ({exc}); the manifest is corrupt", field=MANIFEST_FILE
        ) from None
    if not isinstance(doc, dict):
        raise ManifestError(
            f"{MANIFEST_FILE}: expected a JSON object at the top level, found {type(doc).__name__}", field=MANIFEST_FILE
        )
    return doc


def detect_version(doc: Mapping[str, Any]) -> int:
    """Return the manifest's format version (``format_version``, or ``version`` for version 0).

    Raises:
        UnsupportedVersionError: If ``format`` is not ``"hippo-memory"`` or the version is newer than supported.
        ManifestError: If the fields are missing or mistyped.
    """
    name = doc.get("format")
    if name is None:
        raise ManifestError(
            f"{MANIFEST_FILE}: field 'format' is missing; expected \"{FORMAT_NAME}\" — is this a hippo memory?"
        )
    if name != FORMAT_NAME:
        raise UnsupportedVersionError(
            f"{MANIFEST_FILE}: field 'format' is {name!r}, expected {FORMAT_NAME!r}; "
            "this directory holds another format"
        )
    if "format_version" in doc:
        version = doc["format_version"]
        key = "format_version"
    elif "version" in doc:
        version = doc["version"]
        key = "version"
    else:
        raise ManifestError(f"{MANIFEST_FILE}: field 'format_version' is missing; expected an integer")
    if not _is_int(version):
        raise ManifestError(f"{MANIFEST_FILE}: field {key!r} must be an integer, found {version!r}")
    if version > FORMAT_VERSION:
        raise UnsupportedVersionError(
            f"{MANIFEST_FILE}: format_version {version} is newer than the newest this library reads "
            f"({FORMAT_VERSION}); upgrade hippo_format to open this memory"
        )
    if version < 0 or (key == "version" and version != 0):
        raise UnsupportedVersionError(f"{MANIFEST_FILE}: unknown format version {version} (field {key!r})")
    return version


def check_self_digest(raw: bytes, doc: Mapping[str, Any]) -> None:
    """Check ``manifest_sha256`` against the manifest's own bytes.

    The digest covers the file with the 64 hex digits of the value (its last
    occurrence) replaced by ASCII ``0``.

    Raises:
        ChecksumMismatchError: If the field is missing or does not match.
        ManifestError: If the field is not 64 lowercase hex digits.
    """
    value = doc.get(SELF_DIGEST_KEY)
    if value is None:
        raise ChecksumMismatchError(
            f"{MANIFEST_FILE}: no '{SELF_DIGEST_KEY}' field, so the manifest cannot be verified; "
            "re-save the memory with hippo_format"
        )
    if not is_sha256_hex(value):
        raise ManifestError(
            f"{MANIFEST_FILE}: '{SELF_DIGEST_KEY}' must be 64 lowercase hex digits, found {value!r:.80}"
        )
    needle = value.encode("ascii")
    at = raw.rfind(needle)
    if at < 0:  # pragma: no cover - json.loads found it, so the bytes are there (unless escaped)
        raise ChecksumMismatchError(f"{MANIFEST_FILE}: '{SELF_DIGEST_KEY}' value not found verbatim in the file")
    actual = hashlib.sha256(raw[:at] + b"0" * 64 + raw[at + 64 :]).hexdigest()
    if actual != value:
        raise ChecksumMismatchError(
            f"{MANIFEST_FILE}: content digest is {actual} but '{SELF_DIGEST_KEY}' says {value}; "
            "the manifest was modified or corrupted — restore it or re-save the memory"
        )


def validate_files_section(doc: Mapping[str, Any], limits: LoadLimits = DEFAULT_LIMITS) -> dict[str, dict[str, Any]]:
    """Validate ``files``: relative names mapping to ``{"sha256": hex, "bytes": int}`` (+ optional ``xxh3_128``).

    Returns:
        The section.

    Raises:
        ManifestError: For wrong types.
        UnsafePathError: For names that could escape the directory.
        LimitExceededError: For more than ``limits.max_files`` entries.
    """
    files = doc.get("files")
    if not isinstance(files, dict):
        raise ManifestError(
            f"{MANIFEST_FILE}: field 'files' must be an object of file name -> {{sha256, bytes}}, found "
            f"{type(files).__name__}",
            field="files",
        )
    if len(files) > limits.max_files:
        raise LimitExceededError(
            f"{MANIFEST_FILE}: 'files' lists {len(files)} files, more than the limit of {limits.max_files}",
            field="files",
        )
    names = set()
    for name, entry in files.items():
        check_relative_name(name, f"{MANIFEST_FILE}: files entry")
        if name == MANIFEST_FILE:
            raise ManifestError(f"{MANIFEST_FILE}: 'files' must not list the manifest itself")
        if not isinstance(entry, dict):
            raise ManifestError(
                f"{MANIFEST_FILE}: files[{name!r}] must be an object with 'sha256' and 'bytes', found {entry!r:.80}"
            )
        if not is_sha256_hex(entry.get("sha256")):
            raise ManifestError(
                f"{MANIFEST_FILE}: files[{name!r}].sha256 must be 64 lowercase hex digits, "
                f"found {entry.get('sha256')!r:.80}"
            )
        if "xxh3_128" in entry and not is_xxh3_128_hex(entry["xxh3_128"]):
            raise ManifestError(
                f"{MANIFEST_FILE}: files[{name!r}].xxh3_128 must be 32 lowercase hex digits, "
                f"found {entry['xxh3_128']!r:.80}"
            )
        size = entry.get("bytes")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ManifestError(
                f"{MANIFEST_FILE}: files[{name!r}].bytes must be a non-negative integer, found {size!r:.80}"
            )
        names.add(name)
    for name in names:
        parts = name.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in names:
                raise ManifestError(
                    f"{MANIFEST_FILE}: files lists both {'/'.join(parts[:i])!r} and {name!r}; "
                    "a file cannot also be a directory"
                )
    return files


def validate_manifest(doc: Mapping[str, Any], required_present: bool = True) -> None:
    """Validate a version-1 manifest's format-owned fields and typed producer sections.

    Args:
        doc: The parsed (and, if needed, migrated) manifest.
        required_present: Check that ``transitions.arrow`` and ``episodes.arrow`` are listed in ``files``.

    Raises:
        ManifestError: Naming the first bad field.
    """
    where = MANIFEST_FILE
    if doc.get("format_version") != FORMAT_VERSION or not _is_int(doc.get("format_version")):
        raise ManifestError(
            f"{where}: field 'format_version' must be the integer {FORMAT_VERSION}, found {doc.get('format_version')!r}"
        )
    producer = doc.get("producer")
    if (
        not isinstance(producer, dict)
        or not isinstance(producer.get("name"), str)
        or not isinstance(producer.get("version"), str)
    ):
        raise ManifestError(
            f"{where}: field 'producer' must be an object with string 'name' and 'version', found {producer!r:.120}"
        )
    created = doc.get("created")
    if not isinstance(created, str):
        raise ManifestError(f"{where}: field 'created' must be an ISO 8601 string, found {created!r:.80}")
    try:
        stamp = _dt.datetime.fromisoformat(created)
    except ValueError:
        raise ManifestError(f"{where}: field 'created' is {created!r:.80}, not an ISO 8601 timestamp") from None
    if stamp.tzinfo is None:
        raise ManifestError(f"{where}: field 'created' is {created!r:.80}; it must carry a UTC offset (e.g. +00:00)")
    counts = doc.get("counts")
    if not isinstance(counts, dict):
        raise ManifestError(
            f"{where}: field 'counts' must be an object with 'transitions' and 'episodes', found {counts!r:.80}"
        )
    for key in ("transitions", "episodes"):
        value = counts.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ManifestError(f"{where}: counts.{key} must be a non-negative integer, found {value!r:.80}")
    if "compression" not in doc:
        raise ManifestError(f"{where}: field 'compression' is missing; expected null or one of {list(COMPRESSIONS)}")
    compression = doc["compression"]
    if compression is not None and compression not in COMPRESSIONS:
        raise ManifestError(
            f"{where}: field 'compression' must be null or one of {list(COMPRESSIONS)}, found {compression!r:.80}"
        )
    files = validate_files_section(doc)
    if required_present:
        for name in (TRANSITIONS_FILE, EPISODES_FILE):
            if name not in files:
                raise ManifestError(f"{where}: 'files' must list {name!r}; it lists {sorted(files)}")
    row_aligned = doc.get("row_aligned")
    if row_aligned is not None:
        if not isinstance(row_aligned, dict):
            raise ManifestError(
                f"{where}: field 'row_aligned' must be an object of file stem -> {{tensor: 'transitions'|'episodes'}}"
            )
        for stem, entry in row_aligned.items():
            if f"{stem}{SAFETENSORS_SUFFIX}" not in files:
                raise ManifestError(
                    f"{where}: row_aligned names {stem!r} but 'files' has no {stem}{SAFETENSORS_SUFFIX}"
                )
            if not isinstance(entry, dict) or not all(isinstance(k, str) and v in ROW_KINDS for k, v in entry.items()):
                raise ManifestError(
                    f"{where}: row_aligned[{stem!r}] must map tensor names to 'transitions' or 'episodes', "
                    f"found {entry!r:.120}"
                )
    for key, kind in SECTION_TYPES.items():
        value = doc.get(key)
        if value is None:
            continue
        if kind is int:
            if not _is_int(value) or value < 0:
                raise ManifestError(
                    f"{where}: field {key!r} must be a non-negative integer or null, found {value!r:.80}"
                )
        elif not isinstance(value, kind):
            raise ManifestError(f"{where}: field {key!r} must be a JSON object or null, found {type(value).__name__}")


def json_default(value: Any) -> Any:
    """``json.dumps`` hook turning numpy scalars and arrays into plain JSON values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"object of type {type(value).__name__} is not JSON serializable")


def check_section_serializable(key: str, value: Any) -> None:
    """Fail early (before touching disk) if a producer section cannot be written as JSON readers accept.

    Raises:
        ManifestError: Naming the section (not JSON-serializable, or nested deeper than readers
            accept, ``DEFAULT_LIMITS.max_json_depth`` levels counting the manifest's own).
    """
    try:
        text = json.dumps(value, default=json_default, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ManifestError(
            f"manifest[{key!r}]: cannot be stored as JSON ({exc}); use dicts, lists, strings, "
            "finite numbers, booleans and null only",
            field=key,
        ) from None
    limit = DEFAULT_LIMITS.max_json_depth - 1  # the manifest object itself is one level
    if json_depth(text.encode("utf-8"), stop_above=limit) > limit:
        raise ManifestError(
            f"manifest[{key!r}]: nested more than {limit} levels deep; readers refuse manifests nested more than "
            f"{DEFAULT_LIMITS.max_json_depth} levels — flatten it",
            field=key,
        )


def dump_manifest(doc: dict[str, Any]) -> bytes:
    """Serialize a manifest, appending its self digest as the last top-level member.

    Args:
        doc: Manifest without ``manifest_sha256``.

    Returns:
        The UTF-8 bytes to write.
    """
    body = dict(doc)
    body.pop(SELF_DIGEST_KEY, None)
    body[SELF_DIGEST_KEY] = "0" * 64
    text = json.dumps(body, indent=2, ensure_ascii=False, allow_nan=False, default=json_default) + "\n"
    raw = text.encode("utf-8")
    digest = hashlib.sha256(raw).hexdigest()
    at = raw.rfind(b"0" * 64)
    return raw[:at] + digest.encode("ascii") + raw[at + 64 :]
