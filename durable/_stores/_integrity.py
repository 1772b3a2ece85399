"""History integrity: each stored event carries a checksum chained to the one before it in its
run, and every read of a stored history checks the rows it returns.

The chain, as the SQLite and memory stores keep it (PostgreSQL keeps its own, see below)::

    seed(run)   = crc32("tenant␟workflow id␟run id")
    checksum(1) = crc32(body(1), seed(run))
    checksum(n) = crc32(body(n), checksum(n - 1))

``body`` is the event's stored MessagePack (which holds its ``seq``). So ``checksum(n)`` is the
CRC-32 of the run's bytes up to ``n``, started from a value of the run's own: a row that is
changed (a flipped bit, another event type), missing, moved to another seq or copied from
another run breaks it. Rows written before checksums existed have none (NULL). They are kept
as they are (upgrade in place, no backfill: a checksum computed at migration time would only
vouch for whatever the bytes had become by then): such a row is checked for its seq and for
decoding only, and the chain starts again from the seed at the next row that has a checksum.

A read (:func:`checked`) verifies the rows it returns against the row just before them (the
anchor, at ``after_seq``, itself verified when it was read): their seqs are dense, the CRC of
their bodies continued from the anchor's checksum is the last row's checksum (which, the CRC
being a running one, vouches for every body in between: one CRC over the bytes, a few ns an
event, where a call per row would cost ten times more), every body decodes, and a read to the
end of the execution's current run ends at its last seq (nothing records where an earlier run
ended). Only when that fails is each row checked on its own, to name the first damaged seq in
a ``HistoryError``. ``durable verify`` checks each row's own checksum too (:func:`scan`).

PostgreSQL decides the seq of an input inside SQL functions (``durable_append``) and has no
CRC-32 before version 18, so there the database keeps the chain itself (SHA-256, first 8
bytes, migration 0008: computed where the rows are written, by ``durable_commit`` or a trigger
on ``events``, and for a run's first row by the store, ``postgres._rows.first_checksum``) and
checks each row against the one before it in the statement that reads them; :func:`flagged`
takes its verdict per row (True, False, or None for a row without a checksum) and checks the
rest as :func:`checked` does.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from operator import itemgetter
from typing import Any, Final

import msgspec

from .._history import Event
from ..errors import HistoryError
from ._base import ExecutionStore
from ._records import RunCheck

__all__ = ["FlaggedRow", "Row", "RunKey", "chain", "checked", "damaged", "flagged", "scan",
           "verify_store"]

RunKey = tuple[str, str, str]  # (tenant, workflow_id, run_id)
Row = tuple[int, bytes, int | None]  # (seq, body, checksum): a row of a run, by seq
FlaggedRow = tuple[int, bytes, bool | None]  # (seq, body, intact), as PostgreSQL reads it

_crc32: Final = zlib.crc32
_body: Final = itemgetter(1)
_verdict: Final = itemgetter(2)
# The raw decoder: bytes that are not an event are located and named by ``_walk``.
_decode: Final = msgspec.msgpack.Decoder(Event).decode

# Kinds of damage (``HistoryError.damage``).
GAP: Final = "gap"  # a seq is missing: its row was deleted, or the rows after it renumbered
TRUNCATED: Final = "truncated"  # the current run ends before the execution's last seq
CHECKSUM: Final = "checksum"  # the row's bytes (or checksum) are not the ones written there
UNDECODABLE: Final = "undecodable"  # the bytes are not an event
MISPLACED: Final = "misplaced"  # the row holds another seq's event, or lies past the end

_WHAT: Final = {  # what is wrong with the seq named
    GAP: "is missing (its row was deleted, or the rows after it renumbered)",
    TRUNCATED: "and every event after it are missing: the history was cut short",
    CHECKSUM: "does not match its checksum: its bytes were changed, or rows swapped or moved",
    UNDECODABLE: "is not an event: its stored bytes cannot be decoded",
    MISPLACED: "is in the wrong place: its row holds another event",
}


def damaged(run: RunKey, seq: int, damage: str, detail: str = "") -> HistoryError:
    """The ``HistoryError`` for damage of kind ``damage`` at ``seq`` of ``run``."""
    tenant, workflow_id, run_id = run
    reason = f"seq {seq} {_WHAT[damage]}" + (f" ({detail})" if detail else "")
    return HistoryError(
        f"damaged history of workflow {workflow_id!r} (tenant {tenant!r}, run {run_id!r}): "
        f"{reason}; a worker holds the execution until its rows are restored",
        tenant=tenant, workflow_id=workflow_id, run_id=run_id, seq=seq, damage=damage,
        reason=reason)


def seed(run: RunKey) -> int:
    """Where a run's chain starts (and starts again after a row without a checksum)."""
    return _crc32("\x1f".join(run).encode())


def chain(run: RunKey, prev: int | None, bodies: Iterable[bytes]) -> list[int]:
    """The checksums of ``bodies`` appended to ``run`` after a row whose checksum is ``prev``
    (None: they start the run, or that row has no checksum)."""
    checksum = seed(run) if prev is None else prev
    checksums: list[int] = []
    for body in bodies:
        checksum = _crc32(body, checksum)
        checksums.append(checksum)
    return checksums


def checked(run: RunKey, rows: Sequence[Row], *, after_seq: int = 0,
            last_seq: int | None = None) -> list[Event]:
    """The events of ``rows`` (ordered by seq) once they prove intact; ``HistoryError`` else.

    With ``after_seq``, ``rows`` start with the anchor, the row at ``after_seq``, which is
    not returned. ``last_seq``: the rows reach the end of the execution's current run, which
    must end there.
    """
    anchor, rows = _anchor(run, rows, after_seq, last_seq)
    bodies = list(map(_body, rows))  # (not zip(*rows): its iterator per row costs GC time)
    start = seed(run) if anchor is None else anchor
    whole = bool(rows) and _crc32(b"".join(bodies), start) == rows[-1][2]
    return _events(run, rows, bodies, after_seq, last_seq, whole, anchor, _crc_intact)


def flagged(run: RunKey, rows: Sequence[FlaggedRow], *, after_seq: int = 0,
            last_seq: int | None = None) -> list[Event]:
    """:func:`checked` for rows whose chain the database has checked: ``intact`` is True,
    False, or None for a row without a checksum."""
    _, rows = _anchor(run, rows, after_seq, last_seq)
    verdicts = list(map(_verdict, rows))
    whole = False not in verdicts and None not in verdicts
    return _events(run, rows, list(map(_body, rows)), after_seq, last_seq, whole, None,
                   _flag_intact)


def scan(run: RunKey, rows: Sequence[Any], *, last_seq: int | None,
         database_checked: bool = False) -> RunCheck:
    """Check each row of a whole run (``durable verify``); the first damage is reported, not
    raised. ``database_checked``: ``rows`` are :data:`FlaggedRow`, else :data:`Row`."""
    unchecked = sum(1 for row in rows if row[2] is None)
    try:
        events = _walk(run, rows, 0, None, _flag_intact if database_checked else _crc_intact)
        _check_end(run, events[-1].seq if events else 0, last_seq)
    except HistoryError as exc:
        return RunCheck(*run, len(rows), unchecked, exc)
    return RunCheck(*run, len(rows), unchecked, None)


async def verify_store(store: ExecutionStore, tenant: str | None = None, *,
                       page: int = 500) -> AsyncIterator[RunCheck]:
    """Check every run of every execution of ``tenant`` (None: all tenants), oldest first."""
    after = None
    while True:
        records = await store.scan_executions(tenant, after=after, limit=page)
        for record in records:
            for check in await store.verify_history(record.tenant, record.workflow_id):
                yield check
        if len(records) < page:
            return
        after = records[-1]


# ---- internals ------------------------------------------------------------------------------

Intact = Callable[[RunKey, Any, Any], bool]  # (run, row, checksum of the row before) -> ok


def _crc_intact(run: RunKey, row: Row, prev: int | None) -> bool:
    checksum = row[2]
    return checksum is None or _crc32(row[1], seed(run) if prev is None else prev) == checksum


def _flag_intact(run: RunKey, row: FlaggedRow, prev: Any) -> bool:
    return row[2] is not False


def _anchor(run: RunKey, rows: Sequence[Any], after_seq: int,
            last_seq: int | None) -> tuple[Any, Sequence[Any]]:
    """Split off the anchor row (seq ``after_seq``): (its checksum, the rows after it)."""
    if after_seq <= 0:
        return None, rows
    if rows and rows[0][0] == after_seq:
        return rows[0][2], rows[1:]
    if rows or (last_seq is not None and last_seq >= after_seq):
        raise damaged(run, after_seq, GAP, "the one before the events read")
    return None, rows  # nothing there, and nothing expected: a read past the end


def _events(run: RunKey, rows: Sequence[Any], bodies: list[bytes], after_seq: int,
            last_seq: int | None, whole: bool, anchor: Any, intact: Intact) -> list[Event]:
    """The rows' events: all decoded at once when ``whole`` (every row's chain holds) and
    their seqs are dense, else checked row by row to name the first damage."""
    if not rows:
        _check_end(run, after_seq, last_seq, past=False)
        return []
    last = rows[-1][0]
    # Invariant: rows are ordered by seq and unique, so first and last say they are dense.
    if whole and rows[0][0] == after_seq + 1 and last == after_seq + len(rows):
        try:
            events = list(map(_decode, bodies))
        except Exception:  # noqa: BLE001 - located and named by _walk
            pass
        else:
            _check_end(run, last, last_seq)
            return events
    events = _walk(run, rows, after_seq, anchor, intact)
    _check_end(run, events[-1].seq, last_seq)
    return events


def _walk(run: RunKey, rows: Sequence[Any], after_seq: int, anchor: Any,
          intact: Intact) -> list[Event]:
    """Check the rows one by one; the events, or the first damage found."""
    events: list[Event] = []
    expect, prev = after_seq + 1, anchor
    for row in rows:
        seq = row[0]
        if seq != expect:
            raise damaged(run, expect, GAP if seq > expect else MISPLACED)
        if not intact(run, row, prev):
            raise damaged(run, seq, CHECKSUM)
        event = _decode_one(run, seq, row[1])
        if event.seq != seq:
            raise damaged(run, seq, MISPLACED, f"the event of seq {event.seq}")
        events.append(event)
        expect, prev = expect + 1, row[2]
    return events


def _decode_one(run: RunKey, seq: int, body: bytes) -> Event:
    try:
        return _decode(body)
    except Exception as exc:  # noqa: BLE001 - malformed MessagePack, or not an event
        raise damaged(run, seq, UNDECODABLE, str(exc)) from None


def _check_end(run: RunKey, last: int, last_seq: int | None, past: bool = True) -> None:
    """A read that reached the end of the execution's current run at ``last``: does it end at
    ``last_seq``? (None: not such a read; ``past``: a row was read at ``last``.)"""
    if last_seq is None:
        return
    if last < last_seq:
        raise damaged(run, last + 1, TRUNCATED, f"the execution's last seq is {last_seq}")
    if past and last > last_seq:
        raise damaged(run, last_seq + 1, MISPLACED, f"past the execution's last seq, {last_seq}")
