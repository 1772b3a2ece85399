-- durable PostgreSQL schema: claims that cost the same whatever the backlog.
--
-- Claims take due tasks by priority, then round-robin across (tenant, fairness_key). They used
-- to number every due task (a window over the whole backlog: 20,000 queued tasks made each
-- claim take tens of milliseconds). Now a claim walks the partitions that have due tasks (one
-- index seek each) and takes each one's first few through the *_by_turn index, which replaces
-- the one by due time alone; a partition's running tasks, which count in its turn, are found
-- through the *_running index.

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
