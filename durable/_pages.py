"""Pages of executions for operators: what ``durable list`` and the web UI ask a client for.

One call reads one page (``page``), newest first, with the cursor of the next one; another
reads the counts per status (``counts``). Both check the caller's tenants against the
client's scope (``connect(tenants=...)``) first: a page never shows a tenant the client may
not act for. The store does the work (``Store.page_executions``: keyset paging over indexes).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Final, NamedTuple

from ._scope import permit, permit_all
from ._stores._listing import LIST_STATUSES, ExecutionQuery, decode_cursor, encode_cursor
from ._stores._records import ExecutionRecord
from ._validate import check_count, check_id
from .errors import InvalidArgumentError

if TYPE_CHECKING:
    from ._client import Client

__all__ = ["COUNT_CAP", "LIST_STATUSES", "Page", "counts", "page", "parse_when", "query"]

COUNT_CAP: Final = 10_000  # counts per status stop here ("10,000+")
_MAX_PAGE: Final = 1_000
_AGE_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}  # as the CLI's


class Page(NamedTuple):
    """A page of executions and the cursor of the next one (None: this is the last)."""

    executions: list[ExecutionRecord]
    after: str | None


def query(client: Client, *, tenants: Collection[str] | None = None, workflow: str | None = None,
          status: str | None = None, since: float | None = None, until: float | None = None,
          id_prefix: str | None = None) -> ExecutionQuery:
    """The filters, once the client may read ``tenants`` (None: every tenant, which needs a
    client of every tenant; ``TenantPermissionError`` otherwise)."""
    if tenants is None:
        permit_all(client.tenants, "listing every tenant")
        names = None
    else:
        names = frozenset(permit(client.tenants, t) for t in tenants)
        if not names:
            raise InvalidArgumentError("a page names at least one tenant (or every tenant: None)",
                                       parameter="tenants")
    if workflow is not None:
        check_id(workflow, "a workflow name")
    if id_prefix is not None and not isinstance(id_prefix, str):
        raise InvalidArgumentError(f"an id prefix is a str, not {id_prefix!r}",
                                   parameter="id_prefix")
    return ExecutionQuery(names, workflow or None, status or None, since, until, id_prefix or None)


async def page(client: Client, where: ExecutionQuery, *, after: str | None = None,
               limit: int = 50) -> Page:
    """Up to ``limit`` executions, newest first, after the cursor ``after``."""
    check_count(limit, "limit", minimum=1, maximum=_MAX_PAGE)
    cursor = None if not after else decode_cursor(after)
    records = await client.store.page_executions(where, after=cursor, limit=limit + 1)
    more = len(records) > limit
    records = records[:limit]
    return Page(records, encode_cursor(records[-1]) if more else None)


async def counts(client: Client, where: ExecutionQuery, *, cap: int = COUNT_CAP) -> dict[str, int]:
    """Executions per status (``LIST_STATUSES``) that the filters select, each up to ``cap``."""
    return await client.store.count_executions(where, cap=check_count(cap, "cap", minimum=1))


def parse_when(text: str, *, now: float) -> float:
    """A moment as epoch seconds: an ISO 8601 date or date and time (local time unless it
    names an offset), or an age (``90s``, ``5m``, ``2h``, ``1d``, ``1w``: that long before
    ``now``). ``InvalidArgumentError`` otherwise."""
    text = text.strip()
    if text and text[-1] in _AGE_UNITS and text[:-1].replace(".", "", 1).isdigit():
        return now - float(text[:-1]) * _AGE_UNITS[text[-1]]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgumentError(
            f"{text!r} is not a moment: use an ISO 8601 date (2026-01-05), a date and time "
            "(2026-01-05T10:30, local time unless it ends in Z or +HH:MM) or an age (2h, 1d)",
            parameter="when") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # local time
    return moment.astimezone(timezone.utc).timestamp()
