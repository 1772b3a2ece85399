-- durable SQLite schema: task queues.
--
-- A task's queue travels in the column that holds its name (workflow_tasks.workflow,
-- executions.workflow, action_tasks.name): "<queue> U+001E <name>", or the plain name on the
-- default queue (durable._queues.route), so this migration changes no table that holds work.
--
-- worker_hosts: what each live worker hosts (kind 'w' for a workflow, 'a' for an action; route
-- as above), refreshed every few seconds by the worker and deleted when it stops; describe()
-- says when no live worker hosts what an execution waits for.

CREATE TABLE worker_hosts (
    kind    TEXT NOT NULL,
    route   TEXT NOT NULL,
    worker  TEXT NOT NULL,
    seen_at REAL NOT NULL,
    PRIMARY KEY (kind, route, worker)
);

CREATE INDEX worker_hosts_by_worker ON worker_hosts (worker);

-- flow_buckets: one row per action with limits (route as above); claims of the action run in
-- the store's write transaction, count its leased tasks against max_concurrent and take tokens
-- from its bucket (refilled at the action's rate). durable._limits says what is kept.
CREATE TABLE flow_buckets (
    route       TEXT PRIMARY KEY,
    tokens      REAL,              -- NULL: never claimed (a full bucket)
    refilled_at REAL NOT NULL,
    max_concurrent INTEGER,        -- the limits of the last claim (for describe())
    rate        REAL
);

CREATE INDEX action_tasks_leased ON action_tasks (name, lease_until) WHERE owner IS NOT NULL;
