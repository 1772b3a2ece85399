"""Opening a PostgreSQL store: its URL, its migrations, and which driver errors mean "retry".

URL: ``postgresql://user:pass@host:port/db?pool_size=10&schema=name`` (``postgres://`` too).
``pool_size`` (the pool's largest size, default 10) and ``schema`` (created if needed and put
on the connections' ``search_path``, so that several stores can share one database) are
ours; every other query parameter goes to asyncpg.
"""

from __future__ import annotations

import re
import time
from typing import Any, Final, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from ..._urls import redact
from ...errors import InvalidArgumentError, StoreUnavailableError
from .._migrations import migration_files, pending, renumbered
from . import _statements as sql

__all__ = ["DEFAULT_POOL_SIZE", "Target", "is_connection_lost", "is_unavailable", "migrate_txn",
           "parse_url", "redact", "unavailable"]

DEFAULT_POOL_SIZE: Final = 10
_SCHEMA_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

# SQLSTATE classes that mean "the database cannot serve this now; try again": connection
# exception, transaction rollback (serialization failure, deadlock), insufficient resources
# (too many connections), operator intervention (shutdown, starting up), system error; and a
# read-only transaction (writing to a standby during a failover).
_UNAVAILABLE_CLASSES: Final = frozenset({"08", "40", "53", "57", "58"})
_UNAVAILABLE_STATES: Final = frozenset({"25006"})
# Of those, the classes after which the session is gone: connection exception, operator
# intervention (the server terminated the backend or is shutting down).
_LOST_CLASSES: Final = frozenset({"08", "57"})
# Client-side failures: a socket error, a timeout, a connection asyncpg found closed or in a
# broken protocol state (InternalClientError: e.g. the server's termination notice arrived on
# an idle connection before the socket closed).
_CLIENT_FAILURES: Final = (asyncpg.InterfaceError, asyncpg.InternalClientError, OSError,
                           TimeoutError)


class Target(NamedTuple):
    """What a store URL names: asyncpg's DSN, our options and the connections' settings."""

    dsn: str
    pool_size: int
    schema: str | None

    @property
    def server_settings(self) -> dict[str, str]:
        """Settings for every connection (the schema goes first on the search path)."""
        return {} if self.schema is None else {"search_path": f'"{self.schema}"'}


def parse_url(url: str) -> Target:
    """Split ``url`` into asyncpg's DSN and our ``pool_size`` / ``schema`` options."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("postgresql", "postgres"):
        raise InvalidArgumentError(
            f"bad PostgreSQL URL {redact(url)!r}: use postgresql://host/database")
    pool_size, schema, rest = DEFAULT_POOL_SIZE, None, []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "pool_size":
            pool_size = _pool_size(value)
        elif key == "schema":
            schema = _schema_name(value)
        else:
            rest.append((key, value))
    return Target(urlunsplit(parts._replace(query=urlencode(rest))), pool_size, schema)


def _pool_size(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise InvalidArgumentError(
            f"bad pool_size {value!r} in a PostgreSQL URL: use a positive integer")
    return int(value)


def _schema_name(value: str) -> str:
    if not _SCHEMA_NAME.match(value):
        raise InvalidArgumentError(
            f"bad schema {value!r} in a PostgreSQL URL: use letters, digits and _")
    return value


# ---- errors ---------------------------------------------------------------------------------


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot be reached or cannot serve us now.

    Decided by exception class and SQLSTATE class, never by message.
    """
    if isinstance(exc, asyncpg.PostgresError):
        state = exc.sqlstate or ""
        return state[:2] in _UNAVAILABLE_CLASSES or state in _UNAVAILABLE_STATES
    return isinstance(exc, _CLIENT_FAILURES)


def is_connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` means the connection (and likely its siblings: a restart) is gone."""
    if isinstance(exc, asyncpg.PostgresError):
        return (exc.sqlstate or "")[:2] in _LOST_CLASSES
    return isinstance(exc, _CLIENT_FAILURES)


def unavailable(url: str, exc: BaseException) -> StoreUnavailableError:
    """The ``StoreUnavailableError`` for ``exc`` (raise it ``from exc``)."""
    safe = redact(url)
    state = getattr(exc, "sqlstate", None)
    detail = f"{type(exc).__name__}{f' [{state}]' if state else ''}: {exc}"
    return StoreUnavailableError(f"the PostgreSQL store {safe!r} is unavailable ({detail})",
                                 url=safe)


# ---- migrations -----------------------------------------------------------------------------


_MIGRATIONS: Final = migration_files(__package__)


async def migrate_txn(conn: Any, target: Target, url: str) -> int:
    """Apply the migrations the database has not recorded (see ``_migrations``) in one
    transaction; return the schema version.

    An advisory lock serializes processes that migrate the same database at once: the later
    ones wait, then find nothing left to do.
    """
    async with conn.transaction():
        await conn.execute(sql.LOCK_MIGRATIONS)
        if target.schema is not None:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{target.schema}"')
        await conn.execute(sql.CREATE_SCHEMA_VERSION)
        recorded = await conn.fetch(sql.SELECT_SCHEMA_VERSIONS)
        for old, new, name in renumbered(recorded, _MIGRATIONS):
            await conn.execute(sql.RENUMBER_SCHEMA_VERSION, old, new, name)
        current: int = await conn.fetchval(sql.SELECT_SCHEMA_VERSION)
        latest = _MIGRATIONS[-1][0]
        if current > latest:
            raise StoreUnavailableError(
                f"the PostgreSQL store {redact(url)!r} has schema version {current}, newer than "
                f"this version of durable knows ({latest}): upgrade durable", url=redact(url))
        applied = [row[0] for row in await conn.fetch(sql.SELECT_SCHEMA_VERSIONS)]
        for version, name, script in pending(_MIGRATIONS, applied):
            await conn.execute(script)
            await conn.execute(sql.INSERT_SCHEMA_VERSION, version, name, time.time())
    return max(current, latest)
