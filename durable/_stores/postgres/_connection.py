"""The PostgreSQL store's connections: a pool that every role uses, and a ``LISTEN``
connection that relays other processes' ends and answers.

Concurrency model:

* Every write is one statement (the hot ones call a PL/pgSQL function created by the
  migrations), so each is atomic; asyncpg prepares each statement once per connection, and
  the pool does not reset sessions (no extra round trip).
* Group commit: concurrent calls of the hot operations (create, append, commit, complete,
  and the reads of histories and executions) are sent together (``durable._batching.Batcher``):
  the writes as one pipelined transaction (``PostgresBase._grouped``: ``fetchmany``), the
  reads as one statement. So a worker running many tasks pays one round trip and one WAL
  flush per batch, not per task.
* Writes to an execution's history lock its ``executions`` row first (``FOR UPDATE``): that
  serializes appends and commits of one execution and decides the next ``seq``. A commit also
  needs the lease owner on the locked ``workflow_tasks`` row.
* Claims, ``dispatch_due`` and ``fire_due_timers`` lock with ``FOR UPDATE SKIP LOCKED``, so
  any number of workers and servers take disjoint rows and never wait for each other
  (``fire_due_timers`` skips the timers of an execution that is being written just then).
* Lost connections become ``StoreUnavailableError``; the pool then replaces all of them.
* ``wakeup`` wakes this process's pollers; other processes learn of work from their
  dispatcher. Ends of executions and answers to requests are also relayed between processes
  by ``NOTIFY`` / ``LISTEN`` (channels ``durable_ended`` and ``durable_replied``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Final, Self

import asyncpg

from ..._batching import Batcher
from ...errors import StoreUnavailableError
from .._store_clock import StoreClocked
from .._records import WorkflowCommit
from .._wakeup import Wakeup
from ._rows import ENDED_CHANNEL, REPLIED_CHANNEL, SEP, decode_outcome
from ._schema import (
    Target, is_connection_lost, is_unavailable, migrate_txn, parse_url, typed_error,
)

__all__ = ["COMMAND_TIMEOUT", "PostgresBase", "migrate"]

COMMAND_TIMEOUT: Final = 60.0  # seconds; a statement that takes longer means trouble
# group-commit writes of tenants with nothing else in the batcher that go out on their own
# at once (``Batcher(express=)``): a quiet tenant does not wait for a busy one's batches
EXPRESS: Final = 2


class PostgresBase(StoreClocked):
    """The pool and the listener, which every role of the store works through; the driver
    calls here turn lost connections into ``StoreUnavailableError`` (``_mapped``)."""

    def __init__(self, url: str, pool: asyncpg.Pool, target: Target) -> None:
        self.url = url
        self.wakeup = Wakeup()
        self._pool = pool
        self._target = target
        self._listener: asyncpg.Connection | None = None  # relays other processes' ends
        self._listening = asyncio.Lock()
        self._writes: dict[str, Batcher[tuple[Any, ...], Any]] = {}

    def _own_time(self) -> float | None:
        """None: the statements read the server's clock themselves (``durable_store_time``)."""
        return None

    def _due_on_store_clock(self, commit: WorkflowCommit) -> WorkflowCommit:
        """As it is: the commit statements move its timers onto the store's clock."""
        return commit

    async def _listen(self) -> None:
        """(Re)connect the ``LISTEN`` connection that turns other processes' ends into
        ``wakeup.ended``; without it result waiters simply poll."""
        if self._listener is not None and not self._listener.is_closed():
            return
        async with self._listening:
            if self._listener is not None:
                if not self._listener.is_closed():
                    return  # another task reconnected it meanwhile
                self.wakeup.disconnected()
                self._listener.terminate()
                self._listener = None
            try:
                listener = await asyncpg.connect(
                    self._target.dsn, server_settings=self._target.server_settings, timeout=5.0)
            except Exception as exc:  # polling still works
                if not is_unavailable(exc):
                    raise
                return
            try:
                await listener.add_listener(ENDED_CHANNEL, self._on_ended)
                await listener.add_listener(REPLIED_CHANNEL, self._on_replied)
            except Exception as exc:
                listener.terminate()
                if not is_unavailable(exc):
                    raise
                return
            listener.add_termination_listener(self._on_listener_lost)
            self._listener = listener
            self.wakeup.connected()

    def _on_listener_lost(self, connection: Any) -> None:
        if connection is self._listener:
            self.wakeup.disconnected()

    def _on_ended(self, connection: Any, pid: int, channel: str, payload: object) -> None:
        tenant, workflow_id, *rest = str(payload).split(SEP)
        self.wakeup.ended(tenant, workflow_id, decode_outcome(rest))

    def _on_replied(self, connection: Any, pid: int, channel: str, payload: object) -> None:
        tenant, workflow_id, request_id = str(payload).split(SEP, 2)
        self.wakeup.replied(tenant, workflow_id, request_id)

    @classmethod
    async def open(cls, url: str) -> Self:
        """Connect a pool to the database ``url`` names and apply pending migrations."""
        target = parse_url(url)
        pool = await _create_pool(url, target)
        try:
            async with pool.acquire() as conn:
                await migrate_txn(conn, target, url)
        except BaseException as exc:
            pool.terminate()
            _raise_typed(url, exc)
            raise
        return cls(url, pool, target)

    async def _fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        try:
            rows: list[asyncpg.Record] = await self._pool.fetch(query, *args)
        except Exception as exc:
            raise await self._mapped(exc) from exc
        return rows

    async def _fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        try:
            row: asyncpg.Record | None = await self._pool.fetchrow(query, *args)
        except Exception as exc:
            raise await self._mapped(exc) from exc
        return row

    async def _fetchval(self, query: str, *args: Any) -> Any:
        try:
            return await self._pool.fetchval(query, *args)
        except Exception as exc:
            raise await self._mapped(exc) from exc

    async def _grouped(self, query: str, *args: Any) -> Any:
        """``_fetchval`` of a one-row write, sent in one transaction with concurrent calls of
        the same statement (group commit)."""
        batcher = self._writes.get(query)
        if batcher is None:
            async def many(calls: Sequence[tuple[Any, ...]]) -> list[Any]:
                try:
                    rows = await self._pool.fetchmany(query, calls)
                except Exception as exc:
                    raise await self._mapped(exc) from exc
                return [row[0] for row in rows]

            async def one(call: tuple[Any, ...]) -> Any:
                return await self._fetchval(query, *call)

            batcher = self._writes[query] = Batcher(many, one, express=EXPRESS,
                                                    shared_errors=(StoreUnavailableError,))
        return await batcher.submit(args)

    async def _mapped(self, exc: Exception) -> Exception:
        """A lost connection or an unavailable server becomes ``StoreUnavailableError``, a
        setup the server refuses ``StoreConfigurationError``, a refused value
        ``ValidationError`` (``typed_error``); anything else is returned as it is.

        A lost connection usually means the server restarted and took every connection with
        it: the pool then replaces them all, so the next call works without failing again.
        """
        if is_connection_lost(exc) and not self._pool.is_closing():
            await self._pool.expire_connections()
        return typed_error(self.url, exc) or exc

    async def close(self) -> None:
        """Close the pool and the listening connection (idempotent)."""
        for batcher in self._writes.values():
            await batcher.close()
        if self._listener is not None:
            self.wakeup.disconnected()
            self._listener.terminate()
            self._listener = None
        await self._pool.close()


async def migrate(url: str) -> int:
    """Apply the pending migrations of the database ``url`` names; return its schema version."""
    target = parse_url(url)
    try:
        conn = await asyncpg.connect(target.dsn, server_settings=target.server_settings)
    except Exception as exc:
        _raise_typed(url, exc)
        raise
    try:
        return await migrate_txn(conn, target, url)
    except Exception as exc:
        _raise_typed(url, exc)
        raise
    finally:
        await conn.close()


async def _create_pool(url: str, target: Target) -> asyncpg.Pool:
    try:
        pool: asyncpg.Pool = await asyncpg.create_pool(
            target.dsn, min_size=1, max_size=target.pool_size, command_timeout=COMMAND_TIMEOUT,
            server_settings=target.server_settings, reset=_keep_session)
    except Exception as exc:
        _raise_typed(url, exc)
        raise
    return pool


def _raise_typed(url: str, exc: BaseException) -> None:
    """Raise the typed error for a driver error, if it has one (see ``typed_error``)."""
    typed = typed_error(url, exc)
    if typed is not None:
        raise typed from exc


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Reset nothing when a connection goes back to the pool.

    asyncpg's default reset costs a round trip per operation (advisory unlocks, ``CLOSE ALL``,
    ``UNLISTEN *``, ``RESET ALL``); the store leaves no session state behind: it takes only
    transaction-scoped locks, never listens, declares no cursors and sets no settings. An open
    transaction is still rolled back by the pool itself.
    """

