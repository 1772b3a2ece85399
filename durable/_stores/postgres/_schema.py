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
from ...errors import (
    InvalidArgumentError, StoreConfigurationError, StoreUnavailableError, ValidationError,
)
from .._migrations import migration_files, pending, renumbered
from . import _statements as sql

__all__ = ["DEFAULT_POOL_SIZE", "Target", "is_connection_lost", "is_unavailable", "migrate_txn",
           "parse_url", "redact", "typed_error", "unavailable"]

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
# SQLSTATEs that mean the store is set up wrongly (retrying will not help): the database does
# not exist (3D000: invalid catalog name), a missing schema (3F000), and class 28, invalid
# authorization (a wrong password, an unknown role).
_CONFIGURATION_STATES: Final = frozenset({"3D000", "3F000"})
_CONFIGURATION_CLASSES: Final = frozenset({"28"})
# Class 22, data exception: a value the server refused (NUL in a text, a bad encoding). The
# checks at durable's boundaries keep such values out; if one gets through, it is the call's
# fault, not an outage.
_DATA_CLASSES: Final = frozenset({"22"})
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
    pool_size, schema = DEFAULT_POOL_SIZE, None
    rest: list[tuple[str, str]] = []
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
    if isinstance(exc, asyncpg.DataError):  # an argument asyncpg cannot encode: not an outage
        return False
    if isinstance(exc, asyncpg.PostgresError):
        state = exc.sqlstate or ""
        return state[:2] in _UNAVAILABLE_CLASSES or state in _UNAVAILABLE_STATES
    return isinstance(exc, _CLIENT_FAILURES)


def is_connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` means the connection (and likely its siblings: a restart) is gone."""
    if isinstance(exc, asyncpg.DataError):
        return False
    if isinstance(exc, asyncpg.PostgresError):
        return (exc.sqlstate or "")[:2] in _LOST_CLASSES
    return isinstance(exc, _CLIENT_FAILURES)


def typed_error(url: str, exc: BaseException) -> Exception | None:
    """The typed error for a driver error, or None when it has no remedy of its own (a bug).

    ``StoreUnavailableError`` when the database cannot serve us now (retry),
    ``StoreConfigurationError`` when it is set up wrongly (a database that does not exist, a
    wrong password: fix the URL or the server), ``ValidationError`` when it refused a value.
    """
    if is_unavailable(exc):
        return unavailable(url, exc)
    state = getattr(exc, "sqlstate", None) or ""
    safe = redact(url)
    if state in _CONFIGURATION_STATES or state[:2] in _CONFIGURATION_CLASSES:
        return StoreConfigurationError(_configuration_message(safe, state, exc), url=safe,
                                       sqlstate=state)
    if state[:2] in _DATA_CLASSES or isinstance(exc, asyncpg.DataError):
        return ValidationError(f"the PostgreSQL store {safe!r} refused a value "
                               f"({type(exc).__name__}{f' [{state}]' if state else ''}: {exc}); "
                               "pass ids, names and payloads that durable's checks accept",
                               url=safe, sqlstate=state)
    return None


def _configuration_message(url: str, state: str, exc: BaseException) -> str:
    detail = f"{type(exc).__name__} [{state}]: {exc}"
    if state == "3D000":
        database = urlsplit(url).path.lstrip("/") or "(the default)"
        return (f"the PostgreSQL database {database!r} named by {url!r} does not exist ({detail}): "
                f"create it (CREATE DATABASE \"{database}\"; durable creates its tables on "
                "first use) or fix the URL")
    if state == "3F000":
        return f"the PostgreSQL store {url!r} names a schema that does not exist ({detail})"
    return (f"the PostgreSQL store {url!r} refused the connection's credentials ({detail}): "
            "fix the user or password in the URL, or the server's pg_hba.conf")


def unavailable(url: str, exc: BaseException) -> StoreUnavailableError:
    """The ``StoreUnavailableError`` for ``exc`` (raise it ``from exc``)."""
    safe = redact(url)
    state = getattr(exc, "sqlstate", None)
    detail = f"{type(exc).__name__}{f' [{state}]' if state else ''}: {exc}"
    return StoreUnavailableError(f"the PostgreSQL store {safe!r} is unavailable ({detail})",
                                 url=safe)


# ---- migrations -----------------------------------------------------------------------------


_MIGRATIONS: Final = migration_files(__name__.rpartition(".")[0])


async def migrate_txn(conn: Any, target: Target, url: str) -> int:
    """Apply the migrations the database has not recorded (see ``_migrations``) in one
    transaction; return the schema version.

    An advisory lock serializes processes that migrate the same database at once: the later
    ones wait, then find nothing left to do. What exists is not created again, so a role that
    may not create anything (a tenant's, ``durable tenant create``) opens an up-to-date store.
    """
    async with conn.transaction():
        await conn.execute(sql.LOCK_MIGRATIONS)
        if target.schema is not None and await conn.fetchval(
                "SELECT to_regnamespace($1)", f'"{target.schema}"') is None:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{target.schema}"')
        if await conn.fetchval("SELECT to_regclass('schema_version')") is None:
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
