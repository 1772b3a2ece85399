"""The SQLite store's pages of executions (``durable._stores._listing``): one statement per
page, built from the filters given, so that each is answered from an index of migration 0016
starting at the cursor."""

from __future__ import annotations

import sqlite3
from typing import Any, Final

from .._listing import LIST_STATUSES, ORDER, Cursor, ExecutionQuery, where_clause
from .._records import ExecutionRecord
from . import _statements as sql
from ._connection import SQLiteBase
from ._rows import record_from_row

__all__ = ["SQLiteListing"]

# The name part of a route (``_queues.route``): what executions_by_workflow_name indexes.
_NAME: Final = "substr(workflow, instr(workflow, char(30)) + 1)"


def _id_prefix(prefix: str, params: list[Any]) -> str:
    """A range of the primary key (SQLite's LIKE ignores case and would read every row)."""
    params.extend([prefix, prefix + "\U0010ffff"])
    return f"workflow_id >= ?{len(params) - 1} AND workflow_id < ?{len(params)}"


def _where(query: ExecutionQuery, after: Cursor | None,
           status: str | None = None) -> tuple[str, list[Any]]:
    return where_clause(query, after, mark=lambda n: f"?{n}", workflow_name=_NAME,
                        id_prefix=_id_prefix, status=status)


def _page(conn: sqlite3.Connection, query: ExecutionQuery, after: Cursor | None,
          limit: int) -> list[ExecutionRecord]:
    where, params = _where(query, after)
    rows = conn.execute(f"SELECT {sql.EXECUTION_COLUMNS} FROM executions WHERE {where} "
                        f"{ORDER} LIMIT {int(limit)}", params)
    return [record_from_row(row) for row in rows]


def _counts(conn: sqlite3.Connection, query: ExecutionQuery, cap: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in LIST_STATUSES:
        where, params = _where(query, None, status)
        counts[status] = conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM executions WHERE "
                                      f"{where} LIMIT {int(cap)})", params).fetchone()[0]
    return counts


class SQLiteListing(SQLiteBase):
    """Pages of executions and counts per status (see ``ExecutionStore.page_executions``)."""

    async def page_executions(self, query: ExecutionQuery, *, after: Cursor | None = None,
                              limit: int = 50) -> list[ExecutionRecord]:
        """Up to ``limit`` executions after the cursor, newest first."""
        return await self._run(_page, query, after, limit)

    async def count_executions(self, query: ExecutionQuery, *, cap: int) -> dict[str, int]:
        """How many executions of each status match (``query.status`` aside), each at most
        ``cap``."""
        return await self._run(_counts, query, cap)
