-- durable SQLite schema: claims that cost the same whatever the backlog (see the PostgreSQL
-- migration 0016): due tasks are found per (tenant, fairness_key) partition through the
-- *_by_turn indexes, a partition's running tasks through the *_running ones.

DROP INDEX workflow_tasks_by_due;
CREATE INDEX workflow_tasks_by_turn
    ON workflow_tasks (tenant, fairness_key, priority DESC, due);
CREATE INDEX workflow_tasks_running
    ON workflow_tasks (tenant, fairness_key, lease_until) WHERE owner IS NOT NULL;
DROP INDEX action_tasks_by_due;
CREATE INDEX action_tasks_by_turn
    ON action_tasks (tenant, fairness_key, priority DESC, due);
CREATE INDEX action_tasks_running
    ON action_tasks (tenant, fairness_key, lease_until) WHERE owner IS NOT NULL;
