"""``ctx.continue_as_new`` in the engine: the run ends with the next run's arguments."""

from __future__ import annotations

import asyncio
import uuid
import durable
from durable._history import (
    ContinueAsNew, EventReceived, FailWorkflow, ScheduleAction, WorkflowContinuedAsNew,
    WorkflowStarted,
)
from durable._worker._effects import continuation

from ._harness import Harness, replay_fresh

ACTIONS = {"tick": lambda n: n}


@durable.action
async def tick(n: int) -> int:
    return n


@durable.workflow(name="Countdown")
async def countdown(ctx: durable.Context, n: int, note: str = "") -> int:
    await ctx.run(tick, n)
    if n > 0:
        ctx.continue_as_new(n - 1)
    return n


def test_the_run_ends_with_the_next_runs_arguments_and_replays() -> None:
    h = Harness(countdown, 3, actions=ACTIONS)
    outcome = h.run()
    next_run = uuid.uuid5(uuid.NAMESPACE_URL, "durable:run-1:next").hex
    assert outcome == ContinueAsNew(next_run, [2], {})
    assert isinstance(h.history[-1], WorkflowContinuedAsNew)
    assert h.history[-1].run_id == next_run and h.history[-1].args == [2]
    instance, failed = replay_fresh(h)
    assert failed is None and instance.done and instance.outcome == outcome


def test_the_next_run_starts_from_the_arguments_with_the_code_of_today() -> None:
    h = Harness(countdown, 1, actions=ACTIONS)
    h.run()
    [start], carried = continuation(h.instance)
    started = start.started
    assert carried == [] and start.on_started is None and start.on_exists is None
    assert (started.workflow, started.version, started.workflow_id, started.tenant) == (
        "Countdown", "1", "wf-1", "t")
    assert (started.run_id, started.args, started.continued_from) == (
        h.history[-1].run_id, [0], "run-1")
    h2 = Harness(countdown, 0, actions=ACTIONS)
    h2.started = WorkflowStarted(1, 0.0, *[getattr(started, f) for f in
                                            started.__struct_fields__[2:]])
    from durable._replay import WorkflowInstance

    h2.instance = WorkflowInstance(h2.defn, h2.started)
    h2.history, h2.pending = [h2.started], [h2.started]
    assert h2.run().result == 0
    assert h2.instance.info.continued_from == "run-1"


def test_arguments_are_validated_where_continue_as_new_is_called() -> None:
    @durable.workflow(name="BadContinue")
    async def bad(ctx: durable.Context, n: int) -> str:
        try:
            ctx.continue_as_new("not an int")
        except durable.errors.ValidationError as exc:
            return f"rejected {exc.parameter}"
        return "continued"

    assert Harness(bad, 1).run().result == "rejected n"

    @durable.workflow(name="TooManyArguments")
    async def too_many(ctx: durable.Context, n: int) -> None:
        ctx.continue_as_new(1, 2)

    outcome = Harness(too_many, 1).run()
    assert isinstance(outcome, FailWorkflow) and outcome.error.type == "ValidationError"
    assert "positional" in outcome.error.message


def test_except_exception_does_not_swallow_it_and_finally_blocks_run() -> None:
    cleaned: list[str] = []

    @durable.workflow(name="Guarded")
    async def guarded(ctx: durable.Context, n: int) -> str:
        try:
            try:
                ctx.continue_as_new(n + 1)
            except Exception:  # noqa: BLE001 - the point of the test
                return "swallowed"
        finally:
            cleaned.append("finally")
        return "unreachable"

    outcome = Harness(guarded, 1).run()
    assert isinstance(outcome, ContinueAsNew) and outcome.args == [2]
    assert cleaned == ["finally"]


def test_it_propagates_from_an_awaited_task() -> None:
    @durable.workflow(name="FromATask")
    async def from_a_task(ctx: durable.Context, n: int) -> None:
        async def inner() -> None:
            await ctx.run(tick, n)
            ctx.continue_as_new(n + 1)

        await asyncio.gather(asyncio.create_task(inner()))

    assert isinstance(Harness(from_a_task, 1, actions=ACTIONS).run(), ContinueAsNew)


def test_events_not_taken_yet_are_carried_to_the_next_run_in_order() -> None:
    @durable.workflow(name="Mailbox")
    async def mailbox(ctx: durable.Context, seen: int) -> int:
        await ctx.wait_for("letter")
        ctx.continue_as_new(seen + 1)

    h = Harness(mailbox, 0)
    for i, key in enumerate(["k1", None, "k3"]):
        h.give(lambda s, t, i=i, key=key: EventReceived(s, t, "letter", i, key))
    h.give(lambda s, t: EventReceived(s, t, "other", "x"))
    assert isinstance(h.run(), ContinueAsNew)
    _, carried = continuation(h.instance)
    assert [(s.event.name, s.event.payload, s.event.key, s.dedup) for s in carried] == [
        ("letter", 1, None, None), ("letter", 2, "k3", "ek3"), ("other", "x", None, None)]
    assert {s.run_id for s in carried} == {h.instance.outcome.run_id}
    assert all((s.event.seq, s.event.time) == (0, 0.0) for s in carried)


def test_a_call_still_running_is_cancelled_before_the_run_ends() -> None:
    @durable.workflow(name="Abandons")
    async def abandons(ctx: durable.Context, n: int) -> None:
        slow = asyncio.ensure_future(ctx.run(tick, n))
        await asyncio.sleep(1)
        slow.cancel()
        ctx.continue_as_new(n + 1)

    h = Harness(abandons, 1)
    [scheduled, _] = h.activate()
    assert isinstance(scheduled, ScheduleAction)
    h.fire_next_timer()
    commands = h.activate()
    assert [type(c).__name__ for c in commands] == ["CancelAction", "ContinueAsNew"]
    instance, failed = replay_fresh(h)
    assert failed is None and instance.done


@durable.workflow(name="Ticker")
async def ticker(ctx: durable.Context, n: int) -> None:
    await ctx.wait_for("tick")
    ctx.continue_as_new(n + 1)


async def test_a_worker_caching_the_old_run_never_feeds_it_the_new_runs_events() -> None:
    """Worker A caches run 1 where it waits; B continues it as run 2, which waits at the same
    seq; a tick for run 2 then reaches A: A must rebuild from run 2, not resume run 1."""
    async with durable.connect("memory://") as client:
        a = durable.Worker(client, [ticker], [])
        b = durable.Worker(client, [ticker], [])
        handle = await client.start(ticker, 0, id="ticker")
        await a.run_until_idle()  # A caches run 1, waiting for a tick
        assert len(a.cache) == 1
        await handle.send("tick")
        await b.run_until_idle()  # B continues it: run 2 waits at the very same seq
        second = await handle.history()
        assert second[0].args == [1] and len(second) == 2
        await handle.send("tick")
        await a.run_until_idle()  # A's cached run 1 is stale
        third = await handle.history()
        assert isinstance(third[0], WorkflowStarted) and third[0].args == [2]
        assert third[0].continued_from == second[0].run_id
        ended = await handle.history(run_id=second[0].run_id)
        assert isinstance(ended[-1], WorkflowContinuedAsNew) and ended[-1].args == [2]
