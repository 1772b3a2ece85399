"""Query and update handlers in the engine, without a store: registration, read-only queries
and validators, update handlers as workflow tasks, and replay of histories with updates."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import durable
from durable._history import (
    CompleteUpdate, EventReceived, ScheduleAction, StateChanged, UpdateAccepted, UpdateCompleted,
)
from durable._replay import WorkflowInstance, replay
from durable.errors import (
    IllegalWorkflowOperationError, NonDeterminismError, PayloadError, UnknownQueryError,
    UnknownUpdateError, ValidationError, WorkflowClosedError,
)

from ._harness import Harness

ACTIONS = {"hx_double": lambda n: 2 * n}


@durable.action(name="hx_double")
def double(n: int) -> int:
    return 2 * n


@durable.workflow(name="HXCounter")
async def counter(ctx: durable.Context, start: int) -> int:
    total = start
    log: list[str] = []

    @ctx.on_query("total")
    def get_total() -> int:
        return total

    ctx.on_query("log", lambda: list(log))

    def positive(n: int) -> None:
        if n <= 0:
            raise ValueError(f"{n} is not positive")

    @ctx.on_update("add", validator=positive)
    async def add(n: int) -> int:
        nonlocal total
        total += await ctx.run(double, n)
        log.append(f"add {n}")
        return total

    @ctx.on_update("note")
    def note(text: str) -> int:
        log.append(text)
        return len(log)

    ctx.on_update("boom", lambda: 1 // 0)
    ctx.on_update("unencodable", lambda: object())

    @ctx.on_update("nap")
    async def nap(seconds: float) -> str:
        await ctx.sleep(seconds)
        return "rested"

    event = await ctx.wait_for("stop")
    return total + (event.payload or 0)


def accepted(rid: str, name: str, *args: Any) -> Any:
    return lambda seq, time: UpdateAccepted(seq, time, rid, name, list(args))


def completions(h: Harness) -> dict[str, UpdateCompleted]:
    return {e.id: e for e in h.history if isinstance(e, UpdateCompleted)}


def started() -> Harness:
    h = Harness(counter, 1, actions=ACTIONS)
    assert h.run() is None  # waits for "stop"
    return h


def replay_fresh(h: Harness) -> tuple[WorkflowInstance, Any]:
    instance = WorkflowInstance(h.defn, h.started)
    _, failed = replay(instance, h.history)
    return instance, failed


# ---- registration ---------------------------------------------------------------------------


def test_handlers_are_checked_when_registered() -> None:
    h = started()
    ctx = h.instance.ctx

    async def coro() -> None:
        pass

    with pytest.raises(TypeError, match="plain function"):
        ctx.on_query("async", coro)
    with pytest.raises(TypeError, match="non-empty name"):
        ctx.on_query("", lambda: 1)
    with pytest.raises(TypeError, match="non-empty name"):
        ctx.on_update(3, lambda: 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not callable"):
        ctx.on_update("x", 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="validator"):
        ctx.on_update("x", lambda: 1, validator=coro)
    ctx.on_query("total", lambda: "replaced")  # registering a name again replaces it
    assert h.instance.handlers.query("total", []) == "replaced"


# ---- queries --------------------------------------------------------------------------------


def test_a_query_answers_from_live_state_and_issues_nothing() -> None:
    h = started()
    length = len(h.history)
    assert h.instance.handlers.query("total", []) == 1
    assert len(h.history) == length and h.pending == []
    h.give(accepted("u1", "add", 5))
    h.run()
    assert [type(e).__name__ for e in h.history[length:]] == [
        "UpdateAccepted", "TaskCompleted", "ActionScheduled", "ActionCompleted", "TaskCompleted",
        "UpdateCompleted"]
    assert h.instance.handlers.query("total", []) == 11
    assert h.instance.handlers.query("log", []) == ["add 5"]


def test_unknown_handlers_list_the_known_ones() -> None:
    handlers = started().instance.handlers
    with pytest.raises(UnknownQueryError, match=r"\['log', 'total'\]") as err:
        handlers.query("missing", [])
    assert err.value.name == "missing" and err.value.known == ["log", "total"]
    with pytest.raises(UnknownUpdateError, match="'missing'"):
        handlers.validate("missing", [])


def test_query_arguments_and_results_are_checked() -> None:
    handlers = started().instance.handlers
    with pytest.raises(ValidationError, match="positional"):
        handlers.query("total", [1])
    with pytest.raises(ValidationError, match="'n'"):
        handlers.validate("add", ["five"])
    handlers.on_query("object", lambda: object())
    with pytest.raises(PayloadError, match="result of query 'object'"):
        handlers.query("object", [])


@pytest.mark.parametrize("change", [
    "ctx.set_state('x')", "ctx.data.__setitem__('k', 1)", "ctx.run(double, 1)",
    "asyncio.get_running_loop().call_soon(print)", "asyncio.get_running_loop().call_later(5, print)",
    "asyncio.ensure_future(ctx.sleep(1))", "open('/etc/hostname')",
])
def test_queries_and_validators_cannot_change_the_workflow(change: str) -> None:
    h = started()
    ctx = h.instance.ctx
    scope = {"ctx": ctx}
    ctx.on_query("meddle", lambda: eval(change, globals(), scope))
    ctx.on_update("meddle", lambda: None, validator=lambda: eval(change, globals(), scope))
    with pytest.raises(IllegalWorkflowOperationError):
        h.instance.handlers.query("meddle", [])
    with pytest.raises(IllegalWorkflowOperationError):
        h.instance.handlers.validate("meddle", [])
    assert h.instance.state is None and dict(ctx.data) == {}
    h.give(accepted("u1", "add", 2))  # numbering and history stay sound
    h.give(lambda s, t: EventReceived(s, t, "stop"))
    h.run()
    assert h.instance.done
    _, failed = replay_fresh(h)
    assert failed is None


def test_queries_leave_the_random_stream_alone() -> None:
    h = started()
    h.instance.ctx.on_query("draw", lambda: h.instance.ctx.random())
    first = h.instance.handlers.query("draw", [])
    assert h.instance.handlers.query("draw", []) == first
    assert h.instance.ctx.random() == first  # the workflow still gets the next number


# ---- updates --------------------------------------------------------------------------------


def test_validators_refuse_updates_before_anything_happens() -> None:
    h = started()
    with pytest.raises(ValueError, match="not positive"):
        h.instance.handlers.validate("add", [0])
    h.instance.handlers.validate("add", [3])
    h.instance.handlers.validate("note", ["x"])  # no validator: any fitting arguments pass
    assert h.pending == []


def test_an_ended_workflow_refuses_updates() -> None:
    h = started()
    h.give(lambda s, t: EventReceived(s, t, "stop"))
    h.run()
    with pytest.raises(WorkflowClosedError):
        h.instance.handlers.validate("note", ["late"])
    assert h.instance.handlers.query("total", []) == 1  # queries still read the final state


def test_update_handlers_run_in_order_and_complete_with_results_or_errors() -> None:
    h = started()
    h.give(accepted("a", "note", "first"))
    h.give(accepted("b", "boom"))
    h.give(accepted("c", "note", "second"))
    h.give(accepted("d", "unencodable"))
    h.run()
    done = completions(h)
    assert [done[i].result for i in "ac"] == [1, 2]
    assert done["b"].error is not None and done["b"].error.type == "ZeroDivisionError"
    assert done["d"].error is not None and done["d"].error.type == "PayloadError"
    assert h.instance.handlers.query("log", []) == ["first", "second"]
    assert h.instance.handlers.running == {}


def test_an_async_update_handler_awaits_actions_and_timers() -> None:
    h = started()
    h.give(accepted("n", "nap", 60.0))
    h.give(accepted("a", "add", 4))
    h.run()
    done = completions(h)
    assert done["n"].result == "rested" and done["a"].result == 9
    assert h.time == 1_060.0


def test_an_update_still_running_is_reported_when_the_workflow_ends() -> None:
    h = started()
    h.give(accepted("n", "nap", 60.0))
    h.activate()  # the timer is started, the handler waits on it
    assert h.instance.handlers.running == {"n": "nap"}
    h.give(lambda s, t: EventReceived(s, t, "stop"))
    h.activate()
    assert h.instance.done and h.instance.handlers.running == {"n": "nap"}


# ---- replay ---------------------------------------------------------------------------------


def test_a_history_with_updates_replays_to_the_same_state() -> None:
    h = started()
    h.give(accepted("a", "add", 5))
    h.give(accepted("b", "note", "hi"))
    h.give(accepted("c", "nap", 1.0))
    h.run()
    instance, failed = replay_fresh(h)
    assert failed is None
    assert instance.handlers.query("total", []) == 11
    assert instance.handlers.query("log", []) == ["hi", "add 5"]  # "add" awaited an action
    assert instance.handlers.seen == {"a", "b", "c"} and instance.handlers.running == {}


@durable.workflow(name="HXCounter")
async def counter_without_add(ctx: durable.Context, start: int) -> int:
    await ctx.wait_for("stop")
    return start


@durable.workflow(name="HXCounter")
async def counter_that_logs_first(ctx: durable.Context, start: int) -> int:
    @ctx.on_update("note")
    def note(text: str) -> int:
        ctx.set_state(text)  # a new command before the recorded completion
        return 1

    await ctx.wait_for("stop")
    return start


durable.workflow(name="HXCounter")(counter)  # the registry keeps the real one


def test_an_accepted_update_without_its_handler_is_a_divergence() -> None:
    h = started()
    h.give(accepted("a", "add", 5))
    h.run()
    instance = WorkflowInstance(durable._definitions.workflow_definition(counter_without_add),
                                h.started)
    _, failed = replay(instance, h.history)  # returns the divergence, never raises
    assert isinstance(failed.error, NonDeterminismError)
    assert isinstance(failed.error.recorded, UpdateAccepted)
    assert "no update handler 'add'" in str(failed.error)


def test_an_update_handler_that_changed_is_a_divergence() -> None:
    h = started()
    h.give(accepted("a", "note", "hi"))
    h.run()
    instance = WorkflowInstance(durable._definitions.workflow_definition(counter_that_logs_first),
                                h.started)
    _, failed = replay(instance, h.history)
    assert isinstance(failed.error, NonDeterminismError)
    assert isinstance(failed.error.recorded, UpdateCompleted)
    assert type(failed.error.command).__name__ == "SetState"


@durable.workflow(name="HXStopsShort")
async def stops_short(ctx: durable.Context) -> None:
    await ctx.wait_for("stop")


def test_recorded_commands_the_code_no_longer_issues_end_the_activation_cleanly() -> None:
    h = Harness(stops_short)
    h.run()
    # As recorded by an older version that also set a state before waiting.
    h.history.insert(2, StateChanged(3, 1_000.0, "waiting"))
    instance = WorkflowInstance(h.defn, h.started)
    _, failed = replay(instance, h.history)
    assert isinstance(failed.error, NonDeterminismError)
    assert isinstance(failed.error.recorded, StateChanged)
    assert failed.error.command is None


def test_commands_of_update_handlers_are_numbered_with_the_workflow() -> None:
    h = started()
    h.give(accepted("a", "add", 1))
    h.give(accepted("b", "add", 2))
    h.run()
    scheduled = [c for batch in h.trace for c in batch if isinstance(c, ScheduleAction)]
    assert [c.cmd for c in scheduled] == [0, 1]
    assert [type(c) for c in h.trace[-1]] == [CompleteUpdate, CompleteUpdate]
