"""Pages of executions for people: filters, keyset paging and counts per status.

What ``durable list`` and the web UI show. A page is newest first, ordered by the key
(``created_at``, ``workflow_id``, ``tenant``) descending; the next page starts after the last
row's key (a cursor), so page 10,000 costs what page 1 costs: each store reads it from an
index that starts at the cursor, never by skipping rows (no ``OFFSET``).

Statuses here are what an operator tells apart, not only the stored column:

* ``running``: running and able to run; ``held``: running, but its last workflow task could
  not run (``task_error``: non-determinism or a damaged history) until the code is fixed;
* ``completed``, ``failed``, ``cancelled``: ended;
* ``continued``: it continued as new at least once (its current run is not its first),
  whatever its status now (the stores count runs in the ``runs`` column).

Counts per status are capped (``cap``): counting a million rows of one status is a full
index scan, so a count reads at most ``cap`` index entries and the page says "10,000+".
The SQL stores share ``where_clause``: the conditions are spelled so that their indexes
(PostgreSQL migration 0021, SQLite 0016) answer them.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Callable, Final

import msgspec

from ..errors import InvalidArgumentError
from ._records import ExecutionRecord

__all__ = ["LIST_STATUSES", "Cursor", "ExecutionQuery", "cursor_of", "decode_cursor",
           "display_status", "encode_cursor", "matches", "where_clause"]

LIST_STATUSES: Final = ("running", "held", "completed", "failed", "cancelled", "continued")

Cursor = tuple[float, str, str]  # (created_at, workflow_id, tenant) of a page's last row


class ExecutionQuery(msgspec.Struct, frozen=True):
    """Which executions a page shows; None: any. ``tenants`` None is every tenant;
    ``since``/``until`` bound ``created_at`` (``since <= created_at < until``)."""

    tenants: frozenset[str] | None = None
    workflow: str | None = None
    status: str | None = None
    since: float | None = None
    until: float | None = None
    id_prefix: str | None = None

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in LIST_STATUSES:
            raise InvalidArgumentError(f"status is one of {', '.join(LIST_STATUSES)}, not "
                                       f"{self.status!r}", parameter="status")


def display_status(record: ExecutionRecord) -> str:
    """The status an operator sees: ``held`` for a running execution that cannot run."""
    return "held" if record.status == "running" and record.task_error else record.status


def cursor_of(record: ExecutionRecord) -> Cursor:
    """The paging key of a row."""
    return record.created_at, record.workflow_id, record.tenant


def encode_cursor(record: ExecutionRecord) -> str:
    """The cursor of the page after ``record`` (opaque text: URL-safe base64 of JSON)."""
    return base64.urlsafe_b64encode(msgspec.json.encode(cursor_of(record))).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    """A cursor from ``encode_cursor``; ``InvalidArgumentError`` if it is not one."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        created_at, workflow_id, tenant = msgspec.json.decode(raw, type=tuple[float, str, str])
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise InvalidArgumentError(f"{text!r} is not a cursor: pass the one the previous page "
                                   "printed (next page: --after CURSOR)",
                                   parameter="after") from None
    return created_at, workflow_id, tenant


def _status_matches(record: ExecutionRecord, status: str, runs: int) -> bool:
    if status == "continued":
        return runs > 1
    return display_status(record) == status


def matches(record: ExecutionRecord, query: ExecutionQuery, runs: int,
            status: str | None = None) -> bool:
    """Whether the memory store's ``record`` (with ``runs`` runs so far) is in the page;
    ``status`` replaces the query's (counts)."""
    q, status = query, query.status if status is None else status
    return ((q.tenants is None or record.tenant in q.tenants)
            and (q.workflow is None or record.workflow == q.workflow)
            and (status is None or _status_matches(record, status, runs))
            and (q.since is None or record.created_at >= q.since)
            and (q.until is None or record.created_at < q.until)
            and (q.id_prefix is None or record.workflow_id.startswith(q.id_prefix)))


_STATUS_SQL: Final = {
    "running": "status = 'running' AND task_error IS NULL",
    "held": "status = 'running' AND task_error IS NOT NULL",
    "completed": "status = 'completed'",
    "failed": "status = 'failed'",
    "cancelled": "status = 'cancelled'",
    "continued": "runs > 1",
}


def where_clause(query: ExecutionQuery, after: Cursor | None, *, mark: Callable[[int], str],
                 workflow_name: str, id_prefix: Callable[[str, list[Any]], str],
                 status: str | None = None) -> tuple[str, list[Any]]:
    """The SQL conditions of a page (or, with ``status``, of one status's count) and their
    parameters. ``mark(n)`` spells parameter n; ``workflow_name`` is the expression its
    index is on (a route's name: ``_queues.route``); ``id_prefix(prefix, params)`` adds
    the parameters of the prefix condition and spells it."""
    params: list[Any] = []

    def add(value: Any) -> str:
        params.append(value)
        return mark(len(params))

    q, status = query, query.status if status is None else status
    parts: list[str] = []
    if q.tenants is not None:
        names = sorted(q.tenants)
        parts.append(f"tenant = {add(names[0])}" if len(names) == 1 else
                     "tenant IN (" + ", ".join(add(n) for n in names) + ")")
    if q.workflow is not None:
        parts.append(f"{workflow_name} = {add(q.workflow)}")
    if status is not None:
        parts.append(_STATUS_SQL[status])
    if q.since is not None:
        parts.append(f"created_at >= {add(q.since)}")
    if q.until is not None:
        parts.append(f"created_at < {add(q.until)}")
    if q.id_prefix is not None:
        parts.append(id_prefix(q.id_prefix, params))
    if after is not None:
        a, b, c = add(after[0]), add(after[1]), add(after[2])
        parts.append(f"created_at <= {a} AND (created_at, workflow_id, tenant) < ({a}, {b}, {c})")
    return " AND ".join(parts) or "TRUE", params


ORDER: Final = "ORDER BY created_at DESC, workflow_id DESC, tenant DESC"
