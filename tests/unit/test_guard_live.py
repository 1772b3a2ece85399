"""The determinism guard at run time (``durable._guard_live``, ``Worker(determinism=)``): calls
that break replay are reported where workflow code makes them while it runs live, never in
replay; ``"error"`` raises at the call; what the standard library does for the code (logging's
clock) and a generator of the code's own are not reported."""

from __future__ import annotations

import datetime
import logging
import os
import random
import time
import uuid
import warnings
from typing import Any, Callable

import pytest

import durable
from durable._definitions import workflow_definition
from durable._guard import NondeterministicCallWarning
from durable._history import WorkflowStarted
from durable._guard_live import Sampler
from durable._replay import WorkflowInstance, replay
from durable._stores.memory import MemoryStore
from durable.errors import InvalidArgumentError, WorkflowFailedError

# Reached through a dict: the static check (at decoration) cannot resolve them.
CALLS: dict[str, Callable[[], Any]] = {"clock": time.time, "now": datetime.datetime.now,
                                       "random": random.random, "uuid": uuid.uuid4}
LINES: dict[str, int] = {}


def _line(tag: str) -> int:
    """The line of the caller (recorded under ``tag``)."""
    import inspect

    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    LINES[tag] = frame.f_back.f_lineno
    return 0


def env_reader(name: str) -> str | None:
    return getattr(os, "environ").get(name)


@durable.workflow(name="GuardLive")
async def guarded(ctx: durable.Context, rounds: int) -> list[Any]:
    seen: list[Any] = []
    for _ in range(rounds):
        seen.append(CALLS["clock"]()); _line("clock")  # noqa: E702 - one line: the call site
        seen.append(CALLS["now"]().year); _line("now")  # noqa: E702
        seen.append(CALLS["random"]()); _line("random")  # noqa: E702
        seen.append(str(CALLS["uuid"]())); _line("uuid")  # noqa: E702
        seen.append(env_reader("HOME"))
        seen.append(random.Random(7).random())  # its own generator, seeded: deterministic
        logging.getLogger("guard-live").info("logging reads the clock")  # the stdlib's own
        ctx.logger.info("so does ctx.logger")
        await ctx.sleep(0.01)
    return seen


@durable.workflow(name="GuardLiveStrict")
async def strict(ctx: durable.Context, catch: bool) -> str:
    if catch:
        try:
            CALLS["clock"]()
        except durable.errors.IllegalWorkflowOperationError as exc:
            return f"caught: {exc.operation}"
    CALLS["clock"]()
    return "not reached"


async def _run(workflow: Any, *args: Any, determinism: Any = "warn") -> tuple[Any, list[Any]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with durable.Client(MemoryStore(), poll_interval=0.01) as client:
            async with durable.Worker(client, [workflow], poll_interval=0.01,
                                      determinism=determinism):
                handle = await client.start(workflow, *args)
                try:
                    result = await handle.result(timeout=10)
                except WorkflowFailedError as exc:
                    result = exc
    return result, [w for w in caught if issubclass(w.category, NondeterministicCallWarning)]


async def test_live_calls_are_reported_once_each_at_their_line() -> None:
    _, reported = await _run(guarded, 3)
    where = {(w.filename, w.lineno): str(w.message) for w in reported}
    assert len(reported) == len(where)  # once per call site, whatever the rounds
    expected = {
        LINES["clock"]: "time.time()", LINES["now"]: "datetime.datetime.now()",
        LINES["random"]: "random.random()", LINES["uuid"]: "uuid.uuid4()",
        env_reader.__code__.co_firstlineno + 1: "os.environ.get()",
    }
    assert {line: text.split(" ")[0] for (_, line), text in where.items()} == expected
    assert {file for file, _ in where} == {__file__}
    assert all("ctx." in text or "action" in text for text in where.values())


async def test_error_mode_raises_at_the_call() -> None:
    failed, _ = await _run(strict, False, determinism="error")
    assert isinstance(failed, WorkflowFailedError)
    assert failed.error_type == "IllegalWorkflowOperationError"
    assert "time.time()" in failed.error_message and f"{__file__}:" in failed.error_message
    caught, _ = await _run(strict, True, determinism="error")
    assert caught == "caught: time.time()"
    quiet, reported = await _run(guarded, 1, determinism="off")
    assert reported == [] and len(quiet) == 6


async def test_replay_is_not_watched() -> None:
    async with durable.Client(MemoryStore(), poll_interval=0.01) as client:
        async with durable.Worker(client, [guarded], poll_interval=0.01, determinism="off"):
            handle = await client.start(guarded, 2)
            await handle.result(timeout=10)
        events = list(await handle.history())
    started = events[0]
    assert isinstance(started, WorkflowStarted)
    instance = WorkflowInstance(workflow_definition(guarded), started, determinism="error")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, failed = replay(instance, events)  # "error": any watched call would fail it
    instance.close()
    assert failed is None and instance.done
    assert not [w for w in caught if issubclass(w.category, NondeterministicCallWarning)]


def test_a_mode_that_does_not_exist_is_a_typed_error() -> None:
    with pytest.raises(InvalidArgumentError, match="determinism"):
        durable.Worker(durable.Client(MemoryStore()), [guarded], determinism="strict")  # type: ignore[arg-type]


def test_warn_watches_each_paths_first_activations_then_samples() -> None:
    sampler = Sampler("warn")
    watched = [sampler.mode_for("Flow", "flow.py:3") == "warn" for _ in range(200)]
    assert watched[:Sampler.SAMPLE_FIRST] == [True] * Sampler.SAMPLE_FIRST
    assert sum(watched) == Sampler.SAMPLE_FIRST + 200 // Sampler.SAMPLE_EVERY
    assert sampler.mode_for("Flow", "flow.py:9") == "warn"  # another path: watched from its start
    assert sampler.mode_for("Other", "flow.py:3") == "warn"
    assert {Sampler("error").mode_for("Flow", None) for _ in range(100)} == {"error"}
    assert {Sampler("off").mode_for("Flow", None) for _ in range(100)} == {"off"}
