"""The PostgreSQL store's pages of executions (``durable._stores._listing``).

Each page is one statement built from the filters given (a fixed statement with ``$n IS NULL
OR ...`` for every filter would get one generic plan that uses no index), so that each
combination is answered from an index of migration 0021 starting at the cursor. The counts of
all statuses are one statement of capped subqueries.
"""

from __future__ import annotations

from typing import Any, Final

from .._listing import LIST_STATUSES, ORDER, Cursor, ExecutionQuery, where_clause
from .._records import ExecutionRecord
from . import _statements as sql
from ._connection import PostgresBase
from ._rows import record_from_row

__all__ = ["PostgresListing"]

# The name part of a route (``_queues.route``): what executions_by_workflow_name indexes.
_NAME: Final = "substr(workflow, strpos(workflow, chr(30)) + 1)"


def _where(query: ExecutionQuery, after: Cursor | None, status: str | None = None,
           offset: int = 0) -> tuple[str, list[Any]]:
    """The page's conditions, their parameters numbered from ``offset + 1``."""

    def id_prefix(prefix: str, params: list[Any]) -> str:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params.append(escaped + "%")
        return f"workflow_id LIKE ${len(params) + offset}"  # executions_by_id_prefix

    return where_clause(query, after, mark=lambda n: f"${n + offset}", workflow_name=_NAME,
                        id_prefix=id_prefix, status=status)


class PostgresListing(PostgresBase):
    """Pages of executions and counts per status (see ``ExecutionStore.page_executions``)."""

    async def page_executions(self, query: ExecutionQuery, *, after: Cursor | None = None,
                              limit: int = 50) -> list[ExecutionRecord]:
        """Up to ``limit`` executions after the cursor, newest first."""
        where, params = _where(query, after)
        rows = await self._fetch(f"SELECT {sql.EXECUTION_COLUMNS} FROM executions WHERE "
                                 f"{where} {ORDER} LIMIT {int(limit)}", *params)
        return [record_from_row(row) for row in rows]

    async def count_executions(self, query: ExecutionQuery, *, cap: int) -> dict[str, int]:
        """How many executions of each status match (``query.status`` aside), each at most
        ``cap``."""
        parts: list[str] = []
        params: list[Any] = []
        for status in LIST_STATUSES:
            where, own = _where(query, None, status, offset=len(params))
            params.extend(own)
            parts.append(f"(SELECT count(*) FROM (SELECT 1 FROM executions WHERE {where} "
                         f"LIMIT {int(cap)}) AS s)")
        row = await self._fetchrow("SELECT " + ", ".join(parts), *params)
        assert row is not None
        return dict(zip(LIST_STATUSES, (int(v) for v in row)))
