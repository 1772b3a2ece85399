"""History integrity on every store: each kind of damage to the stored rows (truncated, a
deleted row, a gap, swapped or reordered rows, a flipped bit, another event type, undecodable
bytes) is a ``HistoryError`` naming tenant, workflow id, run and seq on every read, and
``durable verify`` (``verify_store``) names it too; rows from before checksums are read as they
are; a damaged execution is held, not failed, and ``describe()`` says why."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from msgspec.structs import replace

import durable
from durable._history import ActionFailed, ErrorInfo, StartTimer, decode_event, encode_event
from durable._stores import RunCheck, Start, Store, workflow_ref
from durable._stores._integrity import chain, verify_store
from durable._stores.memory import MemoryStore
from durable.errors import HistoryError

from .test_commit_effects import commit as commit_effects
from .test_store import (
    NOW, T1, act, claim, claim_actions, commit, completion, received, seqs, started,
    started_with,
)

RUN = (T1, "wf-1", "run-wf-1")
Rows = list[tuple[int, bytes, Any]]


class RawRows:
    """The ``events`` rows of a store, read and damaged behind its back."""

    def __init__(self, store: Store, url: str) -> None:
        self.store = store
        self.url = url
        self._pg: asyncpg.Connection | None = None

    async def close(self) -> None:
        if self._pg is not None:
            await self._pg.close()

    async def _sql(self, statement: str, *args: Any) -> list[Any]:
        if self.url.startswith("sqlite:"):
            with sqlite3.connect(self.url[len("sqlite:///"):], isolation_level=None) as conn:
                numbered = {str(i): value for i, value in enumerate(args, 1)}  # ?1, ?2 ...
                rows = conn.execute(statement.replace("$", "?"), numbered).fetchall()
            conn.close()
            return rows
        if self._pg is None:
            self._pg = await asyncpg.connect(self.url)
        return list(await self._pg.fetch(statement, *args))

    def _memory(self, run: tuple[str, str, str] = RUN) -> list[tuple[int, bytes, Any]]:
        assert isinstance(self.store, MemoryStore)
        return self.store._histories[run]

    async def rows(self, run: tuple[str, str, str] = RUN) -> Rows:
        if isinstance(self.store, MemoryStore):
            return list(self._memory(run))
        return [tuple(r) for r in await self._sql(
            "SELECT seq, body, checksum FROM events WHERE tenant = $1 AND workflow_id = $2 "
            "AND run_id = $3 ORDER BY seq", *run)]

    async def put(self, seq: int, body: bytes, checksum: Any,
                  run: tuple[str, str, str] = RUN) -> None:
        """Overwrite the row at ``seq``."""
        if isinstance(self.store, MemoryStore):
            rows = self._memory(run)
            rows[[r[0] for r in rows].index(seq)] = (seq, body, checksum)
            return
        await self._sql("UPDATE events SET body = $1, checksum = $2 WHERE tenant = $3 "
                        "AND workflow_id = $4 AND run_id = $5 AND seq = $6",
                        body, checksum, *run, seq)

    async def put_rechained(self, seq: int, body: bytes) -> None:
        """Overwrite the body at ``seq`` with a checksum that matches it (as a writer would)."""
        if self.url.startswith("postgres"):
            await self._sql(
                "UPDATE events AS e SET body = $1, checksum = durable_checksum(p.checksum, $1) "
                "FROM events AS p WHERE (e.tenant, e.workflow_id, e.run_id) = ($2, $3, $4) "
                "AND (p.tenant, p.workflow_id, p.run_id) = ($2, $3, $4) "
                "AND e.seq = $5 AND p.seq = $5 - 1", body, *RUN, seq)
            return
        rows = {r[0]: r for r in await self.rows()}
        await self.put(seq, body, chain(RUN, rows[seq - 1][2], [body])[0])

    async def delete(self, *seqs: int) -> None:
        if isinstance(self.store, MemoryStore):
            self._memory()[:] = [r for r in self._memory() if r[0] not in seqs]
            return
        for seq in seqs:
            await self._sql("DELETE FROM events WHERE tenant = $1 AND workflow_id = $2 "
                            "AND run_id = $3 AND seq = $4", *RUN, seq)

    async def move(self, moves: dict[int, int]) -> None:
        """Give rows other seqs (``{old: new}``), as a reordering or renumbering would."""
        if isinstance(self.store, MemoryStore):
            rows = [(moves.get(s, s), b, c) for s, b, c in self._memory()]
            self._memory()[:] = sorted(rows, key=lambda r: r[0])
            return
        key = "tenant = $1 AND workflow_id = $2 AND run_id = $3"
        for old, new in moves.items():  # through negative seqs: the key stays unique
            await self._sql(f"UPDATE events SET seq = $4 WHERE {key} AND seq = $5",
                            *RUN, -new, old)
        await self._sql(f"UPDATE events SET seq = -seq WHERE {key} AND seq < 0", *RUN)

    async def forget_checksums(self) -> None:
        """Make every row look written before checksums existed."""
        if isinstance(self.store, MemoryStore):
            self._memory()[:] = [(s, b, None) for s, b, _ in self._memory()]
            return
        await self._sql("UPDATE events SET checksum = NULL")


@pytest.fixture
async def raw(store: Store, store_url: str) -> AsyncIterator[RawRows]:
    rows = RawRows(store, store_url)
    yield rows
    await rows.close()


async def eight_events(store: Store) -> None:
    """wf-1 with seqs 1-8: started, a task (action, timer), an input, an outcome, a task."""
    await started_with(store, act(1), StartTimer(2, 10.0, NOW + 10))  # 1-4
    await store.append_input(T1, "wf-1", received("go"), now=NOW + 1)  # 5
    [action] = await claim_actions(store)
    assert await store.complete_action_task(action, completion(action), now=NOW + 2)  # 6
    [task] = await claim(store, now=NOW + 3)
    assert await commit(store, task, act(3), now=NOW + 3)  # 7, 8
    assert seqs(await store.read_history(T1, "wf-1")) == list(range(1, 9))


async def verified(store: Store) -> list[RunCheck]:
    return [check async for check in verify_store(store, T1)]


def flip_a_bit(body: bytes) -> bytes:
    return body[:-1] + bytes([body[-1] ^ 0x01])


async def another_type(raw: RawRows, seq: int) -> bytes:
    completed = decode_event(dict((s, b) for s, b, _ in await raw.rows())[seq])
    return encode_event(ActionFailed(completed.seq, completed.time, 1,
                                     ErrorInfo("RuntimeError", "nobody wrote this")))


async def truncate(raw: RawRows) -> None:
    await raw.delete(7, 8)


async def delete_a_row(raw: RawRows) -> None:
    await raw.delete(4)


async def renumber_leaving_a_gap(raw: RawRows) -> None:
    await raw.move({seq: seq + 1 for seq in range(4, 9)})


async def swap_two_rows(raw: RawRows) -> None:
    await raw.move({3: 4, 4: 3})


async def reorder_rows(raw: RawRows) -> None:
    await raw.move({3: 5, 4: 3, 5: 4})


async def flip_a_bit_in_a_body(raw: RawRows) -> None:
    seq, body, checksum = (await raw.rows())[4]
    await raw.put(seq, flip_a_bit(body), checksum)


async def swap_an_event_type(raw: RawRows) -> None:  # ActionCompleted -> ActionFailed
    seq, _, checksum = (await raw.rows())[5]
    await raw.put(seq, await another_type(raw, seq), checksum)


async def write_undecodable_bytes(raw: RawRows) -> None:
    await raw.put_rechained(8, b"\xc1 not MessagePack")  # its checksum matches: it decodes not


DAMAGE = [  # how, and what (kind, seq) every read and durable verify must name
    (truncate, "truncated", 7),
    (delete_a_row, "gap", 4),
    (renumber_leaving_a_gap, "gap", 4),
    (swap_two_rows, "checksum", 3),
    (reorder_rows, "checksum", 3),
    (flip_a_bit_in_a_body, "checksum", 5),
    (swap_an_event_type, "checksum", 6),
    (write_undecodable_bytes, "undecodable", 8),
]


def assert_names(error: HistoryError, damage: str, seq: int) -> None:
    assert (error.tenant, error.workflow_id, error.run_id) == RUN
    assert (error.damage, error.seq) == (damage, seq), str(error)
    assert f"seq {seq}" in str(error) and repr(RUN[1]) in str(error)


@pytest.mark.parametrize(("how", "damage", "seq"), DAMAGE, ids=[d[0].__name__ for d in DAMAGE])
async def test_each_kind_of_damage_is_named_by_every_read_and_by_verify(
        store: Store, raw: RawRows, how: Any, damage: str, seq: int) -> None:
    await eight_events(store)
    assert [c.error for c in await verified(store)] == [None]
    await how(raw)
    with pytest.raises(HistoryError) as read:
        await store.read_history(T1, "wf-1")
    assert_names(read.value, damage, seq)
    with pytest.raises(HistoryError) as paged:  # time travel reads pages
        for after in range(0, 8, 3):
            await store.read_history(T1, "wf-1", after_seq=after, limit=3)
    assert paged.value.damage is not None
    [check] = await verified(store)
    assert check.error is not None
    assert_names(check.error, damage, seq)


async def test_a_read_after_a_seq_checks_its_rows_against_the_row_before(
        store: Store, raw: RawRows) -> None:
    await eight_events(store)
    assert seqs(await store.read_history(T1, "wf-1", after_seq=5)) == [6, 7, 8]
    assert seqs(await store.read_history(T1, "wf-1", after_seq=8)) == []
    seq, body, checksum = (await raw.rows())[6]
    await raw.put(seq, flip_a_bit(body), checksum)
    assert seqs(await store.read_history(T1, "wf-1", after_seq=0, limit=5)) == [1, 2, 3, 4, 5]
    with pytest.raises(HistoryError) as after:
        await store.read_history(T1, "wf-1", after_seq=5)
    assert_names(after.value, "checksum", 7)
    await raw.delete(5)  # the anchor of a read after seq 5
    with pytest.raises(HistoryError) as anchor:
        await store.read_history(T1, "wf-1", after_seq=5)
    assert_names(anchor.value, "gap", 5)


async def test_a_changed_checksum_alone_is_named_by_verify(store: Store, raw: RawRows) -> None:
    await eight_events(store)
    seq, body, checksum = (await raw.rows())[2]
    await raw.put(seq, body, b"\x00" * 8 if isinstance(checksum, bytes) else checksum ^ 1)
    [check] = await verified(store)
    assert check.error is not None
    assert_names(check.error, "checksum", 3)


async def test_rows_from_before_checksums_are_read_as_they_are(store: Store,
                                                               raw: RawRows) -> None:
    await eight_events(store)
    before = await store.read_history(T1, "wf-1")
    await raw.forget_checksums()  # as a store upgraded in place has them
    assert await store.read_history(T1, "wf-1") == before
    assert await store.read_history(T1, "wf-1", after_seq=4) == before[4:]
    await store.append_input(T1, "wf-1", received("later"), now=NOW + 5)  # chained from here
    assert seqs(await store.read_history(T1, "wf-1")) == list(range(1, 10))
    [check] = await verified(store)
    assert (check.events, check.unchecked, check.error) == (9, 8, None)
    seq, body, checksum = (await raw.rows())[8]
    await raw.put(seq, flip_a_bit(body), checksum)  # the new row is protected
    with pytest.raises(HistoryError) as read:
        await store.read_history(T1, "wf-1")
    assert_names(read.value, "checksum", 9)


async def test_undecodable_rows_without_checksums_are_named_too(store: Store,
                                                                raw: RawRows) -> None:
    await eight_events(store)
    await raw.forget_checksums()
    await raw.put(5, b"\xc1", None)
    with pytest.raises(HistoryError) as read:
        await store.read_history(T1, "wf-1")
    assert_names(read.value, "undecodable", 5)
    seq, body, _ = (await raw.rows())[3]
    await raw.put(5, body, None)  # seq 4's event at seq 5
    with pytest.raises(HistoryError) as misplaced:
        await store.read_history(T1, "wf-1")
    assert_names(misplaced.value, "misplaced", 5)


async def test_a_claim_does_not_bring_a_damaged_history_along(store: Store,
                                                              raw: RawRows) -> None:
    await eight_events(store)
    await store.append_input(T1, "wf-1", received("more"), now=NOW + 4)
    seq, body, checksum = (await raw.rows())[7]
    await raw.put(seq, flip_a_bit(body), checksum)
    [task], _ = await store.claim_refs([workflow_ref(T1, "wf-1")], "w1", workflows=["Flow"],
                                       actions=[], lease=30.0, now=NOW + 5,
                                       history_after=lambda tenant, wf: 6)
    assert task.history is None  # the worker reads it, and that read names the damage


async def test_every_run_is_verified(store: Store, raw: RawRows) -> None:
    await started_with(store)
    await store.append_input(T1, "wf-1", received("go"), now=NOW + 1)
    [task] = await claim(store, now=NOW + 1)
    nxt = replace(started(run="run-2"), version="2")
    assert await commit_effects(store, task, starts=[Start(nxt)], now=NOW + 2)
    checks = await verified(store)
    assert sorted(c.run_id for c in checks) == ["run-2", "run-wf-1"]
    assert all(c.error is None for c in checks)
    assert seqs(await store.read_history(T1, "wf-1", run_id="run-wf-1")) == [1, 2, 3, 4]
    seq, body, checksum = (await raw.rows())[1]
    await raw.put(seq, flip_a_bit(body), checksum)  # in the earlier run
    with pytest.raises(HistoryError) as read:
        await store.read_history(T1, "wf-1", run_id="run-wf-1")
    assert_names(read.value, "checksum", 2)
    assert seqs(await store.read_history(T1, "wf-1")) == [1]
    [damaged] = [c for c in await verified(store) if c.error is not None]
    assert damaged.run_id == "run-wf-1"


# ---- a damaged execution is held, not failed ------------------------------------------------


@durable.workflow(name="IntegrityFlow")
async def integrity_flow(ctx: durable.Context) -> str:
    await ctx.wait_for("Go")
    return "done"


async def test_a_damaged_execution_is_held_and_describe_says_why(store: Store) -> None:
    now = [NOW]
    client = durable.Client(store, tenant=T1, clock=lambda: now[0])
    worker = durable.Worker(client, workflows=[integrity_flow])
    handle = await client.start(integrity_flow, id="wf-1")
    await worker.run_until_idle()
    raw = RawRows(store, store.url)
    try:
        run = (T1, "wf-1", (await handle.describe()).run_id)
        good = await raw.rows(run)
        assert [row[0] for row in good] == [1, 2]
        await raw.put(2, flip_a_bit(good[1][1]), good[1][2], run)
        await handle.send("Go")
        worker = durable.Worker(client, workflows=[integrity_flow])  # as after a restart:
        await worker.run_until_idle()                                 # it replays the rows
        held = await handle.describe()  # replayed on what nobody wrote, it would be completed
        assert held.status == "running" and held.task_error is not None
        assert "damaged history" in held.task_error and "seq 2" in held.task_error
        with pytest.raises(HistoryError):
            await handle.history()
        [check] = await verified(store)
        assert check.error is not None and check.error.seq == 2
        await raw.put(*good[1], run)  # restored from a backup: once its backoff is over,
        now[0] += 120                 # it goes on
        await worker.run_until_idle()
        assert await handle.result(timeout=5) == "done"
    finally:
        await raw.close()
