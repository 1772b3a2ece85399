"""Flow-control options: what they accept, and the typed errors for what they do not."""

from __future__ import annotations

from typing import Any

import pytest

import durable
from durable._limits import Limit, parse_rate, room
from durable.errors import ArgumentTypeError, ValidationError


@pytest.mark.parametrize("rate, per_second", [
    ("100/s", 100.0), ("30/m", 0.5), ("36/h", 0.01), (" 2.5 / s ", 2.5), (".5/s", 0.5)])
def test_rates(rate: str, per_second: float) -> None:
    assert parse_rate(rate) == pytest.approx(per_second)


@pytest.mark.parametrize("rate, error", [
    ("0/s", ValidationError), ("-1/s", ValidationError), ("10", ValidationError),
    ("10/d", ValidationError), ("ten/s", ValidationError), ("", ValidationError),
    ("1e999/s", ValidationError), (10, ArgumentTypeError), (b"10/s", ArgumentTypeError),
])
def test_malformed_rates_are_typed_errors(rate: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        durable.action(rate=rate)


@pytest.mark.parametrize("value, error", [
    (0, ValidationError), (-5, ValidationError), (1.5, ArgumentTypeError),
    (True, ArgumentTypeError), ("5", ArgumentTypeError),
])
def test_bad_concurrency_limits_are_typed_errors(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        durable.action(max_concurrent=value)


def test_room_takes_the_tighter_limit() -> None:
    assert room(Limit(5, None), running=3, tokens=0.0, wanted=10) == 2
    assert room(Limit(None, 10.0), running=99, tokens=2.7, wanted=10) == 2
    assert room(Limit(5, 10.0), running=5, tokens=9.0, wanted=10) == 0
