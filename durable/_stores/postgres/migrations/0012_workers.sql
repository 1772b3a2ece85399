-- durable PostgreSQL schema: registered workers (durable._stores._liveness).
-- A worker holds the session-level advisory lock (durable's namespace, lock_key) on a
-- connection of its own while its process lives; the server drops the lock when that
-- connection's socket closes. heartbeat_at is on the store's clock (durable_store_time).
-- A worker whose lock is not held, or whose heartbeat is too old, is deleted by a peer, and
-- the leases of its tasks are expired.

CREATE TABLE workers (
    id           text             NOT NULL PRIMARY KEY,
    host         text             NOT NULL,
    pid          integer          NOT NULL,
    lock_key     integer          NOT NULL,
    started_at   double precision NOT NULL,
    heartbeat_at double precision NOT NULL
);

-- The details of an action attempt's last heartbeat (MessagePack), for its next attempt.
ALTER TABLE action_tasks ADD COLUMN heartbeat_details bytea;
