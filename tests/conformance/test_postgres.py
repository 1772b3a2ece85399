"""PostgreSQL only: lost connections, URL options, payload encoding, and several store
instances (as several processes would have) racing on one database."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg
import msgspec
import pytest
from _support import eventually

from durable._history import ActionCompleted, EventReceived, StartTimer, TimerFired
from durable._stores import ActionTask, Store, open_store
from durable._stores.postgres import PostgresStore
from durable.errors import StoreUnavailableError

from .test_store import NOW, T1, act, claim, claim_actions, completion, create, started_with

T = TypeVar("T")


@pytest.fixture
async def pg(pg_database: str) -> AsyncIterator[Store]:
    store = await open_store(pg_database, clock="caller")  # time is passed explicitly
    yield store
    await store.close()


@pytest.fixture
async def admin(pg_database: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection to the test database, outside the store's pool."""
    conn = await asyncpg.connect(pg_database)
    yield conn
    await conn.close()


def database_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


async def terminate_store_backends(admin: asyncpg.Connection, url: str) -> int:
    terminated: int = await admin.fetchval(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = $1 AND pid <> pg_backend_pid()", database_of(url))
    return terminated


# ---- connection loss ------------------------------------------------------------------------


async def test_store_recovers_after_its_connections_are_terminated(
        pg: Store, pg_database: str, admin: asyncpg.Connection) -> None:
    await create(pg)
    await asyncio.gather(*(pg.get_execution(T1, "wf-1") for _ in range(5)))  # several conns
    assert await terminate_store_backends(admin, pg_database) >= 1
    failures = []
    for round_ in range(4):  # as a restarted server is met: one call, then many at once
        calls = [pg.append_input(T1, "wf-1", EventReceived(0, 0.0, "x", round_), now=NOW)]
        calls += [pg.get_execution(T1, "wf-1") for _ in range(4 if round_ else 0)]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        failures += [o for o in outcomes if isinstance(o, BaseException)]
    assert len(failures) <= 1
    for failure in failures:
        assert isinstance(failure, StoreUnavailableError)
        assert isinstance(failure.__cause__, (asyncpg.PostgresError, asyncpg.InterfaceError,
                                              asyncpg.InternalClientError, OSError))
    events = await pg.read_history(T1, "wf-1")
    assert [e.seq for e in events] == list(range(1, 6 - len(failures)))
    assert len(await claim(pg)) == 1


async def test_a_connection_lost_mid_operation_is_store_unavailable_and_writes_nothing(
        pg: Store, pg_database: str, admin: asyncpg.Connection) -> None:
    await create(pg)
    async with admin.transaction():
        await admin.execute("SELECT FROM executions WHERE workflow_id = 'wf-1' FOR UPDATE")
        append = asyncio.create_task(
            pg.append_input(T1, "wf-1", EventReceived(0, 0.0, "lost"), now=NOW))
        pid = await eventually(lambda: admin.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
            database_of(pg_database)))
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
        with pytest.raises(StoreUnavailableError) as info:
            await append
        assert isinstance(info.value.__cause__, (asyncpg.PostgresError, asyncpg.InterfaceError))
    assert await pg.append_input(T1, "wf-1", EventReceived(0, 0.0, "next"), now=NOW) == 2
    assert [e.seq for e in await pg.read_history(T1, "wf-1")] == [1, 2]


async def test_an_unreachable_server_is_store_unavailable() -> None:
    with pytest.raises(StoreUnavailableError, match="unavailable") as info:
        await open_store("postgresql://durable:secret@127.0.0.1:1/nowhere")
    assert isinstance(info.value.__cause__, OSError)
    assert "secret" not in str(info.value)


async def test_a_closed_store_is_store_unavailable(pg_database: str) -> None:
    store = await open_store(pg_database)
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StoreUnavailableError):
        await store.get_execution(T1, "wf-1")


# ---- URL options ----------------------------------------------------------------------------


async def test_url_options_pool_size_and_schema(pg_database: str,
                                                admin: asyncpg.Connection) -> None:
    a = await open_store(f"{pg_database}?pool_size=2&schema=space_a&application_name=durable-a")
    b = await open_store(f"{pg_database}?schema=space_b")
    try:
        assert isinstance(a, PostgresStore) and a._pool.get_max_size() == 2
        await create(a)
        assert await b.get_execution(T1, "wf-1") is None  # each schema is its own store
        await create(b, now=NOW + 1)
        assert [r.created_at for r in await a.list_executions()] == [NOW]
        names = await admin.fetch("SELECT application_name FROM pg_stat_activity "
                                  "WHERE datname = $1", database_of(pg_database))
        assert "durable-a" in {row[0] for row in names}
    finally:
        await a.close()
        await b.close()


@pytest.mark.parametrize("query", ["pool_size=0", "pool_size=x", "schema=bad-name",
                                   'schema=a"b'])
async def test_bad_url_options_are_refused(pg_database: str, query: str) -> None:
    with pytest.raises(ValueError, match="PostgreSQL URL"):
        await open_store(f"{pg_database}?{query}")


# ---- payload encoding: the database places each appended event's seq ------------------------


async def test_msgpack_uint_matches_msgspec(pg: Store, admin: asyncpg.Connection) -> None:
    values = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1]
    encoded = await admin.fetch("SELECT durable_msgpack_uint(n) FROM unnest($1::bigint[]) AS n",
                                values)
    assert [row[0] for row in encoded] == [msgspec.msgpack.encode(v) for v in values]


@pytest.mark.parametrize("wf", ["wf-1", "züge/🚂 \u00e9t\u00e9", "a\x1fb"])
async def test_a_start_writes_the_checksum_the_database_would(
        pg: Store, admin: asyncpg.Connection, wf: str) -> None:
    """The store writes a new run's first checksum itself (``first_checksum``), sparing the
    row the trigger: it must be 0008's, byte for byte (UTF-8 ids, the separator in an id)."""
    await create(pg, wf, tenant="t\u00fc")
    assert await admin.fetchval(
        "SELECT checksum = durable_checksum(durable_run_seed(tenant, workflow_id, run_id), body) "
        "FROM events WHERE workflow_id = $1 AND seq = 1", wf) is True
    assert [type(e).__name__ for e in await pg.read_history("t\u00fc", wf)] == ["WorkflowStarted"]


@pytest.mark.parametrize("last_seq", [126, 254, 65534, 2**32 - 2])
async def test_appended_events_carry_their_seq_at_every_width(
        pg: Store, admin: asyncpg.Connection, last_seq: int) -> None:
    await started_with(pg, act(1))
    # Jump to last_seq: the last row moves there, so that the read below has its anchor.
    await admin.execute("UPDATE executions SET last_seq = $1", last_seq)
    await admin.execute("UPDATE events SET seq = $1 WHERE seq = (SELECT max(seq) FROM events)",
                        last_seq)
    first = await pg.append_input(T1, "wf-1", EventReceived(0, 0.0, "a", {"k": [1]}, "key"),
                                  now=NOW + 1)
    [task] = await claim_actions(pg)
    assert await pg.complete_action_task(task, completion(task, "done"), now=NOW + 2)
    events = await pg.read_history(T1, "wf-1", after_seq=last_seq)
    assert (first, [e.seq for e in events]) == (last_seq + 1, [last_seq + 1, last_seq + 2])
    assert events == [EventReceived(last_seq + 1, NOW + 1, "a", {"k": [1]}, "key"),
                      ActionCompleted(last_seq + 2, NOW + 2, 1, "done", 1)]


async def test_fired_timers_carry_their_cmd_at_every_width(pg: Store) -> None:
    cmds = [1, 127, 128, 300, 70000, 2**32 + 5]
    await started_with(pg, *(StartTimer(cmd, 1.0, NOW + 1) for cmd in cmds))
    assert len(await pg.fire_due_timers(now=NOW + 1, limit=100)) == len(cmds)
    fired = [e for e in await pg.read_history(T1, "wf-1") if isinstance(e, TimerFired)]
    assert sorted((e.cmd, e.time) for e in fired) == [(cmd, NOW + 1) for cmd in cmds]


# ---- several instances on one database (as several processes) ------------------------------


@pytest.fixture
async def pair(pg: Store, pg_database: str) -> AsyncIterator[tuple[Store, Store]]:
    other = await open_store(pg_database, clock="caller")
    yield pg, other
    await other.close()


async def test_concurrent_claims_take_disjoint_tasks(pair: tuple[Store, Store]) -> None:
    a, b = pair
    await started_with(a, *(act(cmd) for cmd in range(1, 31)))
    for i in range(30):
        await create(a, f"wf-{i:02}")

    async def claims(store: Store, owner: str) -> list[Any]:
        workflows = await claim(store, owner, limit=20)
        actions = await claim_actions(store, owner, limit=20)
        return [*workflows, *actions]

    first, second = await asyncio.gather(claims(a, "w1"), claims(b, "w2"))
    # A claim picks its candidates, then skips those the other locked meanwhile: together they
    # may leave some for later (how many depends on the interleaving), never take one twice.
    rest = [*await claims(a, "w1"), *await claims(b, "w2")]
    taken = Counter(repr(t) for t in first + second + rest)
    assert set(taken.values()) == {1}
    assert len(taken) == 60


async def test_concurrent_appends_and_timers_keep_history_dense(
        pair: tuple[Store, Store]) -> None:
    a, b = pair
    await started_with(a, *(StartTimer(cmd, 1.0, NOW + 1) for cmd in range(1, 21)))

    async def appends(store: Store, who: str) -> list[int | None]:
        return [await store.append_input(T1, "wf-1", EventReceived(0, 0.0, who, i, f"k{i % 10}"),
                                         dedup=f"k{i % 10}", now=NOW) for i in range(20)]

    results = await asyncio.gather(appends(a, "a"), appends(b, "b"),
                                   a.fire_due_timers(now=NOW + 1, limit=7),
                                   b.fire_due_timers(now=NOW + 1, limit=7))
    # a timer whose execution is busy is left for the next call: fire until none are left
    fired = len(results[2]) + len(results[3])
    while batch := await a.fire_due_timers(now=NOW + 1, limit=7):
        fired += len(batch)
    assert fired == 20
    events = await a.read_history(T1, "wf-1")
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert sorted(e.cmd for e in events if isinstance(e, TimerFired)) == list(range(1, 21))
    assert Counter(e.key for e in events if isinstance(e, EventReceived)) == {
        f"k{i}": 1 for i in range(10)}
    assert sorted(s for r in results[:2] for s in r if s is not None) == sorted(
        e.seq for e in events if isinstance(e, EventReceived))


async def test_concurrent_completions_record_one_outcome(pair: tuple[Store, Store]) -> None:
    a, b = pair
    await started_with(a, act(1))
    task = ActionTask(T1, "wf-1", "run-wf-1", 1, "act", [1], {"k": 1})
    won = await asyncio.gather(*(store.complete_action_task(task, completion(task, i), now=NOW)
                                 for i, store in enumerate([a, b, a, b])))
    assert sorted(won) == [False, False, False, True]
    assert len([e for e in await a.read_history(T1, "wf-1") if isinstance(e, ActionCompleted)]) == 1


async def test_another_process_ending_an_execution_wakes_result_waiters_at_once(
        pair: tuple[Store, Store]) -> None:
    import durable

    waiting_side, ending_side = pair

    @durable.workflow(name="ends_elsewhere")
    async def ends_elsewhere(ctx: durable.Context) -> str:
        return "done"

    waiting = durable.Client(waiting_side, poll_interval=30.0)  # polling would take 30 s
    handle = await waiting.start(ends_elsewhere, id="elsewhere")
    result = asyncio.create_task(handle.result(timeout=10))
    await asyncio.sleep(0.1)  # the waiter has read "running" and is waiting
    worker_client = durable.Client(ending_side)
    t0 = asyncio.get_running_loop().time()
    await durable.Worker(worker_client, [ends_elsewhere]).run_until_idle()
    assert await result == "done"
    assert asyncio.get_running_loop().time() - t0 < 5.0


@pytest.mark.parametrize("size", [10, 20_000])
async def test_an_end_notice_carries_the_outcome_unless_it_is_large(
        pair: tuple[Store, Store], size: int) -> None:
    import durable

    waiting_side, ending_side = pair

    @durable.workflow(name=f"ends_with_{size}")
    async def ends_with(ctx: durable.Context, size: int) -> str:
        return "x" * size

    reads = 0
    get_execution = waiting_side.get_execution

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal reads
        reads += 1
        return await get_execution(*args, **kwargs)

    waiting_side.get_execution = counted  # type: ignore[method-assign]
    waiting = durable.Client(waiting_side, poll_interval=30.0)
    handle = await waiting.start(ends_with, size, id=f"notice-{size}")
    result = asyncio.create_task(handle.result(timeout=10))
    await eventually(lambda: reads == 1)  # the waiter has read "running" and is waiting
    await durable.Worker(durable.Client(ending_side), [ends_with]).run_until_idle()
    assert await result == "x" * size
    assert reads == (1 if size < 1000 else 2)  # a large result is read, not notified


async def test_a_failure_reaches_result_waiters_through_the_end_notice(
        pair: tuple[Store, Store]) -> None:
    import durable
    from durable.errors import WorkflowFailedError

    waiting_side, ending_side = pair

    @durable.workflow(name="fails_elsewhere")
    async def fails_elsewhere(ctx: durable.Context) -> str:
        raise KeyError("gone")

    waiting = durable.Client(waiting_side, poll_interval=30.0)
    handle = await waiting.start(fails_elsewhere, id="fails-elsewhere")
    result = asyncio.create_task(handle.result(timeout=10))
    await asyncio.sleep(0.1)
    await durable.Worker(durable.Client(ending_side), [fails_elsewhere]).run_until_idle()
    with pytest.raises(WorkflowFailedError) as failed:
        await result
    assert failed.value.error_type == "KeyError" and "gone" in failed.value.error_message


async def test_a_claim_brings_the_history_in_the_same_round_trip(pg: Store) -> None:
    from durable._stores import workflow_ref

    await create(pg, "wf-1")
    await create(pg, "wf-2")
    workflows, _ = await pg.claim_refs(
        [workflow_ref(T1, "wf-1"), workflow_ref(T1, "wf-2")], "w1", workflows=("Flow",),
        actions=(), lease=30.0, now=NOW, history_after=lambda tenant, wf: 0)
    assert {w.workflow_id: [type(e).__name__ for e in w.history or []] for w in workflows} == {
        "wf-1": ["WorkflowStarted"], "wf-2": ["WorkflowStarted"]}


async def test_a_handle_from_start_waits_for_the_end_notice_without_reading(
        pair: tuple[Store, Store]) -> None:
    import durable

    waiting_side, ending_side = pair

    @durable.workflow(name="noticed")
    async def noticed(ctx: durable.Context, n: int) -> int:
        return n

    reads = 0
    get_execution = waiting_side.get_execution

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal reads
        reads += 1
        return await get_execution(*args, **kwargs)

    waiting_side.get_execution = counted  # type: ignore[method-assign]
    waiting = durable.Client(waiting_side, poll_interval=30.0)
    worker = durable.Worker(durable.Client(ending_side), [noticed])
    await waiting.start(noticed, 0, id="first")  # connects the LISTEN connection
    await worker.run_until_idle()
    before = reads
    handle = await waiting.start(noticed, 1, id="second")
    result = asyncio.create_task(handle.result(timeout=10))
    await asyncio.sleep(0.05)
    await worker.run_until_idle()
    assert await result == 1 and reads == before  # the notice carried it, nothing was read
    # ended before anyone waited: the end was remembered, so the waiter reads
    late = await waiting.start(noticed, 2, id="late")
    await worker.run_until_idle()
    await eventually(lambda: waiting_side.wakeup.ended_recently(late.tenant, "late"))
    assert await late.result(timeout=10) == 2 and reads == before + 1
