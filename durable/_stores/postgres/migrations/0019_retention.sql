-- durable PostgreSQL schema: retention (closed executions are deleted after a period).
--
-- An execution's row is written for the last time when it closes (a terminal commit sets its
-- status and updated_at; nothing updates a closed execution afterwards), so `updated_at` of a
-- closed execution is its close time. executions_closed indexes closed executions by it: the
-- sweep (durable._retention) takes the oldest first, in small batches.
--
-- workflow_retention: how long a workflow's closed executions are kept, as its code declares
-- (`@durable.workflow(retention=...)`, written by the workers that host it). Not scoped by
-- tenant: a workflow's code is the same for every tenant.
-- tenant_retention: how long a tenant's closed executions are kept (`durable tenant
-- retention`). A workflow's declared retention comes first, then its tenant's, then the
-- sweeper's default (30 days).
CREATE INDEX executions_closed ON executions (updated_at)
    WHERE status IN ('completed', 'failed', 'cancelled');

CREATE TABLE workflow_retention (
    workflow text             PRIMARY KEY,
    seconds  double precision NOT NULL
);

CREATE TABLE tenant_retention (
    tenant  text             PRIMARY KEY,
    seconds double precision NOT NULL
);

SELECT durable_protect_tenant_tables();
