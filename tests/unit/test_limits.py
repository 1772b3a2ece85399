"""Flow-control options: what they accept, and the typed errors for what they do not."""

from __future__ import annotations

from typing import Any

import pytest

import durable
from durable._limits import UNBOUNDED, Hold, Limit, RouteLimit, grant, parse_rate, room
from durable._queues import route
from durable._stores.memory import MemoryStore
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


@pytest.mark.parametrize("options, error", [
    ({}, ValidationError), ({"max_concurrent": 0}, ValidationError),
    ({"max_concurrent": -5}, ValidationError), ({"max_concurrent": 2.5}, ArgumentTypeError),
    ({"max_concurrent": "5"}, ArgumentTypeError), ({"rate": "fast"}, ValidationError),
    ({"rate": "0/m"}, ValidationError), ({"rate": 100}, ArgumentTypeError),
])
def test_bad_queue_limits_are_typed_errors(options: dict[str, Any],
                                           error: type[Exception]) -> None:
    with pytest.raises(error):
        durable.QueueLimit(**options)


@durable.action(name="LimitsMail", queue="mail")
async def mail() -> None: ...


@pytest.mark.parametrize("queue_limits, queues, error", [
    ([("mail", durable.QueueLimit(1))], None, ArgumentTypeError),
    ({"mail": 5}, None, ArgumentTypeError),
    ({"mail": {"max_concurrent": 5}}, None, ArgumentTypeError),
    ({5: durable.QueueLimit(1)}, None, ArgumentTypeError),
    ({"": durable.QueueLimit(1)}, None, ValidationError),
    ({"sms": durable.QueueLimit(1)}, None, ValidationError),  # not served by this worker
    ({"mail": durable.QueueLimit(1)}, ["sms"], ValidationError),
])
async def test_bad_worker_queue_limits_are_typed_errors(queue_limits: Any, queues: Any,
                                                        error: type[Exception]) -> None:
    async with durable.Client(MemoryStore()) as client:
        with pytest.raises(error):
            durable.Worker(client, [], [mail], queue_limits=queue_limits, queues=queues)


async def test_worker_queue_limits_bound_the_routes_on_the_queue() -> None:
    async with durable.Client(MemoryStore()) as client:
        worker = durable.Worker(client, [], [mail], queues=["mail", "other"], queue_limits={
            "mail": durable.QueueLimit(max_concurrent=5, rate="100/s")})
        assert worker.queue_limits == {"mail": Limit(5, 100.0)}
        assert dict(worker._spec.limits) == {route("LimitsMail", "mail"):
                                             RouteLimit(None, Limit(5, 100.0))}
    assert durable.QueueLimit(5) == durable.QueueLimit(max_concurrent=5)
    assert durable.QueueLimit(rate="60/m").limit == Limit(None, 1.0)


def test_grants_keep_slots_in_use_and_take_ahead_from_half_the_room() -> None:
    limit = Limit(max_concurrent=10, rate=None)
    assert grant(Hold("b", limit, used=4, need=2, extra=100), 0, 0.0) == (4 + 2 + 2, 0)
    assert grant(Hold("b", limit, used=4, need=2, extra=0), 9, 0.0) == (4, 0)  # none new
    assert grant(Hold("b", Limit(None, 10.0), 0, 3, 3), 0, 5.5) == (UNBOUNDED, 3 + 1)
