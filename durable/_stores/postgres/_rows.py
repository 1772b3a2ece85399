"""How the PostgreSQL store's rows become records and its records become parameters.

One encoder and one decoder per payload type, built once (msgspec performance tips); column
arrays for the PL/pgSQL functions that take many rows at once; events cut where the database
puts their ``seq``; and the ``NOTIFY`` payloads that relay ends between processes.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import Any, Final

import asyncpg
import msgspec
from msgspec.structs import replace

from ..._options import pack, unpack
from ..._queues import route, unroute
from ..._history import ErrorInfo, Event, encode_event
from .._integrity import flagged
from .._records import (
    ActionTask, ExecutionRecord, Outcome, Reply, Request, Start, WorkflowTask,
)

__all__ = ["EMPTY_DATA", "ENDED_CHANNEL", "NO_RESULT", "REPLIED_CHANNEL", "SEP", "action_columns",
           "action_from_row", "action_key", "decode_any", "decode_dict", "decode_error", "flow_columns",
           "decode_list", "decode_outcome", "encode", "history_from_rows", "notice",
           "record_from_row", "reply_columns", "request_from_row", "split_at_seq"]

# NOTIFY payload: tenant, workflow id, workflow, status and, when small enough, the base64 of
# MessagePack [result, error], joined by SEP (a NOTIFY payload is at most 8000 bytes).
ENDED_CHANNEL: Final = "durable_ended"
REPLIED_CHANNEL: Final = "durable_replied"  # NOTIFY payload: tenant, SEP, workflow_id, SEP, id
SEP: Final = "\x1f"
_NOTIFY_OUTCOME_LIMIT: Final = 6000

encode: Final = msgspec.msgpack.Encoder().encode
decode_any: Final = msgspec.msgpack.Decoder().decode
decode_list: Final = msgspec.msgpack.Decoder(list[Any]).decode
decode_dict: Final = msgspec.msgpack.Decoder(dict[str, Any]).decode
decode_error: Final = msgspec.msgpack.Decoder(ErrorInfo).decode
EMPTY_DATA: Final = encode({})
NO_RESULT: Final = encode(None)


def first_checksum(tenant: str, workflow_id: str, run_id: str, body: bytes) -> bytes:
    """The checksum of a run's first event, by migration 0008's definition (the first 8 bytes
    of sha256(seed || body), the seed those of sha256('tenant US workflow_id US run_id')):
    written with the row, it spares the row the trigger that computes it."""
    seed = hashlib.sha256(SEP.join((tenant, workflow_id, run_id)).encode()).digest()[:8]
    return hashlib.sha256(seed + body).digest()[:8]


def notice(task: WorkflowTask, outcome: Outcome, result: bytes, error: bytes | None) -> str:
    """The NOTIFY payload of an execution's end (see ``ENDED_CHANNEL``)."""
    head = SEP.join((task.tenant, task.workflow_id, outcome.workflow, outcome.status))
    packed = base64.b64encode(encode([result, error])).decode()
    if len(head) + len(packed) < _NOTIFY_OUTCOME_LIMIT:
        return head + SEP + packed
    return head


def decode_outcome(fields: list[str]) -> Outcome | None:
    """The outcome an end notice carries, or None (it was too large, or an older notice)."""
    if len(fields) != 3:
        return None
    workflow, status, packed = fields
    result, error = decode_list(base64.b64decode(packed))
    return Outcome(workflow, status, decode_any(result),
                   None if error is None else decode_error(error))


def split_at_seq(event: Event, now: float) -> tuple[bytes, bytes]:
    """Encode ``event`` at time ``now`` and cut it where its ``seq`` goes: (head, tail).

    Only the database knows the next ``seq`` of an append; it stores
    ``head || msgpack(seq) || tail`` (``durable_msgpack_uint``). Invariant: an event is a
    tagged ``array_like`` struct, encoded ``[tag, seq, time, ...]``; ``seq`` 0 is one byte.
    """
    body = encode_event(replace(event, seq=0, time=now))
    pos = _after_tag(body)
    if body[pos] != 0:
        raise RuntimeError(f"unexpected event encoding {body[:pos + 1]!r}: cannot place seq")
    return body[:pos], body[pos + 1:]


def _after_tag(body: bytes) -> int:
    """The offset after a MessagePack array header and the string (the tag) that follows."""
    first = body[0]
    pos = 1 if 0x90 <= first <= 0x9F else 3 if first == 0xDC else 5  # fixarray/array16/array32
    tag = body[pos]
    if 0xA0 <= tag <= 0xBF:  # fixstr
        return pos + 1 + (tag & 0x1F)
    if tag == 0xD9:  # str8
        return pos + 2 + body[pos + 1]
    raise RuntimeError(f"unexpected event encoding {body[:pos + 1]!r}: cannot place seq")


def history_from_rows(tenant: str, workflow_id: str, run_id: str | None, after_seq: int,
                      rows: Sequence[Any], limit: int | None = None) -> list[Event]:
    """The checked events of a history read (``SELECT_EVENTS``' columns: the current run, its
    last seq, then seq, body and the database's verdict on the row's checksum)."""
    if not rows:
        return []  # no such execution
    current, last_seq = rows[0][0], rows[0][1]
    run = (tenant, workflow_id, run_id or current)
    found = [(seq, body, intact) for _, _, seq, body, intact in rows if seq is not None]
    end = limit is None or len(found) - (after_seq > 0) < limit
    return flagged(run, found, after_seq=after_seq,
                   last_seq=last_seq if end and run[2] == current else None)


def record_from_row(row: asyncpg.Record) -> ExecutionRecord:
    """An ``executions`` row (``EXECUTION_COLUMNS``) as a record."""
    (tenant, workflow_id, run_id, workflow, version, status, created_at, updated_at, last_seq,
     state, data, result, error, task_error, priority, fairness_key) = row
    name, queue = unroute(workflow)
    return ExecutionRecord(tenant, workflow_id, run_id, name, version, status, created_at,
                           updated_at, last_seq, state, decode_dict(data), decode_any(result),
                           None if error is None else decode_error(error), task_error, queue,
                           priority, fairness_key or None)


def action_from_row(row: asyncpg.Record | tuple[Any, ...]) -> ActionTask:
    """An ``action_tasks`` row (``ACTION_COLUMNS``) as a task."""
    (tenant, workflow_id, run_id, cmd, stored, args, kwargs, attempt, visible_at, last_error,
     priority, fairness_key) = row
    name, queue = unroute(stored)
    keywords, options = unpack(decode_dict(kwargs))
    return ActionTask(tenant, workflow_id, run_id, cmd, name, decode_list(args),
                      keywords, attempt, visible_at, last_error, queue, options, priority,
                      fairness_key or None)


def action_key(task: ActionTask) -> tuple[str, str, str, int]:
    """The primary key of an action task's row."""
    return (task.tenant, task.workflow_id, task.run_id, task.cmd)


def action_columns(actions: Sequence[ActionTask]) -> tuple[list[Any], ...]:
    """A commit's new action tasks as the column arrays ``durable_commit`` takes."""
    return ([a.cmd for a in actions], [route(a.name, a.queue) for a in actions],
            [encode(a.args) for a in actions], [encode(pack(a.kwargs, a.options)) for a in actions],
            [a.attempt for a in actions], [a.visible_at for a in actions],
            [a.last_error for a in actions])


def flow_columns(tenant: str, workflow_id: str, actions: Sequence[ActionTask],
                 starts: Sequence[Start]) -> list[list[Any]] | None:
    """What ``durable_flow`` writes after a commit (see ``with_flow``): the priorities that
    action calls gave, and the priorities and fairness keys of the executions started (not a
    next run of this one: it keeps its own); None when there is none of either."""
    calls = [a for a in actions if a.options is not None and a.options.priority is not None]
    started = [s.started for s in starts
               if (s.started.priority or s.started.fairness_key is not None)
               and (s.started.tenant, s.started.workflow_id) != (tenant, workflow_id)]
    if not calls and not started:
        return None
    return [[a.cmd for a in calls], [a.priority for a in calls], [s.tenant for s in started],
            [s.workflow_id for s in started], [s.run_id for s in started],
            [s.priority for s in started], [s.fairness_key or "" for s in started]]


def request_from_row(row: asyncpg.Record | tuple[Any, ...]) -> Request:
    """A ``requests`` row (``REQUEST_COLUMNS``) as a request."""
    tenant, workflow_id, request_id, kind, name, args, created_at, status, result, error = row
    return Request(tenant, workflow_id, request_id, kind, name, decode_list(args), created_at,
                   status, None if result is None else decode_any(result),
                   None if error is None else decode_error(error))


def reply_columns(replies: Sequence[Reply]) -> tuple[list[Any], ...]:
    """Replies as the column arrays ``durable_answer`` takes, one per request (the last wins)."""
    last = list({r.id: r for r in replies}.values())
    return ([r.id for r in last], [r.status for r in last],
            [None if r.result is None else encode(r.result) for r in last],
            [None if r.error is None else encode(r.error) for r in last])

