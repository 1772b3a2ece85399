"""Properties of the public API under arbitrary input (issue 12): every call either works or
raises a ``durable.errors`` error, and afterwards every execution still decodes (``history()``,
``describe()``) and can be finished.

The client, handle and ``Worker`` properties run on one ``durable.testing.Environment`` per
property (a memory store in virtual time), shared by its examples; the workflow-side
properties run a workflow per example whose calls get the arbitrary values, and replay its
history afterwards. ``test_store_properties.py`` has the SQLite and PostgreSQL ones.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

import durable
from durable.errors import DurableError, RequestTimeoutError
from durable.testing import Environment

from ._strategies import durations, ids, mix, numbers, payloads, texts, values


@durable.workflow(name="PropWaiter")
async def waiter(ctx: durable.Context, *args: Any) -> str:
    ctx.on_query("echo", lambda *a: list(a))
    ctx.on_update("take", lambda *a: len(a))
    await ctx.wait_for("Go")
    return "done"


@durable.action(name="prop_echo")
async def echo(value: Any) -> Any:
    return value


@pytest.fixture
async def env() -> AsyncIterator[Environment]:
    async with Environment(workflows=[waiter, prober, child], actions=[echo],
                           tenants="*") as env:
        yield env


async def works_or_typed(call: Awaitable[Any] | Callable[[], Any],
                         allow: type[BaseException] | tuple[type[BaseException], ...] = (),
                         ) -> tuple[bool, Any]:
    """(True, result) if the call worked, (False, error) if it raised a durable error (or an
    ``allow``ed one, documented for that call); any other exception fails the property."""
    try:
        result = call() if callable(call) else call
        if asyncio.iscoroutine(result) or asyncio.isfuture(result):
            result = await result
    except DurableError as exc:
        event(f"raised {type(exc).__name__}")
        return False, exc
    except allow as exc:
        event(f"raised {type(exc).__name__}")
        return False, exc
    except Exception as exc:  # noqa: BLE001 - exactly what the property rules out
        raise AssertionError(f"raised {type(exc).__name__} (not a durable.errors error): "
                             f"{exc!r}") from exc
    event("worked")
    return True, result


async def finishes(handle: durable.WorkflowHandle[Any]) -> None:
    """The execution decodes, and ends (it is sent ``Go`` if it still waits)."""
    events = await handle.history()
    assert type(events[0]).__name__ == "WorkflowStarted"
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    description = await handle.describe()
    assert description.task_error is None, description.task_error
    if description.status == "running":  # (it may end meanwhile: WorkflowClosedError)
        for finish in (handle.send("Go"), handle.cancel("property done")):
            try:
                await finish
            except durable.errors.WorkflowClosedError:
                pass
    try:
        await handle.result(timeout=10)
    except (durable.errors.WorkflowCancelledError, durable.errors.WorkflowFailedError):
        pass
    assert (await handle.describe()).status != "running"


async def fresh(env: Environment) -> durable.WorkflowHandle[Any]:
    return await env.client.start(waiter, id=f"w-{uuid.uuid4().hex}")


# ---- client and handle ----------------------------------------------------------------------


@given(workflow_id=st.one_of(st.none(), ids()), tenant=st.one_of(st.none(), ids()),
       args=st.lists(payloads(), max_size=3))
async def test_start_takes_or_refuses_any_id_tenant_and_arguments(
        env: Environment, workflow_id: Any, tenant: Any, args: list[Any]) -> None:
    before = len(await env.client.list(all_tenants=True, limit=100_000))
    ok, handle = await works_or_typed(
        env.client.start(waiter, *args, id=workflow_id, tenant=tenant))
    after = len(await env.client.list(all_tenants=True, limit=100_000))
    if not ok:
        assert after == before  # refused: nothing was written
        return
    await finishes(handle)
    ok, again = await works_or_typed(lambda: env.client.get_handle(workflow_id or handle.workflow_id,
                                                                   tenant=tenant))
    assert ok and (await again.describe()).workflow_id == handle.workflow_id


@given(name=ids(), payload=payloads(), key=st.one_of(st.none(), ids()))
async def test_send_takes_or_refuses_any_name_payload_and_key(
        env: Environment, name: Any, payload: Any, key: Any) -> None:
    handle = await fresh(env)
    await works_or_typed(handle.send(name, payload, idempotency_key=key))
    await works_or_typed(handle.send(name, payload, idempotency_key=key))  # a retry
    await finishes(handle)


@given(kind=st.sampled_from(["query", "update"]), name=st.one_of(ids(), st.sampled_from(
           ["echo", "take", "echo", "take"])), args=st.lists(payloads(), max_size=2),
       key=st.one_of(st.none(), ids()), timeout=st.one_of(st.none(), durations()),
       result_type=mix((3, st.none()), (1, st.sampled_from([int, str, list[int], dict, Any])),
                       (1, values())))
@example(kind="query", name={1, 2}, args=[], key=None, timeout=None,  # an unhashable name
         result_type=None)
async def test_queries_and_updates_take_or_refuse_any_value(
        env: Environment, kind: str, name: Any, args: list[Any], key: Any, timeout: Any,
        result_type: Any) -> None:
    handle = await fresh(env)
    limit = timeout if not isinstance(timeout, (int, float)) or not 0 < timeout < 5 else 5
    # (a worker answers at once: a long valid timeout costs nothing, a short one may expire)
    known = (kind, name) in (("query", "echo"), ("update", "take"))
    if not known:  # kept for a handler the run may still register: it waits, within a bound
        limit = 0.2
    if kind == "query":
        call = handle.query(name, *args, timeout=limit, result_type=result_type)
    else:
        call = handle.update(name, *args, idempotency_key=key, timeout=limit,
                             result_type=result_type)
    ok, answer = await works_or_typed(call)
    if not ok and isinstance(answer, RequestTimeoutError):
        assert timeout is not None or not known  # a short timeout given, or no handler
    await finishes(handle)


@given(reason=st.one_of(texts(), values()), when=st.one_of(numbers(), st.datetimes(), values()),
       run_id=st.one_of(st.none(), ids()), timeout=durations(), status=st.one_of(
           st.none(), st.sampled_from(["running", "completed"]), ids()),
       limit=numbers())
async def test_reads_and_cancellation_take_or_refuse_any_value(
        env: Environment, reason: Any, when: Any, run_id: Any, timeout: Any, status: Any,
        limit: Any) -> None:
    handle = await fresh(env)
    await works_or_typed(handle.describe())
    await works_or_typed(handle.history(run_id=run_id))
    await works_or_typed(handle.state_at(when, run_id=run_id))
    await works_or_typed(env.client.list(status=status, limit=limit))
    try:  # it waits for Go: a valid timeout times out, with asyncio's TimeoutError (documented)
        async with asyncio.timeout(0.05):
            await works_or_typed(handle.result(timeout=timeout), allow=TimeoutError)
    except TimeoutError:
        pass
    await works_or_typed(handle.cancel(reason))
    await finishes(handle)


@given(schedule_id=ids(), args=st.lists(payloads(), max_size=2), options=st.fixed_dictionaries(
    {}, optional={"cron": mix((2, st.sampled_from(["* * * * *", "0 3 * * *", "@daily"])),
                              (1, texts()), (1, values())),
                  "every": durations(), "offset": durations(), "timezone": mix(
                      (2, st.sampled_from(["UTC", "Europe/Paris"])), (1, ids())),
                  "overlap": mix((2, st.sampled_from(["skip", "allow_all"])), (1, ids())),
                  "catchup_window": durations(), "paused": mix((2, st.booleans()), (1, values())),
                  "note": mix((2, texts()), (1, values())), "tenant": ids()}))
async def test_schedules_take_or_refuse_any_definition(
        env: Environment, schedule_id: Any, args: list[Any], options: dict[str, Any]) -> None:
    ok, handle = await works_or_typed(env.client.schedule(waiter, *args, id=schedule_id,
                                                          **options))
    if ok:
        assert (await handle.describe()).schedule_id == schedule_id
        await works_or_typed(handle.pause(note=options.get("note")))
        await handle.delete()  # its runs would start as the other properties skip time


OPTIONS = ["concurrency", "lease", "poll_interval", "max_cached", "inline_actions", "identity",
           "snapshot_every", "snapshots_kept"]


@given(options=st.dictionaries(st.sampled_from(OPTIONS), mix((3, numbers()), (1, ids()),
                                                             (1, values())), max_size=4))
async def test_worker_options_are_taken_or_refused(env: Environment,
                                                   options: dict[str, Any]) -> None:
    await works_or_typed(lambda: durable.Worker(env.client, [waiter], [echo], **options))


@given(tenant=ids(), url=st.one_of(texts(), values()).filter(
    lambda u: not (isinstance(u, str) and u.split(":", 1)[0].lower()
                   in ("sqlite", "postgres", "postgresql"))))
async def test_connect_takes_or_refuses_any_tenant_and_url(tenant: Any, url: Any) -> None:
    """(URLs of SQLite and PostgreSQL stores would open files and connections anywhere.)"""
    ok, client = await works_or_typed(lambda: durable.connect("memory://", tenant=tenant))
    ok_url, _ = await works_or_typed(lambda: durable.connect(url))
    if ok:
        async with client as opened:
            assert opened.tenant == ("default" if tenant is None else tenant)


@given(duration=durations())
async def test_virtual_time_takes_or_refuses_any_duration(duration: Any) -> None:
    async with Environment(workflows=[waiter]) as env:
        await works_or_typed(env.sleep(duration))
        await works_or_typed(lambda: env.clock.advance(duration))


# ---- workflow code --------------------------------------------------------------------------


@durable.workflow(name="PropChild")
async def child(ctx: durable.Context) -> str:
    return "child"


PLANS: dict[str, list[tuple[str, Any, Any]]] = {}  # the arbitrary values, by the token passed


async def _briefly(awaitable: Awaitable[Any]) -> None:
    """Start it, give it one turn of the loop, cancel it: a timer it starts is started and
    cancelled in the same workflow task (long durations cost no virtual time)."""
    task = asyncio.ensure_future(awaitable)
    await asyncio.sleep(0)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


async def _timeout(ctx: durable.Context, value: Any) -> None:
    async with asyncio.timeout(value):
        await asyncio.sleep(0)


async def _perform(ctx: durable.Context, op: str, value: Any, other: Any) -> None:
    if op == "ctx.sleep":
        await _briefly(ctx.sleep(value))
    elif op == "ctx.wait_for timeout":
        await _briefly(ctx.wait_for("never", timeout=value))
    elif op == "ctx.wait_for name":
        await ctx.wait_for(value, timeout=0.01)
    elif op == "asyncio.sleep":
        await _briefly(asyncio.sleep(value))
    elif op == "asyncio.timeout":
        await _timeout(ctx, value)
    elif op == "asyncio.wait_for":
        waiting = asyncio.ensure_future(ctx.wait_for("never"))
        try:
            await _briefly(asyncio.wait_for(waiting, value))
        finally:
            waiting.cancel()
    elif op == "ctx.start_child":
        await ctx.start_child(child, id=value)
    elif op == "ctx.data":
        ctx.data[value] = other
        del ctx.data[value]
    elif op == "ctx.set_state":
        ctx.set_state(value)
    elif op == "ctx.patched":
        ctx.patched(value)
    elif op == "ctx.run":
        await ctx.run(echo, value)
    else:
        raise AssertionError(op)


@durable.workflow(name="PropProber")
async def prober(ctx: durable.Context, token: str) -> list[str]:
    """Runs the plan the test left under ``token``; what each step raised, if anything."""
    outcomes = []
    for op, value, other in PLANS[token]:
        try:
            await _perform(ctx, op, value, other)
            outcomes.append("ok")
        except DurableError as exc:
            outcomes.append(type(exc).__name__)
        except TimeoutError:  # asyncio.timeout / wait_for with a deadline that has passed
            outcomes.append("TimeoutError")
        except (TypeError, OverflowError) as exc:
            # asyncio's own checks (as outside a workflow): a delay that is not a number, or
            # an int too large for a float. A float (NaN, infinity) must reach durable's.
            plain = op.startswith("asyncio.") and not isinstance(value, float)
            outcomes.append(type(exc).__name__ if plain else f"RAW {op}: {exc!r}"[:300])
        except ValueError as exc:  # Python 3.13's asyncio.sleep refuses NaN itself, first
            own = op == "asyncio.sleep" and value != value and sys.version_info >= (3, 13)
            outcomes.append("ValueError" if own else f"RAW {op}: {exc!r}"[:300])
        except Exception as exc:  # noqa: BLE001 - what the property rules out
            outcomes.append(f"RAW {op}: {type(exc).__name__}: {exc!r}"[:300])
    return outcomes


OPS = {
    "ctx.sleep": durations(), "ctx.wait_for timeout": durations(), "asyncio.sleep": numbers(),
    "asyncio.timeout": numbers(), "asyncio.wait_for": numbers(),
    "ctx.wait_for name": ids(), "ctx.start_child": st.one_of(st.none(), ids()),
    "ctx.data": ids(), "ctx.set_state": ids(), "ctx.patched": ids(), "ctx.run": payloads(),
}


@st.composite
def plans(draw: st.DrawFn) -> list[tuple[str, Any, Any]]:
    steps = draw(st.lists(st.sampled_from(sorted(OPS)), min_size=1, max_size=4))
    return [(op, draw(OPS[op]), draw(payloads())) for op in steps]


@given(plan=plans())
# a call refused live (an int beyond 64 bits) is refused again on replay, taking no command
@example(plan=[("ctx.run", -2**63 - 1, None), ("ctx.run", None, None)])
@example(plan=[("asyncio.sleep", float("nan"), None)])  # durable's check; 3.13's asyncio's
async def test_workflow_calls_work_or_raise_typed_errors_and_replay(
        env: Environment, plan: list[tuple[str, Any, Any]]) -> None:
    token = uuid.uuid4().hex
    PLANS[token] = plan
    try:
        handle = await env.client.start(prober, token, id=f"p-{token}")
        outcomes = await handle.result(timeout=30)
        raw = [o for o in outcomes if o.startswith("RAW")]
        assert raw == [], raw
        assert len(outcomes) == len(plan)
        for (op, _, _), outcome in zip(plan, outcomes):
            event(f"{op}: {outcome}")
        history = await handle.history()
        assert (await handle.describe()).status == "completed"
        result = durable.Replayer([prober, child], [echo], strict=True).replay(history)
        assert result.done  # decodes, and replays as it ran (a divergence would raise)
    finally:
        del PLANS[token]
