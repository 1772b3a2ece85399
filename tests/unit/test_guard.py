"""The determinism guard: calls that would replay differently are reported at decoration and
by ``durable lint``, with ``file:line`` and what to use instead."""

from __future__ import annotations

import importlib
import sys
import warnings
from pathlib import Path

import pytest

import durable
from durable._guard import check

with warnings.catch_warnings():  # the samples are meant to be reported: quietly, here
    warnings.simplefilter("ignore", durable.NondeterministicCallWarning)
    from . import _guard_samples as samples

HERE = Path(samples.__file__)


def _line(text: str) -> int:
    return next(n for n, line in enumerate(HERE.read_text().splitlines(), 1) if text in line)


def test_each_call_is_found_with_its_line_and_what_to_use_instead() -> None:
    clock = check(samples.reads_the_clock)
    assert [(f.line, f.call) for f in clock] == [
        (_line("datetime.datetime.now()"), "datetime.datetime.now()"),
        (_line("date.today()"), "date.today()"),
        (_line("clock.time()"), "clock.time()"),
    ]
    assert all(f.file == str(HERE) and "ctx.now()" in f.instead for f in clock)
    chance = {f.call: f for f in check(samples.draws_at_random)}
    assert set(chance) == {"uuid.uuid4()", "os.environ", "random.randint()"}
    assert "ctx.uuid4()" in chance["uuid.uuid4()"].instead
    assert "action" in chance["os.environ"].instead
    assert chance["random.randint()"].line == _line("random.randint(1, 6)")  # nested function


def test_what_replays_identically_is_not_reported() -> None:
    assert check(samples.clean) == []  # ctx.now(), ctx.random(), ctx.uuid4()
    assert "SEEDED.random()" not in {f.call for f in check(samples.draws_at_random)}


def test_decorating_warns_at_the_line_of_the_call() -> None:
    sys.modules.pop(samples.__name__, None)
    with pytest.warns(durable.NondeterministicCallWarning) as caught:
        importlib.import_module(samples.__name__)
    lines = {(Path(w.filename).name, w.lineno) for w in caught}
    assert ("_guard_samples.py", _line("clock.time()")) in lines
    assert any("GuardSampleChance" in str(w.message) and "uuid.uuid4()" in str(w.message)
               for w in caught)


def test_a_function_without_source_is_not_an_error() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check(len) == []
