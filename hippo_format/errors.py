"""Every exception raised by :mod:`hippo_format` on purpose.

All of them derive from :class:`FormatError`, itself a :class:`ValueError`, so
callers can catch one type for "this memory (or this input) is not acceptable".
A few also derive from the matching built-in :class:`OSError` subclass
(:class:`MissingFileError` is a :class:`FileNotFoundError`,
:class:`TargetExistsError` a :class:`FileExistsError`) so that code written
against plain file APIs keeps working.

Messages follow one pattern: which file or field, what was expected, what was
found, and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "ChecksumMismatchError",
    "CorruptFileError",
    "FormatError",
    "InconsistentCountsError",
    "LimitExceededError",
    "ManifestError",
    "MemoryChangedError",
    "MissingFileError",
    "NonFiniteValueError",
    "SchemaError",
    "SpaceError",
    "TargetExistsError",
    "TruncatedFileError",
    "UnsafePathError",
    "UnsupportedSpaceError",
    "UnsupportedVersionError",
]


class FormatError(ValueError):
    """Base class: a memory on disk, or the data handed to the writer, breaks the format.

    Args:
        message: What is wrong: which file or field, what was expected, what was found.
        field: The manifest field, column, tensor or file the problem is about, when one
            can be named (``"store.config.capacity"``, ``"transitions.arrow:reward"``);
            ``None`` otherwise. Also available as the :attr:`field` attribute.
    """

    def __init__(self, message: str = "", *, field: str | None = None) -> None:
        """Store the message and, when known, the field it is about."""
        super().__init__(message)
        self.field = field


class UnsupportedVersionError(FormatError):
    """The manifest names another format, or a ``format_version`` this library cannot read.

    Raised for a version newer than :data:`hippo_format.FORMAT_VERSION`, for an
    older version without a registered migration (or with ``migrate=False``),
    and for a ``format`` field other than ``"hippo-memory"``.
    """


class ManifestError(FormatError):
    """``manifest.json`` is not valid UTF-8 JSON, not an object, or has a field of the wrong type."""


class MissingFileError(FormatError, FileNotFoundError):
    """A file the memory needs (the manifest, or one listed in it) does not exist."""


class UnsafePathError(FormatError):
    """A file name in the manifest could reach outside the memory directory.

    Absolute names, names with ``..`` or empty components, backslashes, and
    symbolic links that resolve outside the directory are all refused.
    """


class ChecksumMismatchError(FormatError):
    """A file's size or SHA-256 digest differs from the one recorded in the manifest."""


class CorruptFileError(FormatError):
    """A data file cannot be parsed (bad Arrow IPC stream, bad safetensors header, ...)."""


class TruncatedFileError(CorruptFileError):
    """A data file ends before the data its own header or footer announces."""


class SchemaError(FormatError):
    """A column or tensor is missing, or has the wrong dtype, shape or Arrow type."""


class NonFiniteValueError(SchemaError):
    """A floating-point column or tensor holds NaN or an infinity where the format forbids them."""


class InconsistentCountsError(FormatError):
    """Row counts disagree: manifest vs tables vs row-aligned tensors, or episodes do not tile transitions."""


class TargetExistsError(FormatError, FileExistsError):
    """The save target exists and is not a memory directory, so it will not be replaced."""


class SpaceError(FormatError):
    """A gymnasium space cannot be turned into JSON, or its JSON description is malformed."""


class UnsupportedSpaceError(SpaceError):
    """The space type has no JSON form in this format (only Box, Discrete, MultiDiscrete, MultiBinary, Dict, Tuple)."""


class LimitExceededError(FormatError):
    """A memory asks for more than the load limits allow (see :class:`hippo_format.LoadLimits`).

    Raised before anything is allocated: a size, count, shape or nesting depth in the
    manifest or in a file header exceeds what the files actually hold or a configured
    limit. Raise the limit (``open_memory(path, limits=LoadLimits(...))``) if the memory
    comes from a source you trust.
    """


class MemoryChangedError(FormatError):
    """The memory directory kept being replaced (by concurrent saves) while it was being opened.

    A reader retries a few times; this is raised only when every attempt saw a new version.
    """
