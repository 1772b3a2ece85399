"""Time travel on every store: ``handle.state_at`` from the record and snapshots equals a full
replay at every moment; snapshots are written every N events, pruned, and spare the reads of
everything before them; ``describe().suspended_at``; bad moments are typed errors."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

import pytest
from _support import eventually

import durable
from durable._history import Event, TaskCompleted
from durable._stores import Snapshot, Store
from durable.errors import HistoryRangeError, NonDeterminismError

EVERY = 5  # snapshot_every of the workers here
KEPT = 3  # snapshots_kept


@durable.action(name="tt_pack")
def pack(n: int) -> int:
    return n


@durable.workflow(name="TTJourney")
async def journey(ctx: durable.Context, bags: int) -> str:
    ctx.set_state("packing")
    ctx.data["bags"] = 0
    for n in range(bags):
        await ctx.run(pack, n)  # PACKING
        ctx.data["bags"] = n + 1
    ctx.set_state("waiting")
    await ctx.wait_for("Go")  # WAITING
    ctx.set_state("travelling")
    await asyncio.gather(ctx.run(pack, 100), ctx.sleep(0.01))  # TRAVELLING
    del ctx.data["bags"]
    ctx.set_state("arrived")
    return "arrived"


def line(marker: str) -> str:
    """``file:line`` of the line of ``journey`` that carries ``marker``."""
    source, first = inspect.getsourcelines(journey)
    offset = next(i for i, text in enumerate(source) if f"# {marker}" in text)
    return f"{inspect.getsourcefile(journey)}:{first + offset}"


class Recording:
    """A store that records where each history read started (to see what snapshots spare)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.reads: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def read_history(self, *args: Any, after_seq: int = 0, **kwargs: Any) -> list[Event]:
        self.reads.append(after_seq)
        return await self._store.read_history(*args, after_seq=after_seq, **kwargs)


@pytest.fixture
async def client(store_url: str) -> AsyncIterator[durable.Client]:
    async with durable.connect(store_url) as client:
        client.poll_interval = 0.02
        yield client


def worker(client: durable.Client, **options: Any) -> durable.Worker:
    options = {"snapshot_every": EVERY, "snapshots_kept": KEPT, **options}
    return durable.Worker(client, [journey], [pack], poll_interval=0.02, **options)


async def travelled(client: durable.Client, wf: str = "j1",
                    bags: int = 8) -> durable.WorkflowHandle[str]:
    """A journey run to its end by a worker that snapshots every ``EVERY`` events."""
    async with worker(client):
        handle = await client.start(journey, bags, id=wf)
        await eventually(lambda: _state(handle, "waiting"), what="the journey to wait")
        await handle.send("Go")
        assert await handle.result(timeout=20) == "arrived"
    return handle


async def _state(handle: durable.WorkflowHandle[Any], state: str) -> bool:
    return (await handle.describe()).state == state


def comparable(state: durable.StateAt) -> tuple[Any, ...]:
    return (state.seq, state.time, state.status, state.state, state.data, state.suspended_at,
            [(type(e).__name__, e.seq) for e in state.pending], state.result, state.error)


# ---- snapshots answer what a replay answers -------------------------------------------------


async def test_every_moment_from_the_record_equals_a_full_replay(client: durable.Client) -> None:
    await travelled(client)
    recording = Recording(client.store)
    handle = durable.Client(recording, tenant=client.tenant).get_handle("j1")  # type: ignore[arg-type]
    history = await handle.history()
    for event in history:
        recording.reads.clear()
        recorded = await handle.state_at(event.seq)
        from_snapshot = recording.reads[0] > 0
        replayed = await handle.state_at(event.seq, replay=True)
        assert replayed.replayed and not recorded.replayed
        assert comparable(recorded) == comparable(replayed), event
        by_time = await handle.state_at(event.time)
        assert comparable(by_time) == comparable(await handle.state_at(by_time.seq)), event
        if event.seq == len(history):
            assert from_snapshot  # the late moments started from a snapshot


async def test_the_answers_follow_the_journey(client: durable.Client) -> None:
    handle = await travelled(client)
    history = await handle.history()
    tasks = [e.seq for e in history if isinstance(e, TaskCompleted)]
    recorded = [e.suspended_at for e in history if isinstance(e, TaskCompleted)]
    assert recorded[:10] == [line("PACKING")] + [None] * 7 + [line("WAITING"), line("TRAVELLING")]
    at_start = await handle.state_at(1)
    assert (at_start.status, at_start.state, at_start.suspended_at) == ("running", None, None)
    assert [type(e).__name__ for e in at_start.pending] == ["WorkflowStarted"]
    first = await handle.state_at(tasks[0])  # the first task ran up to the first action
    assert (first.state, first.data, first.suspended_at) == ("packing", {"bags": 0},
                                                              line("PACKING"))
    assert first.seq > tasks[0] and first.pending == []  # its commands came along
    assert (await handle.state_at(tasks[3])).data == {"bags": 3}
    waiting = await handle.state_at(tasks[8])
    assert (waiting.state, waiting.suspended_at) == ("waiting", line("WAITING"))
    assert (await handle.state_at(tasks[9])).suspended_at == line("TRAVELLING")
    end = await handle.state_at(len(history))
    assert (end.status, end.state, end.data, end.suspended_at, end.result) == (
        "completed", "arrived", {}, None, "arrived")
    later = await handle.state_at(datetime.now(timezone.utc))  # after the end: the end
    assert comparable(later) == comparable(end)


async def test_snapshots_are_written_every_n_events_and_pruned(client: durable.Client) -> None:
    handle = await travelled(client)
    record = await client.store.get_execution("default", "j1")
    assert record is not None
    found: list[Snapshot] = []
    bound: int | None = None
    while (snapshot := await client.store.find_snapshot("default", "j1", record.run_id,
                                                        seq=bound)) is not None:
        found.append(snapshot)
        bound = snapshot.seq - 1
    assert 1 <= len(found) <= KEPT
    seqs = [s.seq for s in found]
    assert seqs == sorted(seqs, reverse=True)
    history = await handle.history()
    for snapshot in found:  # each is the replayed state at the end of a workflow task
        replayed = await handle.state_at(snapshot.seq, replay=True)
        assert replayed.seq == snapshot.seq
        assert (snapshot.status, snapshot.state, snapshot.data, snapshot.suspended_at) == (
            replayed.status, replayed.state, replayed.data, replayed.suspended_at)
        assert history[snapshot.seq - 1].time == snapshot.time
    assert seqs[-1] > EVERY  # the oldest ones were pruned


async def test_a_snapshot_spares_reading_the_events_before_it(client: durable.Client) -> None:
    handle = await travelled(client, bags=12)
    record = await client.store.get_execution("default", "j1")
    assert record is not None
    newest = await client.store.find_snapshot("default", "j1", record.run_id)
    assert newest is not None
    recording = Recording(client.store)
    spy = durable.Client(recording, tenant=client.tenant)  # type: ignore[arg-type]
    theirs = spy.get_handle("j1")
    state = await theirs.state_at(newest.seq + 1)
    assert recording.reads == [newest.seq]
    recording.reads.clear()
    replayed = await theirs.state_at(newest.seq + 1, replay=True)  # a replay reads it all
    assert recording.reads == [0]
    assert comparable(state) == comparable(replayed)


# ---- describe(), old histories, code changes ------------------------------------------------


async def test_describe_says_where_a_running_workflow_waits(client: durable.Client) -> None:
    async with worker(client):
        handle = await client.start(journey, 7, id="j2")
        await eventually(lambda: _state(handle, "waiting"), what="the journey to wait")
        assert (await handle.describe()).suspended_at == line("WAITING")
        await handle.send("Go")
        await handle.result(timeout=20)
    assert (await handle.describe()).suspended_at is None


async def test_a_history_that_does_not_record_where_it_waited_is_replayed(
        client: durable.Client) -> None:
    """Histories written before ``TaskCompleted.suspended_at`` existed (none recorded)."""
    handle = await travelled(client, bags=2)
    old = [e if not isinstance(e, TaskCompleted) else TaskCompleted(e.seq, e.time)
           for e in await handle.history()]
    copy = await _copy(client, old, "j-old")
    tasks = [e.seq for e in old if isinstance(e, TaskCompleted)]
    state = await copy.state_at(tasks[0])
    assert state.replayed and state.suspended_at == line("PACKING")
    assert comparable(state) == comparable(await handle.state_at(tasks[0]))


async def test_the_record_needs_no_code_and_a_replay_says_what_is_missing(
        client: durable.Client) -> None:
    from msgspec.structs import replace

    handle = await travelled(client, bags=2)
    events = await handle.history()
    gone = await _copy(client, [replace(events[0], workflow="TTGone"), *events[1:]], "j-gone")
    assert comparable(await gone.state_at(5)) == comparable(await handle.state_at(5))
    with pytest.raises(durable.errors.UnknownWorkflowError, match="import the module"):
        await gone.state_at(5, replay=True)


async def _copy(client: durable.Client, events: list[Event],
                wf: str) -> durable.WorkflowHandle[Any]:
    """A new execution whose history is ``events`` (as written by another version)."""
    from msgspec.structs import replace

    from durable._stores import ExecutionUpdate, WorkflowCommit

    store = client.store
    started = replace(events[0], workflow_id=wf)
    await store.create_execution(started, now=events[0].time)
    [task] = [t for t in await store.claim_workflow_tasks(
        {started.workflow}, "copier", lease=30, now=events[-1].time + 1, limit=10)
        if t.workflow_id == wf]
    assert await store.commit_workflow_task(task, WorkflowCommit(
        "copier", 2, events[1:], ExecutionUpdate("completed", "arrived", {}, "arrived"),
        events[-1].time))
    return client.get_handle(wf)


@durable.workflow(name="TTJourney")
async def journey_changed(ctx: durable.Context, bags: int) -> str:
    ctx.set_state("packing")
    await ctx.sleep(1)  # a timer where an action was
    return "changed"


durable.workflow(name="TTJourney")(journey)  # the registry keeps the real one


async def test_replaying_code_that_changed_raises(client: durable.Client) -> None:
    await travelled(client, bags=2)
    changed = durable.Client(client.store, tenant=client.tenant)
    handle = durable.WorkflowHandle(changed, "j1", client.tenant,
                                    durable._definitions.workflow_definition(journey_changed))
    with pytest.raises(NonDeterminismError):
        await handle.state_at(5, replay=True)
    assert (await handle.state_at(5)).state == "packing"  # the record does not need the code


# ---- bad moments ----------------------------------------------------------------------------


async def test_moments_outside_the_history_are_typed_errors(client: durable.Client) -> None:
    handle = await travelled(client, bags=2)
    last = len(await handle.history())
    for seq in (0, -1, last + 1):
        with pytest.raises(HistoryRangeError) as err:
            await handle.state_at(seq)
        assert (err.value.first, err.value.last) == (1, last)
    with pytest.raises(HistoryRangeError, match="did not exist then"):
        await handle.state_at(datetime(2000, 1, 1, tzinfo=timezone.utc))
    with pytest.raises(HistoryRangeError, match="pass epoch seconds as a float"):
        await handle.state_at(int((await handle.history())[0].time))
    for bad in ("5", None, True, 1j):
        with pytest.raises(TypeError, match="datetime, epoch seconds"):
            await handle.state_at(bad)  # type: ignore[arg-type]
    with pytest.raises(durable.errors.WorkflowNotFoundError):
        await client.get_handle("nope").state_at(1)


async def test_without_snapshots_the_record_is_folded_from_the_start(
        client: durable.Client) -> None:
    async with worker(client, snapshot_every=0):
        handle = await client.start(journey, 6, id="j3")
        await eventually(lambda: _state(handle, "waiting"), what="the journey to wait")
    record = await client.store.get_execution("default", "j3")
    assert record is not None
    assert await client.store.find_snapshot("default", "j3", record.run_id) is None
    for seq in range(1, record.last_seq + 1):
        assert comparable(await handle.state_at(seq)) == comparable(
            await handle.state_at(seq, replay=True))
    assert (await handle.describe()).suspended_at == line("WAITING")


def test_snapshot_settings_are_checked(client: durable.Client) -> None:
    with pytest.raises(ValueError, match="snapshot_every"):
        durable.Worker(client, [journey], snapshot_every=-1)
    with pytest.raises(ValueError, match="snapshots_kept"):
        durable.Worker(client, [journey], snapshots_kept=0)


@durable.workflow(name="TTSeries")
async def series(ctx: durable.Context, part: int) -> int:
    ctx.set_state(f"part {part}")
    await ctx.wait_for("next")  # SERIES
    if part == 1:
        ctx.continue_as_new(2)
    return part


async def test_an_earlier_run_can_be_visited(client: durable.Client) -> None:
    async with durable.Worker(client, [series], poll_interval=0.02):
        handle = await client.start(series, 1, id="s1")
        await eventually(lambda: _state(handle, "part 1"), what="the first run")
        await handle.send("next")
        await eventually(lambda: _state(handle, "part 2"), what="the second run")
        first_run = (await handle.history())[0].continued_from  # type: ignore[union-attr]
        assert first_run is not None
        old = await handle.history(run_id=first_run)
        for event in old:
            recorded = await handle.state_at(event.seq, run_id=first_run)
            replayed = await handle.state_at(event.seq, run_id=first_run, replay=True)
            assert comparable(recorded) == comparable(replayed)
        end = await handle.state_at(len(old), run_id=first_run)
        assert (end.run_id, end.status, end.state) == (first_run, "continued", "part 1")
        now = await handle.state_at(datetime.now(timezone.utc))
        assert (now.status, now.state) == ("running", "part 2")
        with pytest.raises(HistoryRangeError, match="no run 'nope'"):
            await handle.state_at(1, run_id="nope")
        with pytest.raises(HistoryRangeError):
            await handle.state_at(len(old) + 1, run_id=first_run)
