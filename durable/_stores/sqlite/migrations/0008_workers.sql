-- durable SQLite schema: registered workers (durable._stores._liveness).
-- A worker holds an flock on its lock file (in the directory "<database file>.workers", NULL
-- for a database in memory) while its process lives; heartbeat_at is on the store's clock.
-- A worker whose lock is free, or whose heartbeat is too old, is deleted by a peer, and the
-- leases of its tasks are expired.

CREATE TABLE workers (
    id           TEXT    NOT NULL PRIMARY KEY,
    host         TEXT    NOT NULL,
    pid          INTEGER NOT NULL,
    lock_file    TEXT,
    started_at   REAL    NOT NULL,
    heartbeat_at REAL    NOT NULL
) WITHOUT ROWID;

-- The details of an action attempt's last heartbeat (MessagePack), for its next attempt.
ALTER TABLE action_tasks ADD COLUMN heartbeat_details BLOB;
