"""The SQLite store's connection: one file, one thread, one transaction per write.

Concurrency model:

* In a process, all database work runs on one dedicated thread that owns the one connection;
  the async methods hand it work with ``loop.run_in_executor`` (``SQLiteBase._run``). The
  thread serves tenants in turn (``durable._lanes``): one tenant's backlog of operations does
  not hold another's back.
* Across processes, every write method is one transaction started with ``BEGIN IMMEDIATE``
  (``SQLiteBase._write``, ``in_transaction``): it takes SQLite's write lock before reading,
  so read-check-write (expected ``seq``, dedup, lease ownership) is atomic. Dedup keys are
  also enforced by a unique index.
* Polled methods (claims, due timers) first look for due work with a plain read and take the
  write lock only when there is some, so idle pollers in many processes do not contend.
* Other processes' commits are noticed while someone waits for work: ``wakeup`` polls
  ``PRAGMA data_version`` (every 2 ms while things change, backing off to 50 ms).

Opening a file applies its pending migrations (``migrations/NNNN_*.sql``) under the write lock.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, Self, TypeVar, cast

from ..._lanes import Call, FairExecutor
from ...errors import InvalidArgumentError, StoreUnavailableError
from .._migrations import migration_files, pending, renumbered
from .._store_clock import StoreClocked
from .._wakeup import Wakeup
from . import _statements as sql

__all__ = ["BUSY_TIMEOUT", "Row", "SQLiteBase", "changed", "in_read_transaction",
           "in_transaction", "migrate", "scalar"]

T = TypeVar("T")
Row = tuple[Any, ...]

BUSY_TIMEOUT: Final = 10.0  # seconds a transaction waits for another process's write lock
_URL_PREFIX: Final = "sqlite:///"


class SQLiteBase(StoreClocked):
    """The file's connection and thread, which every role of the store works through."""

    def __init__(self, url: str, executor: FairExecutor, conn: sqlite3.Connection) -> None:
        self.url = url
        # Other processes sharing the file are noticed by their commits (data_version).
        self.wakeup = Wakeup(changes=self._data_version)
        self._executor = executor
        self._conn = conn  # used only on the executor's one thread
        self._closed = False

    @classmethod
    async def open(cls, url: str) -> Self:
        """Open (creating if needed) the file ``url`` names and apply pending migrations."""
        path = _path_from_url(url)
        executor = FairExecutor("durable-sqlite", group=in_one_transaction)
        try:
            conn = await asyncio.get_running_loop().run_in_executor(executor, _connect, url, path)
        except BaseException as exc:
            executor.shutdown(wait=False)
            if isinstance(exc, sqlite3.DatabaseError):
                raise _unavailable(url, exc) from exc
            raise
        return cls(url, executor, conn)

    async def _run(self, fn: Callable[..., T], *args: Any, grouped: bool = False) -> T:
        """Run ``fn(conn, *args)`` on the store's thread (``grouped``: it may run together
        with the calls queued with it, ``FairExecutor.call``); driver errors become
        typed errors."""
        if self._closed:
            raise StoreUnavailableError(f"the SQLite store {self.url!r} is closed", url=self.url)
        try:
            return await self._executor.call(fn, self._conn, *args, grouped=grouped)
        except sqlite3.DatabaseError as exc:
            raise _unavailable(self.url, exc) from exc

    async def _data_version(self) -> int:
        """A number that changes when another connection commits to the file."""
        return await self._run(_read_data_version)

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` in a ``BEGIN IMMEDIATE`` transaction: its own, or one it
        shares with the writes queued with it (``in_one_transaction``)."""
        return await self._run(in_transaction, fn, *args, grouped=True)

    async def close(self) -> None:
        """Close the connection and stop the store's thread."""
        if self._closed:
            return
        await self.wakeup.close()
        self._closed = True
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._conn.close)
        finally:
            self._executor.shutdown(wait=False)


async def migrate(url: str) -> int:
    """Apply the pending migrations of the file ``url`` names; return its schema version."""
    store = await SQLiteBase.open(url)  # opening migrates
    try:
        version: int = await store._run(scalar, sql.SELECT_SCHEMA_VERSION, ())
    finally:
        await store.close()
    return version


def _path_from_url(url: str) -> str:
    if not url.lower().startswith(_URL_PREFIX) or len(url) == len(_URL_PREFIX):
        raise InvalidArgumentError(f"bad SQLite URL {url!r}: use sqlite:///relative/path.db "
                                   "or sqlite:////absolute/path.db")
    return url[len(_URL_PREFIX):]


def _unavailable(url: str, exc: BaseException) -> StoreUnavailableError:
    return StoreUnavailableError(f"the SQLite store {url!r} failed: {exc}", url=url)


def _connect(url: str, path: str) -> sqlite3.Connection:
    """Open the file in WAL mode and bring its schema up to date."""
    directory = os.path.dirname(os.path.abspath(path))
    if path != ":memory:" and not os.path.isdir(directory):
        raise StoreUnavailableError(
            f"cannot open the SQLite store {url!r}: directory {directory!r} does not exist "
            "(create it first)", url=url) from FileNotFoundError(directory)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None,
                           check_same_thread=False, factory=_CONNECTION)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        _use_wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")
        in_transaction(conn, _migrate_txn, url)
    except BaseException:
        conn.close()
        raise
    return conn


_NUMBERED: Final = re.compile(r"\?[0-9]")


class _ByNumber(sqlite3.Connection):
    """A connection that binds a sequence of parameters to ``?1``-style placeholders by
    number. The statements here number their parameters (``?1``) where one is used twice; the
    ``sqlite3`` of Python 3.12.0-3.12.3 takes those for named ones and warns when a sequence
    binds them (CPython gh-117995), an error under ``-W error``. Statements with plain ``?``
    placeholders (a database action's own) are passed on as they are."""

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        if _NUMBERED.search(sql):
            parameters = _by_number(parameters)
        return super().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> sqlite3.Cursor:
        if _NUMBERED.search(sql):
            parameters = map(_by_number, parameters)
        return super().executemany(sql, parameters)


def _by_number(parameters: Any) -> Any:
    """A sequence of parameters as the mapping that binds ``?1``, ``?2``... by number."""
    if isinstance(parameters, (list, tuple)):
        return {str(i): value for i, value in enumerate(cast("Sequence[Any]", parameters), 1)}
    return parameters


def _warns_on_numbered() -> bool:
    """Whether this Python's ``sqlite3`` warns when a sequence binds ``?1``."""
    probe = sqlite3.connect(":memory:")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            probe.execute("SELECT ?1", (0,))
    except DeprecationWarning:
        return True
    finally:
        probe.close()
    return False


# Elsewhere, sqlite3's own class: no conversion on every statement.
_CONNECTION: Final[type[sqlite3.Connection]] = \
    _ByNumber if _warns_on_numbered() else sqlite3.Connection


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL mode. The switch needs the file to itself and SQLite does not
    wait for that (no busy handler): processes opening a new file at once retry it."""
    deadline = time.monotonic() + BUSY_TIMEOUT
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _migrate_txn(conn: sqlite3.Connection, url: str) -> None:
    """Apply the migrations the file has not recorded (under the write lock; see
    ``_migrations``)."""
    conn.execute(sql.CREATE_SCHEMA_VERSION)
    migrations = migration_files(__name__.rpartition(".")[0])
    recorded = conn.execute(sql.SELECT_SCHEMA_VERSIONS).fetchall()
    conn.executemany(sql.RENUMBER_SCHEMA_VERSION,
                     [(new, name, old) for old, new, name in renumbered(recorded, migrations)])
    current = conn.execute(sql.SELECT_SCHEMA_VERSION).fetchone()[0]
    if current > migrations[-1][0]:
        raise StoreUnavailableError(
            f"the SQLite store {url!r} has schema version {current}, newer than this version "
            f"of durable knows ({migrations[-1][0]}): upgrade durable", url=url)
    applied = [v for v, _ in conn.execute(sql.SELECT_SCHEMA_VERSIONS).fetchall()]
    for version, name, script in pending(migrations, applied):
        for statement in _statements(script):
            conn.execute(statement)
        conn.execute(sql.INSERT_SCHEMA_VERSION, (version, name, time.time()))


def _statements(script: str) -> list[str]:
    """Split a SQL script into statements (``executescript`` would commit our transaction)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    return statements


def in_transaction(conn: sqlite3.Connection, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(conn, *args)`` in one write transaction; roll back if it raises."""
    return _transaction(conn, "BEGIN IMMEDIATE", fn, args)


def in_read_transaction(conn: sqlite3.Connection, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(conn, *args)`` in one read transaction (one consistent snapshot)."""
    return _transaction(conn, "BEGIN", fn, args)


def in_one_transaction(calls: list[Call]) -> list[tuple[bool, Any]]:
    """Writes queued together, each ``in_transaction(conn, fn, *args)``, in one transaction:
    one COMMIT makes them all durable (group commit: a commit writes the pages it changed, and
    concurrent writes change many of the same pages). A write that raises is undone alone,
    and its caller gets the exception: then the group is undone and run again with each write
    in a savepoint of its own (a write is a function of the database and its arguments)."""
    conn = calls[0][1][0]
    outcomes: list[tuple[bool, Any]] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("SAVEPOINT writes")
        try:
            outcomes = [(True, fn(conn, *args)) for _, (_, fn, *args) in calls]
        except Exception:  # noqa: BLE001 - rare: each again, alone
            conn.execute("ROLLBACK TO writes")
            outcomes = []
            for _, (_, fn, *args) in calls:
                conn.execute("SAVEPOINT write")
                try:
                    outcomes.append((True, fn(conn, *args)))
                except Exception as exc:  # noqa: BLE001 - its caller gets it
                    conn.execute("ROLLBACK TO write")
                    outcomes.append((False, exc))
                conn.execute("RELEASE write")
        conn.execute("RELEASE writes")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return outcomes


def _transaction(conn: sqlite3.Connection, begin: str, fn: Callable[..., T], args: Row) -> T:
    conn.execute(begin)
    try:
        result = fn(conn, *args)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


def changed(conn: sqlite3.Connection, statement: str, params: Row) -> bool:
    """Run a write; whether it changed a row."""
    return conn.execute(statement, params).rowcount > 0


def scalar(conn: sqlite3.Connection, statement: str, params: Row) -> Any:
    """The first column of the first row a query returns."""
    return conn.execute(statement, params).fetchone()[0]


def _read_data_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA data_version").fetchone()[0])

