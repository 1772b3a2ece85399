-- durable SQLite schema, version 2: the outbox (Store.dispatch_due).
-- dispatched_at is when a hint for the task was last published: set to the creation time when
-- a task is created or made runnable (its creator publishes), reset to 0 by a retry or a
-- release so that the task is dispatched again once it becomes due.

ALTER TABLE workflow_tasks ADD COLUMN dispatched_at REAL NOT NULL DEFAULT 0;
ALTER TABLE action_tasks ADD COLUMN dispatched_at REAL NOT NULL DEFAULT 0;

-- dispatch_due scans by dispatched_at: only tasks announced long ago (a lease in flight, a
-- pending retry or release, a lost hint) are read, never the whole runnable backlog.
CREATE INDEX workflow_tasks_by_dispatched ON workflow_tasks (dispatched_at);
CREATE INDEX action_tasks_by_dispatched ON action_tasks (dispatched_at);
