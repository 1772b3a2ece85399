-- durable PostgreSQL schema: a commit that first records the action outcome that made its
-- workflow task due (issue 14: the plain action path in one transaction per step).
--
-- With eager dispatch an action usually runs on the worker that committed the workflow task
-- which scheduled it, and that worker still holds the execution's instance. It then runs the
-- next workflow task at once, without a row or a claim, and its commit statement calls
-- durable_settle first: the outcome is recorded at p_seq (with the action's dedup key, first
-- completion wins, as durable_complete_action), the action's task goes, and a workflow task
-- leased to p_owner stands in for the one the outcome made due, for durable_commit to finish.
-- Nothing is written (false) unless the history of run p_run_id ends at p_seq - 1, the
-- execution runs, no workflow task is pending (an input or a request waits for one: the worker
-- records the outcome alone instead) and p_owner holds the action's task.

CREATE FUNCTION durable_settle(p_tenant text, p_workflow_id text, p_owner text, p_seq bigint,
                               p_run_id text, p_cmd bigint, p_body bytea, p_dedup text,
                               p_until double precision, p_now double precision)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_run_id text;
    v_workflow text;
    v_status text;
    v_last_seq bigint;
BEGIN
    SELECT run_id, workflow, status, last_seq INTO v_run_id, v_workflow, v_status, v_last_seq
        FROM executions WHERE tenant = p_tenant AND workflow_id = p_workflow_id FOR UPDATE;
    IF NOT FOUND OR v_last_seq <> p_seq - 1 OR v_run_id <> p_run_id
            OR v_status IN ('completed', 'failed', 'cancelled') THEN
        RETURN false;
    END IF;
    PERFORM FROM workflow_tasks WHERE tenant = p_tenant AND workflow_id = p_workflow_id;
    IF FOUND THEN
        RETURN false;
    END IF;
    DELETE FROM action_tasks WHERE tenant = p_tenant AND workflow_id = p_workflow_id
        AND run_id = p_run_id AND cmd = p_cmd AND owner = p_owner;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO events (tenant, workflow_id, run_id, seq, dedup, body)
        VALUES (p_tenant, p_workflow_id, p_run_id, p_seq, p_dedup, p_body)
        ON CONFLICT (tenant, workflow_id, run_id, dedup) WHERE dedup IS NOT NULL DO NOTHING;
    IF NOT FOUND THEN
        RETURN false;  -- recorded before: the task was left over, and is gone now
    END IF;
    UPDATE executions SET last_seq = p_seq
        WHERE tenant = p_tenant AND workflow_id = p_workflow_id;
    INSERT INTO workflow_tasks (tenant, workflow_id, workflow, visible_at, owner, lease_until,
                                dispatched_at, priority, fairness_key)
        VALUES (p_tenant, p_workflow_id, v_workflow, p_now, p_owner, p_until, p_now, 0, '');
    RETURN true;
END
$$;
