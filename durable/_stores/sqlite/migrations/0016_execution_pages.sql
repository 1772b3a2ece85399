-- durable SQLite schema: pages of executions for people (see the PostgreSQL migration 0021
-- and durable/_stores/_listing.py): the runs column and the indexes keyset pages read.

ALTER TABLE executions ADD COLUMN runs INTEGER NOT NULL DEFAULT 1;

CREATE TRIGGER executions_count_runs AFTER UPDATE OF run_id ON executions
    WHEN OLD.run_id IS NOT NEW.run_id
BEGIN
    UPDATE executions SET runs = OLD.runs + 1
    WHERE tenant = NEW.tenant AND workflow_id = NEW.workflow_id;
END;

CREATE INDEX executions_by_status ON executions (tenant, status, created_at, workflow_id);
-- Every tenant's (an admin's page, and its counts per status): by status, then time.
CREATE INDEX executions_by_status_any_tenant ON executions (status, created_at, workflow_id);
CREATE INDEX executions_by_workflow_name
    ON executions (tenant, substr(workflow, instr(workflow, char(30)) + 1), created_at,
                   workflow_id);
CREATE INDEX executions_held ON executions (tenant, created_at, workflow_id)
    WHERE status = 'running' AND task_error IS NOT NULL;
CREATE INDEX executions_continued ON executions (tenant, created_at, workflow_id)
    WHERE runs > 1;
