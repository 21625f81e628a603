"""Argument validation helpers shared by the built-in environments.

Every helper raises :class:`hippogym.errors.ValidationError` (a ``ValueError``) with a message of
the form ``"Expected `name` to be <requirement>, got <value>."`` so that callers can see at a
glance which argument was wrong and why.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

from hippogym.errors import ValidationError

RENDER_MODES: tuple[str, ...] = ("ansi",)


def invalid_argument(name: str, requirement: str, value: object) -> ValidationError:
    """Build the standard validation error.

    Args:
        name: Name of the offending argument.
        requirement: Human readable description of the accepted values.
        value: The value that was rejected.

    Returns:
        A :class:`~hippogym.errors.ValidationError` ready to be raised.
    """
    return ValidationError(name, requirement, repr(value))


def is_int(value: object) -> bool:
    """Return whether ``value`` is an integer (``bool`` excluded).

    Args:
        value: Object to test.

    Returns:
        ``True`` for Python and NumPy integers, ``False`` otherwise.
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(name: str, value: object, *, minimum: int) -> int:
    """Validate an integer argument with a lower bound.

    Args:
        name: Argument name used in the error message.
        value: Value to validate.
        minimum: Smallest accepted value (inclusive).

    Returns:
        ``value`` converted to a Python ``int``.

    Raises:
        ValidationError: If ``value`` is not an integer or is below ``minimum``.
    """
    if not is_int(value) or int(value) < minimum:  # type: ignore[call-overload]
        raise invalid_argument(name, f"an int >= {minimum}", value)
    return int(value)  # type: ignore[call-overload]


def check_optional_int(name: str, value: object, *, minimum: int) -> int | None:
    """Validate an optional integer argument with a lower bound.

    Args:
        name: Argument name used in the error message.
        value: Value to validate, or ``None``.
        minimum: Smallest accepted value (inclusive).

    Returns:
        ``None`` or ``value`` converted to a Python ``int``.

    Raises:
        ValidationError: If ``value`` is neither ``None`` nor an integer >= ``minimum``.
    """
    if value is None:
        return None
    if not is_int(value) or int(value) < minimum:  # type: ignore[call-overload]
        raise invalid_argument(name, f"None or an int >= {minimum}", value)
    return int(value)  # type: ignore[call-overload]


def _as_finite_float(value: object) -> float | None:
    """Convert a real, non-boolean number to a finite float.

    Args:
        value: Object to convert.

    Returns:
        The float, or ``None`` if ``value`` is not a finite real number.
    """
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return None
    result = float(value)
    if not math.isfinite(result):
        return None
    return result


def check_probability(name: str, value: object) -> float:
    """Validate a probability in the closed interval ``[0, 1]``.

    Args:
        name: Argument name used in the error message.
        value: Value to validate.

    Returns:
        ``value`` as a Python ``float``.

    Raises:
        ValidationError: If ``value`` is not a real number in ``[0, 1]``.
    """
    result = _as_finite_float(value)
    if result is None or not 0.0 <= result <= 1.0:
        raise invalid_argument(name, "a float in [0, 1]", value)
    return result


def check_fraction(name: str, value: object) -> float:
    """Validate a fraction in the half-open interval ``(0, 1]``.

    Args:
        name: Argument name used in the error message.
        value: Value to validate.

    Returns:
        ``value`` as a Python ``float``.

    Raises:
        ValidationError: If ``value`` is not a real number in ``(0, 1]``.
    """
    result = _as_finite_float(value)
    if result is None or not 0.0 < result <= 1.0:
        raise invalid_argument(name, "a float in (0, 1]", value)
    return result


def check_non_negative_float(name: str, value: object) -> float:
    """Validate a finite, non-negative real number.

    Args:
        name: Argument name used in the error message.
        value: Value to validate.

    Returns:
        ``value`` as a Python ``float``.

    Raises:
        ValidationError: If ``value`` is not a finite real number >= 0.
    """
    result = _as_finite_float(value)
    if result is None or result < 0.0:
        raise invalid_argument(name, "a finite float >= 0", value)
    return result


def check_bool(name: str, value: object) -> bool:
    """Validate a boolean flag.

    Args:
        name: Argument name used in the error message.
        value: Value to validate.

    Returns:
        ``value`` unchanged.

    Raises:
        ValidationError: If ``value`` is not a ``bool``.
    """
    if not isinstance(value, bool):
        raise invalid_argument(name, "a bool", value)
    return value


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """Validate that a string argument is one of a fixed set of options.

    Args:
        name: Argument name used in the error message.
        value: Value to validate.
        choices: Accepted values.

    Returns:
        ``value`` unchanged.

    Raises:
        ValidationError: If ``value`` is not one of ``choices``.
    """
    if not isinstance(value, str) or value not in choices:
        raise invalid_argument(name, f"one of {tuple(choices)!r}", value)
    return value


def check_render_mode(value: object) -> str | None:
    """Validate the ``render_mode`` constructor argument.

    Args:
        value: Requested render mode.

    Returns:
        ``None`` or the validated render mode.

    Raises:
        ValidationError: If ``value`` is neither ``None`` nor a supported mode.
    """
    if value is None:
        return None
    if not isinstance(value, str) or value not in RENDER_MODES:
        raise invalid_argument("render_mode", f"None or one of {RENDER_MODES!r}", value)
    return value


def check_lengths(name: str, value: object, *, minimum: int) -> tuple[int, ...]:
    """Validate a non-empty, strictly increasing sequence of corridor lengths.

    Args:
        name: Argument name used in the error message.
        value: Value to validate.
        minimum: Smallest accepted length (inclusive).

    Returns:
        The lengths as a tuple of Python ints.

    Raises:
        ValidationError: If ``value`` is not such a sequence.
    """
    requirement = f"a non-empty, strictly increasing sequence of ints >= {minimum}"
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) == 0:
        raise invalid_argument(name, requirement, value)
    if not all(is_int(item) and int(item) >= minimum for item in value):
        raise invalid_argument(name, requirement, value)
    result = tuple(int(item) for item in value)
    if any(later <= earlier for earlier, later in zip(result, result[1:])):
        raise invalid_argument(name, requirement, value)
    return result
