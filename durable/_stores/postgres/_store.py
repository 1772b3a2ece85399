"""``PostgresStore``: the PostgreSQL store's roles joined into one ``Store`` (see
``_connection`` for its concurrency model)."""

from __future__ import annotations

from ._executions import PostgresExecutions
from ._heartbeats import PostgresHeartbeats
from ._hosts import PostgresHosts
from ._limited import PostgresLimited
from ._listing import PostgresListing
from ._requests import PostgresRequests
from ._retention import PostgresRetention
from ._schedules import PostgresSchedules
from ._snapshots import PostgresSnapshots
from ._tasks import PostgresTasks
from ._timers import PostgresTimers
from ._transactions import PostgresTransactions
from ._workers import PostgresWorkers

__all__ = ["PostgresStore"]


class PostgresStore(PostgresExecutions, PostgresTasks, PostgresTransactions, PostgresTimers,
                    PostgresRequests, PostgresSchedules, PostgresSnapshots, PostgresWorkers,
                    PostgresHeartbeats, PostgresHosts, PostgresLimited, PostgresListing,
                    PostgresRetention):
    """A ``Store`` in a PostgreSQL database; open it with :meth:`open`."""
