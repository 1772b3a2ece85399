-- durable PostgreSQL schema: claims that cost the same whatever the backlog.
--
-- Claims take due tasks round-robin across tenants. They used to number every due task by
-- tenant (a window over the whole backlog: 20,000 queued tasks made each claim take tens of
-- milliseconds). Now a claim walks the tenants that have due tasks (one index seek each) and
-- takes each one's oldest few through this index, which replaces the one by due time alone.

DROP INDEX workflow_tasks_by_due;
CREATE INDEX workflow_tasks_by_tenant_due ON workflow_tasks (tenant, due);
DROP INDEX action_tasks_by_due;
CREATE INDEX action_tasks_by_tenant_due ON action_tasks (tenant, due);
