-- durable SQLite schema: retention (closed executions are deleted after a period).
--
-- An execution's row is written for the last time when it closes, so `updated_at` of a closed
-- execution is its close time; executions_closed indexes closed executions by it (the sweep
-- takes the oldest first, in small batches). workflow_retention: what a workflow's code
-- declares (`@durable.workflow(retention=...)`); tenant_retention: a tenant's setting
-- (`durable tenant retention`). The workflow's comes first, then the tenant's, then the
-- sweeper's default.
CREATE INDEX executions_closed ON executions (updated_at)
    WHERE status IN ('completed', 'failed', 'cancelled');

CREATE TABLE workflow_retention (
    workflow TEXT PRIMARY KEY,
    seconds  REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE tenant_retention (
    tenant  TEXT PRIMARY KEY,
    seconds REAL NOT NULL
) WITHOUT ROWID;
