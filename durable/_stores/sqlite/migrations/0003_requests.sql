-- durable SQLite schema: requests, the queries and updates waiting for a worker to answer them
-- (handle.query / handle.update). The client inserts a request and makes the execution's
-- workflow task runnable with requested = 1; the worker that runs the task reads the pending
-- requests, answers them and records accepted updates in the execution's history.

CREATE TABLE requests (
    tenant      TEXT    NOT NULL,
    workflow_id TEXT    NOT NULL,
    id          TEXT    NOT NULL,          -- the update's idempotency key, or a random id
    kind        TEXT    NOT NULL,          -- query | update
    name        TEXT    NOT NULL,
    args        BLOB    NOT NULL,          -- MessagePack list
    created_at  REAL    NOT NULL,
    status      TEXT    NOT NULL,          -- pending | accepted | ok | failed | rejected
    result      BLOB,                      -- MessagePack Any, once ok
    error       BLOB,                      -- MessagePack ErrorInfo, once failed or rejected
    PRIMARY KEY (tenant, workflow_id, id)
) WITHOUT ROWID;

CREATE INDEX requests_pending ON requests (tenant, workflow_id, created_at)
    WHERE status = 'pending';

-- Set when a request made the task runnable: the worker then looks for pending requests.
ALTER TABLE workflow_tasks ADD COLUMN requested INTEGER NOT NULL DEFAULT 0;
