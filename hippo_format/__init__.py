"""hippo_format: the on-disk format of hippogym memories.

A memory is a directory holding ``manifest.json``, two Arrow IPC files
(``transitions.arrow``, ``episodes.arrow``), any number of safetensors files and
optional opaque extras, all checksummed in the manifest. See ``SPEC.md`` in this
package for the normative description.

Typical use::

    import hippo_format

    hippo_format.write_memory(path, manifest={...}, transitions={...}, episodes={...}, tensors={...})
    with hippo_format.open_memory(path) as memory:
        obs = memory.column("obs")          # zero-copy view of the memory-mapped file
        keys = memory.tensor("keys", "embeddings")

Reading is safe for memories from strangers: every declared size is bounded by
the files and :class:`LoadLimits` before anything is allocated, files are opened
once (a concurrent save never mixes versions), and NaN/inf are refused on read
(``check_finite=False`` opts out). See ``SPEC.md`` section 12.

This package never imports ``hippogym``; ``torch`` is only imported by
:mod:`hippo_format.torch`.
"""

from __future__ import annotations

from hippo_format import errors
from hippo_format._schema import FORMAT_NAME, FORMAT_VERSION
from hippo_format._version import __version__
from hippo_format.conformance import check_conformance
from hippo_format.errors import (
    ChecksumMismatchError,
    CorruptFileError,
    FormatError,
    InconsistentCountsError,
    LimitExceededError,
    ManifestError,
    MemoryChangedError,
    MissingFileError,
    NonFiniteValueError,
    SchemaError,
    SpaceError,
    TargetExistsError,
    TruncatedFileError,
    UnsafePathError,
    UnsupportedSpaceError,
    UnsupportedVersionError,
)
from hippo_format.limits import DEFAULT_LIMITS, LoadLimits, numpy_dtype_from_name
from hippo_format.migrations import MigrationContext, register_migration
from hippo_format.reader import MemoryReader, open_memory, recover_memory
from hippo_format.spaces import space_from_json, space_to_json
from hippo_format.summary import format_summary, summarize
from hippo_format.writer import write_memory

__all__ = [
    "DEFAULT_LIMITS",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ChecksumMismatchError",
    "CorruptFileError",
    "FormatError",
    "InconsistentCountsError",
    "LimitExceededError",
    "LoadLimits",
    "ManifestError",
    "MemoryChangedError",
    "MemoryReader",
    "MigrationContext",
    "MissingFileError",
    "NonFiniteValueError",
    "SchemaError",
    "SpaceError",
    "TargetExistsError",
    "TruncatedFileError",
    "UnsafePathError",
    "UnsupportedSpaceError",
    "UnsupportedVersionError",
    "__version__",
    "check_conformance",
    "errors",
    "format_summary",
    "numpy_dtype_from_name",
    "open_memory",
    "recover_memory",
    "register_migration",
    "space_from_json",
    "space_to_json",
    "summarize",
    "write_memory",
]
