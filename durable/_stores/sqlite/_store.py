"""``SQLiteStore``: the SQLite store's roles joined into one ``Store`` (see ``_connection``
for its concurrency model)."""

from __future__ import annotations

from ._executions import SQLiteExecutions
from ._heartbeats import SQLiteHeartbeats
from ._hosts import SQLiteHosts
from ._limited import SQLiteLimited
from ._listing import SQLiteListing
from ._requests import SQLiteRequests
from ._retention import SQLiteRetention
from ._schedules import SQLiteSchedules
from ._snapshots import SQLiteSnapshots
from ._tasks import SQLiteTasks
from ._timers import SQLiteTimers
from ._transactions import SQLiteTransactions
from ._workers import SQLiteWorkers

__all__ = ["SQLiteStore"]


class SQLiteStore(SQLiteExecutions, SQLiteTasks, SQLiteTransactions, SQLiteTimers,
                  SQLiteRequests, SQLiteSchedules, SQLiteSnapshots, SQLiteWorkers,
                  SQLiteHeartbeats, SQLiteHosts, SQLiteLimited, SQLiteListing,
                  SQLiteRetention):
    """A ``Store`` in one SQLite file (WAL mode); open it with :meth:`open`."""
