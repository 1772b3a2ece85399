"""When a worker looks for its limited routes' tasks (``durable._dispatch._limited.Looks``):
not on every claim, but at once when told, and never later than IDLE."""

from __future__ import annotations

from durable._dispatch._limited import IDLE, Looks
from durable._limits import Limit, RouteLimit

FIVE = RouteLimit(Limit(max_concurrent=5))
RATED = RouteLimit(None, Limit(rate=50.0))


def test_a_route_is_looked_at_until_a_look_finds_it_empty_then_every_idle_period() -> None:
    looks = Looks()
    assert looks.due(["b", "a"], 100.0) == ["a", "b"]
    looks.looked("a", FIVE, asked=10, found=10, now=100.0)  # full: more may wait
    looks.looked("b", FIVE, asked=10, found=0, now=100.0)
    assert looks.due(["a", "b"], 100.0) == ["a"]
    assert looks.due(["a", "b"], 100.0 + IDLE / 2) == ["a"]
    assert looks.due(["a", "b"], 100.0 + IDLE) == ["a", "b"]
    assert looks.wait(100.0) is None  # nothing for a claim to wake up for


def test_a_hint_or_an_ended_attempt_makes_a_route_due_at_once() -> None:
    looks = Looks()
    looks.looked("a", FIVE, asked=10, found=3, now=100.0)  # a concurrency limit held it back
    assert looks.due(["a"], 100.01) == []
    looks.mark("a")
    assert looks.due(["a"], 100.01) == ["a"]


def test_a_rate_held_route_is_looked_at_when_its_next_token_is_due() -> None:
    looks = Looks()
    looks.looked("r", RATED, asked=10, found=5, now=100.0)  # the burst, then the rate
    assert looks.due(["r"], 100.01) == []
    assert looks.due(["r"], 100.02) == ["r"]  # one token at 50/s
    wait = looks.wait(100.0)
    assert wait is not None and abs(wait - 0.02) < 1e-9
    looks.looked("r", RATED, asked=10, found=0, now=100.02)  # nothing more: back to idle
    assert looks.wait(100.02) is None
    assert looks.due(["r"], 100.02 + IDLE / 2) == []
