-- durable PostgreSQL schema: task queues.
--
-- A task's queue travels in the column that holds its name (workflow_tasks.workflow,
-- executions.workflow, action_tasks.name): "<queue> U+001E <name>", or the plain name on the
-- default queue (durable._queues.route), so this migration changes no table that holds work.
--
-- worker_hosts: what each live worker hosts (kind 'w' for a workflow, 'a' for an action; route
-- as above), refreshed every few seconds by the worker and deleted when it stops; describe()
-- says when no live worker hosts what an execution waits for. Not scoped by tenant: a worker
-- serves every tenant.

CREATE TABLE worker_hosts (
    kind    text             NOT NULL,
    route   text             NOT NULL,
    worker  text             NOT NULL,
    seen_at double precision NOT NULL,
    PRIMARY KEY (kind, route, worker)
);

CREATE INDEX worker_hosts_by_worker ON worker_hosts (worker);

-- flow_buckets: one row per action with limits (route as above). Claims of the action lock
-- its row for their transaction (so that two claimers never see the same room), count its
-- leased tasks against max_concurrent, and take tokens from its bucket (refilled at the
-- action's rate). durable._limits says what is kept.
CREATE TABLE flow_buckets (
    route       text PRIMARY KEY,
    tokens      double precision,                 -- NULL: never claimed (a full bucket)
    refilled_at double precision NOT NULL,
    max_concurrent integer,                       -- the limits of the last claim
    rate        double precision                  -- (for describe())
);

-- Leased action tasks by route: what a limited claim counts.
CREATE INDEX action_tasks_leased ON action_tasks (name, lease_until) WHERE owner IS NOT NULL;
