-- durable PostgreSQL schema: pages of executions for people (durable list, the web UI).
--
-- Pages are newest first by (created_at, workflow_id, tenant) and start at a cursor (keyset
-- paging, see durable/_stores/_listing.py); each filter a page can combine with a tenant has an
-- index that yields its rows in that order, so a page reads about `limit` index entries
-- wherever it starts. Statuses change rarely and runs once per continue-as-new, so these
-- indexes do not stop the hot path's updates of an execution (state, data, last_seq) from
-- being HOT updates.

-- How many runs the execution has had: more than 1 once it continued as new.
ALTER TABLE executions ADD COLUMN runs integer NOT NULL DEFAULT 1;

CREATE FUNCTION durable_count_runs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.runs := OLD.runs + 1;
    RETURN NEW;
END
$$;

CREATE TRIGGER executions_count_runs BEFORE UPDATE OF run_id ON executions
    FOR EACH ROW WHEN (OLD.run_id IS DISTINCT FROM NEW.run_id)
    EXECUTE FUNCTION durable_count_runs();

CREATE INDEX executions_by_status ON executions (tenant, status, created_at, workflow_id);
-- Every tenant's (an admin's page, and its counts per status): by status, then time.
CREATE INDEX executions_by_status_any_tenant ON executions (status, created_at, workflow_id);
-- The name part of the stored route (queue, chr(30), name; or the name on the default queue).
CREATE INDEX executions_by_workflow_name
    ON executions (tenant, (substr(workflow, strpos(workflow, chr(30)) + 1)), created_at,
                   workflow_id);
CREATE INDEX executions_held ON executions (tenant, created_at, workflow_id)
    WHERE status = 'running' AND task_error IS NOT NULL;
CREATE INDEX executions_continued ON executions (tenant, created_at, workflow_id)
    WHERE runs > 1;
CREATE INDEX executions_by_id_prefix ON executions (tenant, workflow_id text_pattern_ops);
