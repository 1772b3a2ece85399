"""The PostgreSQL store's requests: queries and updates, and their answers (``RequestStore``).

Submitting a request and answering requests are one statement each (PL/pgSQL functions of
migration 0003); an answer is relayed to other processes by ``NOTIFY`` on ``durable_replied``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...errors import WorkflowNotFoundError
from .._records import Reply, Request
from . import _statements as sql
from ._connection import PostgresBase
from ._rows import REPLIED_CHANNEL, encode, reply_columns, request_from_row

__all__ = ["PostgresRequests"]


class PostgresRequests(PostgresBase):
    """Requests in the ``requests`` table."""

    async def submit_request(self, request: Request, *, now: float) -> tuple[Request | None, bool]:
        """Record a query or update and make the execution runnable (see ``Store``)."""
        r = request
        row: Any = await self._fetchrow(sql.SUBMIT_REQUEST, r.tenant, r.workflow_id, r.id, r.kind,
                                   r.name, encode(r.args), now)
        kind, name, args, created_at, status, result, error, made = row
        if status == "missing":
            raise WorkflowNotFoundError(f"no execution {r.workflow_id!r} in tenant {r.tenant!r}",
                                        workflow_id=r.workflow_id, tenant=r.tenant)
        if status == "closed":
            return None, False
        if made:
            self.wakeup.notify()
        stored: tuple[Any, ...] = (r.tenant, r.workflow_id, r.id, kind, name, args, created_at,
                                   status, result, error)
        return request_from_row(stored), bool(made)

    async def get_request(self, tenant: str, workflow_id: str, request_id: str) -> Request | None:
        """The request, or None (and from here on, other processes' answers wake its waiters)."""
        await self._listen()
        row = await self._fetchrow(sql.SELECT_REQUEST, tenant, workflow_id, request_id)
        return None if row is None else request_from_row(row)

    async def rearm_request(self, tenant: str, workflow_id: str, request_id: str, *,
                            now: float) -> bool:
        """Make a runnable task for a pending request that has none (see ``Store``)."""
        if not await self._fetchval(sql.NEEDS_REARM, tenant, workflow_id, request_id):
            return False  # the common case: one read, no lock
        made: bool = await self._fetchval(sql.REARM_REQUEST, tenant, workflow_id, request_id, now)
        if made:
            self.wakeup.notify()
        return made

    async def pending_requests(self, tenant: str, workflow_id: str) -> list[Request]:
        """The execution's requests no worker has answered or accepted, oldest first."""
        rows = await self._fetch(sql.PENDING_REQUESTS, tenant, workflow_id)
        return [request_from_row(row) for row in rows]

    async def answer_requests(self, tenant: str, workflow_id: str, replies: Sequence[Reply], *,
                              now: float) -> None:
        """Record ``replies`` for requests not answered yet."""
        if replies:
            await self._fetchval(sql.ANSWER_REQUESTS, tenant, workflow_id,
                                 *reply_columns(replies), REPLIED_CHANNEL)
            self.wakeup.answered(tenant, workflow_id, replies)

    async def forget_request(self, tenant: str, workflow_id: str, request_id: str) -> None:
        """Delete the request."""
        await self._fetchval(sql.DELETE_REQUEST, tenant, workflow_id, request_id)
