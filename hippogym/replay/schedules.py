"""Schedules for the share of semantic draws (``mixture_ratio``) as a function of env steps."""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Union

from hippogym.errors import ValidationError

__all__ = ["ConstantSchedule", "CosineSchedule", "RampSchedule", "MixtureSchedule", "make_schedule"]


class ConstantSchedule:
    """Always the same ratio."""

    def __init__(self, value: float) -> None:
        if not 0.0 <= float(value) <= 1.0:
            raise ValidationError("mixture_ratio", "a float in [0, 1]", repr(value))
        self.value = float(value)

    def __call__(self, step: int) -> float:  # noqa: D102
        return self.value

    def config(self) -> dict[str, Any]:  # noqa: D102
        return {"type": "constant", "value": self.value}


class RampSchedule:
    """Start low, then ramp linearly: the recommended schedule (0.2 ramping to 0.5).

    Early on the key space is untrained and the memory small, so semantic draws are few; after
    ``warmup`` env steps the ratio rises linearly to ``end`` over ``ramp`` steps.

    Args:
        start: Ratio during warm-up.
        end: Final ratio.
        warmup: Env steps before the ramp starts.
        ramp: Env steps the ramp lasts.

    Example:
        >>> s = RampSchedule(0.2, 0.5, warmup=100, ramp=100)
        >>> s(0), s(150), s(1000)
        (0.2, 0.35, 0.5)
    """

    def __init__(self, start: float = 0.2, end: float = 0.5, warmup: int = 10_000, ramp: int = 40_000) -> None:
        for name, value in (("start", start), ("end", end)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValidationError(name, "a float in [0, 1]", repr(value))
        if warmup < 0 or ramp < 0:
            raise ValidationError("warmup/ramp", "ints >= 0", f"{warmup}/{ramp}")
        self.start, self.end, self.warmup, self.ramp = float(start), float(end), int(warmup), int(ramp)

    def __call__(self, step: int) -> float:  # noqa: D102
        if step <= self.warmup:
            return self.start
        if self.ramp == 0 or step >= self.warmup + self.ramp:
            return self.end
        return round(self.start + (self.end - self.start) * (step - self.warmup) / self.ramp, 10)

    def config(self) -> dict[str, Any]:  # noqa: D102
        return {"type": "ramp", "start": self.start, "end": self.end, "warmup": self.warmup, "ramp": self.ramp}


class CosineSchedule(RampSchedule):
    """Like :class:`RampSchedule`, but the ramp eases in and out along half a cosine.

    After ``warmup`` steps the ratio moves from ``start`` to ``end`` as
    ``start + (end - start) * (1 - cos(pi * p)) / 2`` with ``p`` the ramp progress: slow at both
    ends, so the semantic share neither jumps when the keys are still young nor overshoots late.

    Args:
        start: Ratio during warm-up.
        end: Final ratio.
        warmup: Env steps before the ramp starts.
        ramp: Env steps the ramp lasts.

    Example:
        >>> s = CosineSchedule(0.2, 0.6, warmup=100, ramp=100)
        >>> s(0), s(150), s(175), s(1000)
        (0.2, 0.4, 0.5414213562, 0.6)
    """

    def __call__(self, step: int) -> float:  # noqa: D102
        if step <= self.warmup:
            return self.start
        if self.ramp == 0 or step >= self.warmup + self.ramp:
            return self.end
        eased = 0.5 * (1.0 - math.cos(math.pi * (step - self.warmup) / self.ramp))
        return round(self.start + (self.end - self.start) * eased, 10)

    def config(self) -> dict[str, Any]:  # noqa: D102
        return {**super().config(), "type": "cosine"}


MixtureSchedule = Union[float, ConstantSchedule, RampSchedule, CosineSchedule, Callable[[int], float]]


def make_schedule(spec: MixtureSchedule | Mapping[str, Any]) -> Callable[[int], float]:
    """A float, a config dict (``{"type": "ramp", ...}``), or any callable ``step -> ratio``."""
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return ConstantSchedule(float(spec))
    if isinstance(spec, Mapping):
        kwargs = {k: v for k, v in spec.items() if k != "type"}
        if spec.get("type") == "constant":
            return ConstantSchedule(**kwargs)
        if spec.get("type") == "ramp":
            return RampSchedule(**kwargs)
        if spec.get("type") == "cosine":
            return CosineSchedule(**kwargs)
        expected = "a 'constant', 'ramp' or 'cosine' schedule config"
        raise ValidationError("mixture_ratio", expected, repr(spec.get("type")))
    if callable(spec):
        return spec
    raise ValidationError("mixture_ratio", "a float in [0, 1], a schedule or a callable", repr(spec))
