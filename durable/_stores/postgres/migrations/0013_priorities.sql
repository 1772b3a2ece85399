-- durable PostgreSQL schema: priorities and fairness keys.
--
-- An execution's priority (higher first) and fairness key ('' for none) are kept on its row;
-- a next run (continue-as-new) keeps them, since durable_new_run does not write them. Each
-- task copies them when it is created, so that claims order due tasks without a join:
-- priority first, then round-robin across (tenant, fairness_key), then due time.
--
-- Every function that creates tasks (durable_append, durable_start, durable_new_run,
-- durable_commit, durable_submit_request, durable_rearm_request, ...) is left as it is: a task
-- row inserted without a priority gets its execution's priority and fairness key from
-- durable_task_flow (a BEFORE INSERT trigger that runs only then). Inserts that know them
-- (CREATE_EXECUTION) pass them. What differs from the execution's, an action call's own
-- priority or a child started with its own, is written after the commit by durable_flow, in
-- the same statement.

ALTER TABLE executions ADD COLUMN priority integer NOT NULL DEFAULT 0,
                       ADD COLUMN fairness_key text NOT NULL DEFAULT '';
-- Existing rows read 0 and '' (the defaults are kept for them); new rows must be given both,
-- or get them from the trigger.
ALTER TABLE workflow_tasks ADD COLUMN priority integer NOT NULL DEFAULT 0,
                           ADD COLUMN fairness_key text NOT NULL DEFAULT '';
ALTER TABLE workflow_tasks ALTER COLUMN priority DROP DEFAULT,
                           ALTER COLUMN fairness_key DROP DEFAULT;
ALTER TABLE action_tasks ADD COLUMN priority integer NOT NULL DEFAULT 0,
                         ADD COLUMN fairness_key text NOT NULL DEFAULT '';
ALTER TABLE action_tasks ALTER COLUMN priority DROP DEFAULT,
                         ALTER COLUMN fairness_key DROP DEFAULT;

CREATE FUNCTION durable_task_flow() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    SELECT x.priority, x.fairness_key INTO NEW.priority, NEW.fairness_key
        FROM executions AS x WHERE x.tenant = NEW.tenant AND x.workflow_id = NEW.workflow_id;
    NEW.priority := coalesce(NEW.priority, 0);
    NEW.fairness_key := coalesce(NEW.fairness_key, '');
    RETURN NEW;
END
$$;

CREATE TRIGGER workflow_tasks_flow BEFORE INSERT ON workflow_tasks
    FOR EACH ROW WHEN (NEW.priority IS NULL) EXECUTE FUNCTION durable_task_flow();
CREATE TRIGGER action_tasks_flow BEFORE INSERT ON action_tasks
    FOR EACH ROW WHEN (NEW.priority IS NULL) EXECUTE FUNCTION durable_task_flow();

-- After a commit of execution (p_tenant, p_workflow_id): the priorities its action calls gave
-- (p_cmds, p_priorities: tasks of its current run), and the priorities and fairness keys of
-- the executions it started (p_start_*: those that exist with that run id, i.e. were created)
-- and of their workflow tasks. Returns true.
CREATE FUNCTION durable_flow(p_tenant text, p_workflow_id text, p_cmds bigint[],
                             p_priorities integer[], p_start_tenants text[], p_start_ids text[],
                             p_start_run_ids text[], p_start_priorities integer[],
                             p_start_keys text[]) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality(p_cmds) > 0 THEN
        UPDATE action_tasks AS a SET priority = o.priority
            FROM unnest(p_cmds, p_priorities) AS o(cmd, priority), executions AS x
            WHERE x.tenant = p_tenant AND x.workflow_id = p_workflow_id
              AND a.tenant = p_tenant AND a.workflow_id = p_workflow_id
              AND a.run_id = x.run_id AND a.cmd = o.cmd;
    END IF;
    IF cardinality(p_start_ids) > 0 THEN
        WITH flowed AS (
            UPDATE executions AS x SET priority = s.priority, fairness_key = s.key
            FROM unnest(p_start_tenants, p_start_ids, p_start_run_ids, p_start_priorities,
                        p_start_keys) AS s(tenant, workflow_id, run_id, priority, key)
            WHERE x.tenant = s.tenant AND x.workflow_id = s.workflow_id AND x.run_id = s.run_id
            RETURNING x.tenant, x.workflow_id, x.priority, x.fairness_key
        )
        UPDATE workflow_tasks AS w SET priority = f.priority, fairness_key = f.fairness_key
            FROM flowed AS f WHERE w.tenant = f.tenant AND w.workflow_id = f.workflow_id;
    END IF;
    RETURN true;
END
$$;
