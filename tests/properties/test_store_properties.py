"""Properties on the SQLite and PostgreSQL stores (issue 12): what the stores would refuse, or
take and then fail on for ever (NUL, lone surrogates, ints of the wrong type, ids too long for
an index or a NOTIFY payload, NaN), is refused with the same typed errors as on the memory
store, and every execution that was started still decodes and finishes; and decoding a
history, from bytes, JSON or a store's rows, raises ``HistoryError`` for anything that is not
one.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

import durable
from durable._history import (
    ActionCompleted, ErrorInfo, Event, EventReceived, StateChanged, TaskCompleted, TimerStarted,
    WorkflowFailed, WorkflowStarted, decode_event, decode_history_json, encode_event,
    encode_history_json,
)
from durable._stores import Store, open_store
from durable.errors import HistoryError

from ._strategies import ids, mix, payloads, texts, values
from .test_public_api import finishes, waiter, works_or_typed


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/properties.db"
    return str(request.getfixturevalue("pg_database"))


@pytest.fixture
async def client(store_url: str) -> AsyncIterator[durable.Client]:
    async with durable.connect(store_url, tenant=f"t-{uuid.uuid4().hex[:8]}") as client:
        client.poll_interval = 0.02
        async with durable.Worker(client, [waiter], poll_interval=0.02, lease=5.0):
            yield client


@given(workflow_id=st.one_of(st.none(), ids()), tenant=st.one_of(st.none(), ids()),
       args=st.lists(payloads(), max_size=2), name=ids(), payload=payloads(),
       key=st.one_of(st.none(), ids()), reason=mix((2, texts()), (1, values())))
async def test_a_store_takes_or_refuses_any_start_send_and_cancel(
        client: durable.Client, workflow_id: Any, tenant: Any, args: list[Any], name: Any,
        payload: Any, key: Any, reason: Any) -> None:
    ok, handle = await works_or_typed(client.start(waiter, *args, id=workflow_id,
                                                   tenant=tenant))
    if not ok:
        return
    await works_or_typed(handle.send(name, payload, idempotency_key=key))
    await works_or_typed(handle.cancel(reason))
    await finishes(handle)


# ---- decoding -------------------------------------------------------------------------------


SAMPLES: list[Event] = [
    WorkflowStarted(1, 1.5, "Flow", "1", "wf", "run", "t", [1, "a"], {"k": None}),
    TaskCompleted(2, 2.0, "file.py:3"),
    TimerStarted(3, 2.0, 1, 5.0, 7.0),
    EventReceived(4, 3.0, "Go", {"x": [1, 2.5]}, "key"),
    ActionCompleted(5, 4.0, 0, b"bytes", 2),
    StateChanged(6, 4.0, "waiting"),
    WorkflowFailed(7, 5.0, ErrorInfo("ValueError", "no", "tb")),
]
ENCODED = [encode_event(e) for e in SAMPLES]


@st.composite
def damaged(draw: st.DrawFn, encoded: list[bytes]) -> bytes:
    """An encoding with some bytes changed, cut short or extended."""
    data = bytearray(draw(st.sampled_from(encoded)))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data) - 1))
        data[position] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut] if draw(st.booleans()) else data + draw(st.binary(max_size=8)))


def decodes_or_history_error(data: Any, decode: Any) -> None:
    try:
        decoded = decode(data)
    except HistoryError:
        event("HistoryError")
        return
    event("decoded")
    assert decoded is not None


@given(data=mix((1, st.binary(max_size=64)), (3, damaged(ENCODED))))
def test_decoding_bytes_gives_an_event_or_a_history_error(data: bytes) -> None:
    decodes_or_history_error(data, decode_event)


JSON = encode_history_json(SAMPLES)


@given(data=mix((1, st.binary(max_size=64)), (1, texts()), (3, damaged([JSON]))))
def test_decoding_json_gives_a_history_or_a_history_error(data: bytes | str) -> None:
    decodes_or_history_error(data, decode_history_json)


@pytest.fixture
async def raw_store(store_url: str) -> AsyncIterator[tuple[Store, str]]:
    store = await open_store(store_url)
    await store.create_execution(WorkflowStarted(0, 0.0, "Flow", "1", "wf", "run", "t", []),
                                 now=1.0)
    yield store, store_url
    await store.close()


async def _write_body(url: str, body: bytes) -> None:
    """Put ``body`` in the events table as the execution's seq 2, behind the store's back."""
    if url.startswith("sqlite"):
        with closing(sqlite3.connect(url[len("sqlite:///"):])) as conn, conn:
            conn.execute("DELETE FROM events WHERE seq = 2")
            conn.execute("INSERT INTO events (tenant, workflow_id, run_id, seq, body) "
                         "VALUES ('t', 'wf', 'run', 2, ?)", (body,))
        return
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DELETE FROM events WHERE seq = 2")
        await conn.execute("INSERT INTO events (tenant, workflow_id, run_id, seq, body) "
                           "VALUES ('t', 'wf', 'run', 2, $1)", body)
    finally:
        await conn.close()


@given(body=mix((1, st.binary(max_size=64)), (3, damaged(ENCODED))))
async def test_a_store_reading_damaged_rows_gives_events_or_a_history_error(
        raw_store: tuple[Store, str], body: bytes) -> None:
    store, url = raw_store
    await _write_body(url, body)
    try:
        events = await store.read_history("t", "wf")
    except HistoryError:
        event("HistoryError")
        return
    except msgspec.DecodeError as exc:  # pragma: no cover - what the property rules out
        raise AssertionError(f"a raw {type(exc).__name__}: {exc}") from exc
    event("decoded")
    assert len(events) == 2
