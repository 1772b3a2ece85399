-- durable SQLite schema: claims that cost the same whatever the backlog (see the PostgreSQL
-- migration 0016): due tasks are found per tenant, through these indexes.

DROP INDEX workflow_tasks_by_due;
CREATE INDEX workflow_tasks_by_tenant_due ON workflow_tasks (tenant, due);
DROP INDEX action_tasks_by_due;
CREATE INDEX action_tasks_by_tenant_due ON action_tasks (tenant, due);
