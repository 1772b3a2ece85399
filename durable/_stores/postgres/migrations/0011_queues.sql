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
