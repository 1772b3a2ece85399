"""Issue 12's probes, each kept as a regression test: what an attacker or a careless caller
hands the public API is refused with a typed error before anything is written, on every
store, and no execution is left undecodable or stuck.

Each test runs on the memory, SQLite and PostgreSQL stores (in-process dispatch).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

import durable
from durable._history import TaskCompleted
from durable._stores.postgres import PostgresStore
from durable.errors import (
    ArgumentTypeError, PayloadError, StoreConfigurationError, ValidationError,
    WorkflowCancelledError, WorkflowFailedError,
)

from ._env import Env

pytestmark = pytest.mark.integration


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def env_spec(request: pytest.FixtureRequest, tmp_path: Path) -> Env:
    if request.param == "memory":
        return Env("memory", "memory://")
    if request.param == "sqlite":
        return Env("sqlite", f"sqlite:///{tmp_path}/env.db")
    return Env("postgres", str(request.getfixturevalue("pg_database")))


@pytest.fixture
async def env(env_spec: Env) -> AsyncIterator[Env]:
    try:
        yield env_spec
    finally:
        await env_spec.close()


def deep(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


@durable.workflow(name="BoundaryWaiter")
async def waiter(ctx: durable.Context) -> str:
    event = await ctx.wait_for("Go")
    assert event is not None
    return f"went {event.payload!r}"


@durable.action(name="boundary_echo")
async def echo(value: Any) -> Any:
    return value


async def still_works(handle: durable.WorkflowHandle[Any]) -> None:
    """The execution still decodes and can be finished."""
    assert [type(e).__name__ for e in await handle.history()][0] == "WorkflowStarted"
    assert (await handle.describe()).task_error is None


# ---- ids, names and keys --------------------------------------------------------------------


async def test_an_int_idempotency_key_is_refused_and_the_execution_goes_on(env: Env) -> None:
    client = await env.start([waiter], [])
    handle = await client.start(waiter, id="key-probe")
    with pytest.raises(ArgumentTypeError, match="idempotency key"):
        await handle.send("Go", idempotency_key=5)  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="idempotency key"):
        await handle.update("anything", idempotency_key=5)  # type: ignore[arg-type]
    await still_works(handle)
    await handle.send("Go", "on", idempotency_key="k-1")
    assert await handle.result(timeout=20) == "went 'on'"

    other = await client.start(waiter, id="key-probe-cancelled")
    with pytest.raises(ArgumentTypeError):
        await other.send("Go", idempotency_key=b"5")  # type: ignore[arg-type]
    await other.cancel("done probing")
    with pytest.raises(WorkflowCancelledError):
        await other.result(timeout=20)


@pytest.mark.parametrize("bad, error", [
    (5, ArgumentTypeError),             # an int: was written on SQLite, a DataError on PG
    ("", ValidationError),              # was a random UUID: a retried start not idempotent
    ("x" * 8000, ValidationError),      # ran on PostgreSQL but its end could never commit
    ("a\x00b", ValidationError),        # NUL: a raw driver error on PostgreSQL
    ("a\x1fb", ValidationError),        # the separator of PostgreSQL's NOTIFY payloads
    ("\ud800", ValidationError),        # a lone surrogate: cannot be encoded
    ("é" * 257, ValidationError),       # 514 bytes of UTF-8
])
async def test_bad_workflow_ids_are_refused_before_anything_is_written(
        env: Env, bad: Any, error: type[Exception]) -> None:
    client = await env.start([waiter], [])
    with pytest.raises(error, match="workflow id"):
        await client.start(waiter, id=bad)
    with pytest.raises(error, match="workflow id"):
        client.get_handle(bad)
    with pytest.raises(error, match="tenant"):
        await client.start(waiter, id="fine", tenant=bad)
    assert await (await env.client(tenants="*")).list(all_tenants=True) == []


async def test_the_longest_ids_run_to_their_end_on_every_store(env: Env) -> None:
    env.tenant = "t" * 512
    client = await env.client()
    await env.worker(client, [waiter], [])
    for workflow_id in ("w" * 512, "é" * 256, "日本" * 85):
        handle = await client.start(waiter, id=workflow_id)
        await handle.send("Go", "x" * 1000, idempotency_key="k" * 512)
        assert await handle.result(timeout=20) == f"went {'x' * 1000!r}"
        assert (await handle.describe()).status == "completed"


async def test_bad_event_names_payloads_and_reasons_are_typed_errors(env: Env) -> None:
    client = await env.start([waiter], [])
    handle = await client.start(waiter, id="names")
    for name in (None, 3, "", "a\x00b", "x" * 600):
        with pytest.raises((ArgumentTypeError, ValidationError)):
            await handle.send(name)  # type: ignore[arg-type]
    for reason in (5, "a\x00b", "\udc80"):
        with pytest.raises((ArgumentTypeError, ValidationError)):
            await handle.cancel(reason)  # type: ignore[arg-type]
    await still_works(handle)
    await handle.send("Go", 1)
    assert await handle.result(timeout=20) == "went 1"


# ---- payloads -------------------------------------------------------------------------------


UNENCODABLE = {
    "a lone surrogate": "\ud800",
    "an int over 64 bits": 2**64,
    "an int under -2**63": -2**63 - 1,
    "100,000-deep nesting": deep(100_000),
    "101-deep nesting": deep(101),
}


@durable.workflow(name="BoundaryHolder")
async def holder(ctx: durable.Context, what: Any) -> list[str]:
    """Once ``Go`` arrives, tries to record ``UNENCODABLE[what]`` every way a workflow can."""
    ctx.on_query("ok", lambda: True)
    ctx.on_update("keep", lambda value: None)
    await ctx.wait_for("Go")
    bad = UNENCODABLE[what]
    caught = []
    for name, attempt in (("ctx.run", lambda: ctx.run(echo, bad)),
                          ("ctx.data", lambda: ctx.data.__setitem__("k", bad)),
                          ("ctx.start_child", lambda: ctx.start_child(holder, bad)),
                          ("ctx.continue_as_new", lambda: ctx.continue_as_new(bad))):
        try:
            attempt()
        except PayloadError:
            caught.append(name)
    return caught


@pytest.mark.parametrize("what", sorted(UNENCODABLE))
async def test_values_that_cannot_be_read_back_are_payload_errors(env: Env, what: str) -> None:
    value = UNENCODABLE[what]
    client = await env.start([waiter, holder], [echo])
    handle = await client.start(waiter, id="payloads")
    with pytest.raises(PayloadError, match="payload of event"):
        await handle.send("Go", value)
    with pytest.raises(PayloadError):
        await handle.send("Go", {"nested": [value]})
    with pytest.raises(PayloadError):
        await client.start(holder, value, id="never")
    with pytest.raises(PayloadError):
        await handle.query("anything", value)
    await still_works(handle)
    assert [e.workflow_id for e in await client.list()] == ["payloads"]
    held = await client.start(holder, what, id="holder")
    assert await held.query("ok") is True
    with pytest.raises(PayloadError):
        await held.update("keep", value)
    await held.send("Go")
    assert await held.result(timeout=20) == [
        "ctx.run", "ctx.data", "ctx.start_child", "ctx.continue_as_new"]
    await still_works(held)


async def test_an_action_or_workflow_result_that_cannot_be_encoded_fails_typed(env: Env) -> None:
    client = await env.start([returns], [huge])
    handle = await client.start(returns, "action", id="result-action")
    assert await handle.result(timeout=20) == "PayloadError"
    handle = await client.start(returns, "workflow", id="result-workflow")
    with pytest.raises(WorkflowFailedError) as info:
        await handle.result(timeout=20)
    assert info.value.error_type == "PayloadError"  # type: ignore[attr-defined]
    await still_works(handle)


@durable.workflow(name="BoundaryReturns")
async def returns(ctx: durable.Context, which: str) -> Any:
    if which == "action":
        try:
            await ctx.run(huge)
        except durable.errors.ActionFailedError as exc:
            return exc.error_type  # type: ignore[attr-defined]
        return "no error"
    return 2**80


@durable.action(name="boundary_huge", retry=durable.Retry(attempts=1))
async def huge() -> Any:
    return {"big": 2**65}


# ---- durations ------------------------------------------------------------------------------


@durable.workflow(name="BoundaryNapper")
async def napper(ctx: durable.Context) -> list[str]:
    """Every way workflow code sets a timer, with NaN or infinity: each raises at the call."""
    nan, inf = float("nan"), float("inf")

    async def sleep_nan() -> None:
        await ctx.sleep(nan)

    async def wait_nan() -> None:
        await ctx.wait_for("x", timeout=nan)

    async def asyncio_sleep_nan() -> None:
        await asyncio.sleep(nan)

    async def timeout_nan() -> None:
        async with asyncio.timeout(nan):
            await ctx.sleep(1)

    async def sleep_inf() -> None:
        await ctx.sleep(inf)

    async def timeout_in_a_task() -> None:
        await asyncio.create_task(asyncio.sleep(nan))

    caught = []
    for probe in (sleep_nan, wait_nan, asyncio_sleep_nan, timeout_nan, sleep_inf,
                  timeout_in_a_task):
        try:
            await probe()
            caught.append(f"{probe.__name__}: no error")
        except ValidationError:
            caught.append(probe.__name__)
        except ValueError as exc:  # Python 3.13+: asyncio.sleep refuses NaN before the loop
            caught.append(f"{probe.__name__}: asyncio's {exc}")
    await ctx.sleep(0.01)  # a real timer still works afterwards
    return caught


async def test_nan_durations_raise_a_validation_error_in_the_workflow(env: Env) -> None:
    client = await env.start([napper], [])
    handle = await client.start(napper, id="nan")
    by_asyncio = ": asyncio's Invalid delay: NaN (not a number)" \
        if sys.version_info >= (3, 13) else ""
    assert await handle.result(timeout=20) == [
        "sleep_nan", "wait_nan", f"asyncio_sleep_nan{by_asyncio}", "timeout_nan", "sleep_inf",
        f"timeout_in_a_task{by_asyncio}"]
    description = await handle.describe()
    assert description.task_error is None and description.pending_timers == []
    times = [e.time for e in await handle.history() if isinstance(e, TaskCompleted)]
    assert times == sorted(times)


async def test_bad_timeouts_and_options_of_the_client_side_are_typed(env: Env) -> None:
    client = await env.start([waiter], [])
    handle = await client.start(waiter, id="timeouts")
    for bad in (float("nan"), float("inf"), -float("inf"), 1e300):
        with pytest.raises(ValidationError):
            await handle.result(timeout=bad)
        with pytest.raises(ValidationError):
            await handle.query("q", timeout=bad)
    with pytest.raises(ArgumentTypeError):
        await handle.result(timeout="soon")  # type: ignore[arg-type]
    for options in ({"lease": float("nan")}, {"concurrency": 0}, {"poll_interval": -1},
                    {"identity": "a\x00b"}, {"max_cached": -1}):
        with pytest.raises(durable.errors.InputError):
            durable.Worker(client, [waiter], **options)
    with pytest.raises(durable.errors.InputError):
        durable.Retry(initial=float("nan"))
    await still_works(handle)


# ---- the PostgreSQL driver ------------------------------------------------------------------


async def test_a_missing_postgres_database_is_a_configuration_error(pg_dsn: str) -> None:
    url = urlunsplit(urlsplit(pg_dsn)._replace(path="/durable_no_such_database"))
    with pytest.raises(StoreConfigurationError, match="durable_no_such_database") as info:
        await durable.connect(url)
    assert "create it" in str(info.value)
    assert isinstance(info.value.__cause__, asyncpg.InvalidCatalogNameError)
    with pytest.raises(StoreConfigurationError):
        await durable._stores.migrate_store(url)  # type: ignore[attr-defined]


async def test_values_postgres_refuses_are_validation_errors_not_outages(
        pg_database: str) -> None:
    """Validated before they get there; if one does, it is the call's fault, not an outage."""
    store = await PostgresStore.open(pg_database)
    try:
        with pytest.raises(ValidationError, match="refused a value"):
            await store.get_execution("t", "a\x00b")  # NUL: CharacterNotInRepertoireError
        with pytest.raises(ValidationError, match="refused a value"):
            await store.get_execution("t", 5)  # type: ignore[arg-type]  # asyncpg's DataError
        assert await store.get_execution("t", "fine") is None  # the pool was not dropped
    finally:
        await store.close()


def test_the_cli_prints_typed_errors_as_one_line(pg_dsn: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from durable._cli import main

    missing = urlunsplit(urlsplit(pg_dsn)._replace(path="/durable_no_such_database"))
    assert main(["--db", missing, "list"]) == 1
    err = capsys.readouterr().err
    assert "durable_no_such_database" in err and "does not exist" in err and "create it" in err
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["--db", db, "send", "x" * 600, "Go"]) == 1
    assert "workflow id" in capsys.readouterr().err
    assert main(["--db", db, "send", "some-id", "Go", "--key", ""]) == 1
    assert "idempotency key" in capsys.readouterr().err
