"""How the SQLite store's rows become records: one encoder and one decoder per payload
type, built once (msgspec performance tips)."""

from __future__ import annotations

from typing import Any, Final

import msgspec

from ..._history import ErrorInfo
from ..._options import unpack
from ..._queues import unroute
from .._records import ActionTask, ExecutionRecord
from ._connection import Row

__all__ = ["action_from_row", "action_key", "decode_any", "decode_dict", "decode_error",
           "decode_list", "encode", "record_from_row"]

encode: Final = msgspec.msgpack.Encoder().encode
decode_any: Final = msgspec.msgpack.Decoder().decode
decode_list: Final = msgspec.msgpack.Decoder(list[Any]).decode
decode_dict: Final = msgspec.msgpack.Decoder(dict[str, Any]).decode
decode_error: Final = msgspec.msgpack.Decoder(ErrorInfo).decode


def record_from_row(row: Row) -> ExecutionRecord:
    """An ``executions`` row (``EXECUTION_COLUMNS``) as a record."""
    (tenant, workflow_id, run_id, workflow, version, status, created_at, updated_at, last_seq,
     state, data, result, error, task_error, priority, fairness_key) = row
    name, queue = unroute(workflow)
    return ExecutionRecord(tenant, workflow_id, run_id, name, version, status, created_at,
                           updated_at, last_seq, state, decode_dict(data), decode_any(result),
                           None if error is None else decode_error(error), task_error, queue,
                           priority, fairness_key or None)


def action_from_row(row: Row, reclaimed: bool = False) -> ActionTask:
    """An ``action_tasks`` row (``ACTION_COLUMNS``); ``reclaimed``: its lease expired, so the
    attempt it was on counts."""
    (tenant, workflow_id, run_id, cmd, stored, args, kwargs, attempt, visible_at, error,
     priority, fairness_key) = row
    name, queue = unroute(stored)
    keywords, options = unpack(decode_dict(kwargs))
    return ActionTask(tenant, workflow_id, run_id, cmd, name, decode_list(args),
                      keywords, attempt + bool(reclaimed), visible_at, error, queue, options,
                      priority, fairness_key or None)


def action_key(task: ActionTask) -> Row:
    """The primary key of an action task's row."""
    return (task.tenant, task.workflow_id, task.run_id, task.cmd)

