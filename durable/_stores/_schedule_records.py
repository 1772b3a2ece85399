"""What a store keeps of a schedule: its definition and the state the scheduler advances.

A store treats a ``ScheduleRecord`` as one opaque value (``encode_schedule``) plus a few
columns it queries by: the key, ``next_check`` (when a scheduler should look at it next,
None when nothing can happen), the ``revision`` that compare-and-set updates name, and the
lease of the scheduler processing it.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

__all__ = ["PendingRun", "ScheduleRecord", "ScheduleRun", "ScheduleSpec", "decode_schedule",
           "encode_schedule"]


class ScheduleSpec(msgspec.Struct, frozen=True):
    """A cron expression in ``timezone``, or an interval of ``every`` seconds (+ ``offset``)."""

    cron: str | None = None
    every: float | None = None
    offset: float = 0.0
    timezone: str = "UTC"


class PendingRun(msgspec.Struct, frozen=True):
    """A run waiting to start: a due time (or a manual trigger's time) and its overlap policy."""

    due: float
    manual: bool = False
    overlap: str | None = None  # a trigger's own policy; None: the schedule's


class ScheduleRun(msgspec.Struct, frozen=True):
    """A run the schedule started: the due time it stands for and its workflow id."""

    due: float
    workflow_id: str
    started_at: float
    manual: bool = False


class ScheduleRecord(msgspec.Struct, frozen=True):
    """A schedule: start ``workflow(*args, **kwargs)`` in ``tenant`` whenever ``spec`` is due.

    Definition fields are set by the client; ``next_due`` (the first due time not processed
    yet), ``running``, ``buffered``, ``recent`` and the counters are the scheduler's.
    ``triggers`` are manual runs the client asked for that no scheduler has started yet.
    ``starting`` / ``cancelling`` are a pass's intent, recorded before it starts (cancels)
    those runs and cleared after: a scheduler that finds them left over (its predecessor
    crashed in between) does them first (both are idempotent).
    """

    tenant: str
    schedule_id: str
    workflow: str
    version: str
    args: list[Any]
    kwargs: dict[str, Any]
    spec: ScheduleSpec
    overlap: str
    catchup_window: float
    created_at: float
    updated_at: float
    paused: bool = False
    note: str = ""
    revision: int = 1
    next_due: float | None = None
    running: list[str] = []
    buffered: list[PendingRun] = []
    triggers: list[PendingRun] = []
    recent: list[ScheduleRun] = []
    runs: int = 0
    skipped: int = 0
    missed: int = 0
    starting: list[ScheduleRun] = []
    cancelling: list[str] = []
    queue: str = "default"  # the task queue of the runs it starts (the workflow's own)


_encoder: Final = msgspec.msgpack.Encoder()
_decoder: Final = msgspec.msgpack.Decoder(ScheduleRecord)

encode_schedule = _encoder.encode
decode_schedule = _decoder.decode
