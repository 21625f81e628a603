"""Mixture schedules: constant, linear ramp, cosine ramp, and configs."""

from __future__ import annotations

import math

import pytest

from hippogym.errors import ValidationError
from hippogym.replay.schedules import CosineSchedule, RampSchedule, make_schedule


def test_cosine_eases_between_the_ramp_ends():
    s = CosineSchedule(0.2, 0.6, warmup=10, ramp=40)
    assert s(0) == s(10) == 0.2 and s(50) == s(10_000) == 0.6
    for step in range(11, 50):
        p = (step - 10) / 40
        assert s(step) == pytest.approx(0.2 + 0.4 * (1 - math.cos(math.pi * p)) / 2)
    linear = RampSchedule(0.2, 0.6, warmup=10, ramp=40)
    assert s(15) < linear(15) and s(45) > linear(45) and s(30) == pytest.approx(linear(30))


def test_config_round_trips_through_make_schedule():
    s = CosineSchedule(0.1, 0.5, warmup=3, ramp=9)
    again = make_schedule(s.config())
    assert isinstance(again, CosineSchedule) and [again(t) for t in range(15)] == [s(t) for t in range(15)]
    with pytest.raises(ValidationError, match="cosine"):
        make_schedule({"type": "exponential"})
