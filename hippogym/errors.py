"""Every exception hippogym raises on purpose.

All of them derive from :class:`HippoError`, and every one of them is defined here (the modules that
raise them re-export their own, e.g. ``hippogym.integrations.hub.HubError``). Errors about bad input
also derive from the builtin ``ValueError`` (or ``ImportError`` for missing extras) so existing
``except ValueError`` code keeps working. Messages follow one pattern: which field, what was
expected, what arrived, what to do.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "HippoError",
    "ValidationError",
    "DimensionMismatchError",
    "CapacityError",
    "EmptyMemoryError",
    "MissingDependencyError",
    "ResetNeededError",
    "CommandError",
    "HubError",
    "HubNotFoundError",
    "HubAuthError",
    "HubPushError",
    "HubPushUnknownOutcomeError",
    "MinariDatasetNotFoundError",
    "describe",
]


class HippoError(Exception):
    """Base class of all hippogym errors."""


class ValidationError(HippoError, ValueError):
    """An argument or a field of an :class:`~hippogym.Episode` does not have the expected form.

    Attributes:
        field: Name of the offending field or argument.
        expected: What was expected, in words.
        got: What arrived, in words.
    """

    def __init__(self, field: str, expected: str, got: str, hint: str | None = None) -> None:
        self.field = field
        self.expected = expected
        self.got = got
        message = f"Expected `{field}` to be {expected}, got {got}."
        if hint:
            message += f" {hint}"
        super().__init__(message)


class DimensionMismatchError(ValidationError):
    """Two parts that must agree on a size (encoder input, embedding width, ...) do not."""


class CapacityError(HippoError, ValueError):
    """An episode cannot fit in the memory (it is longer than the whole capacity)."""


class EmptyMemoryError(HippoError, RuntimeError):
    """Sampling, retrieval or consolidation was asked of a memory that holds no transitions."""


class MissingDependencyError(HippoError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the optional package `{package}`, which is not installed. "
            f"Install it with `pip install 'hippogym[{extra}]'`."
        )


class ResetNeededError(HippoError, RuntimeError):
    """An environment was stepped before ``reset()`` or after its episode ended."""


class CommandError(HippoError):
    """A command-line command cannot run with the input it was given (exit status 1)."""


class HubError(HippoError, RuntimeError):
    """A Hub operation failed; the message names the repository, the revision and what to do.

    Attributes:
        repo_id: The repository involved.
        revision: The branch, tag or commit involved (``None``: the default branch).
        status: HTTP status of the failed request, when the server answered.
    """

    def __init__(
        self, message: str, *, repo_id: str | None = None, revision: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.repo_id = repo_id
        self.revision = revision
        self.status = status

    def __str__(self) -> str:  # OSError-based subclasses would otherwise format their args
        return str(self.args[0]) if self.args else ""


class HubNotFoundError(HubError, LookupError):
    """The repository or revision does not exist, or is private and the caller may not see it."""


class HubAuthError(HubError, PermissionError):
    """The token was rejected, or it may not write to that namespace."""


class HubPushError(HubError):
    """A push did not land: it made no commit (the Hub applies a commit whole or not at all)."""


class HubPushUnknownOutcomeError(HubPushError):
    """A push failed and the branch could not be read afterwards, so whether its commit landed is unknown.

    Check the repository history (``HfApi().list_repo_commits``) before pushing again.
    """


class MinariDatasetNotFoundError(HippoError, FileNotFoundError):
    """A Minari dataset id is not in the local datasets directory (and no download was asked)."""


def describe(value: Any) -> str:
    """Summarise a value for an error message: type, shape and dtype where it has them.

    Args:
        value: Anything.

    Returns:
        A short human-readable description such as ``"a Tensor of shape (3, 4) and dtype float32"``.
    """
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        dtype_name = str(dtype).replace("torch.", "")
        return f"a {type(value).__name__} of shape {tuple(shape)} and dtype {dtype_name}"
    if isinstance(value, dict):
        return f"a dict with keys {sorted(map(str, value))}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"
