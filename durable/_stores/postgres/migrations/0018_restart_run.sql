-- durable PostgreSQL schema: a start that reuses a workflow id (client.start's on_conflict and
-- id_reuse policies) begins the execution's next run, as continue-as-new does, in one call.
--
-- durable_restart(tenant, workflow_id, expected run, then the new run as durable_new_run takes
-- it, its priority and fairness key, and the head/tail of the event that ends the expected run
-- if it still runs (WorkflowTerminated; NULL: a running run is left alone)). Under the
-- execution's row lock: false, changing nothing, when the current run is not p_expected_run or
-- it runs and there is no end to give it; else the end is appended, the workflow task (and its
-- lease) dropped, and durable_new_run switches the execution to the new run (dropping the old
-- run's action tasks and timers), created now, with the start's priority and fairness key,
-- which its new workflow task takes (durable_task_flow).

CREATE FUNCTION durable_restart(p_tenant text, p_workflow_id text, p_expected_run text,
                                p_run_id text, p_workflow text, p_version text, p_body bytea,
                                p_now double precision, p_priority integer, p_fairness_key text,
                                p_end_head bytea, p_end_tail bytea) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_run_id text;
    v_status text;
BEGIN
    SELECT run_id, status INTO v_run_id, v_status FROM executions
        WHERE tenant = p_tenant AND workflow_id = p_workflow_id FOR UPDATE;
    IF NOT FOUND OR v_run_id <> p_expected_run THEN
        RETURN false;
    END IF;
    IF v_status NOT IN ('completed', 'failed', 'cancelled') THEN
        IF p_end_head IS NULL THEN
            RETURN false;
        END IF;
        PERFORM durable_append(p_tenant, p_workflow_id, p_end_head, p_end_tail, NULL, p_now);
    END IF;
    DELETE FROM workflow_tasks WHERE tenant = p_tenant AND workflow_id = p_workflow_id;
    UPDATE executions SET created_at = p_now, priority = p_priority,
                          fairness_key = p_fairness_key
        WHERE tenant = p_tenant AND workflow_id = p_workflow_id;
    PERFORM durable_new_run(p_tenant, p_workflow_id, p_run_id, p_workflow, p_version, p_body,
                            p_now);
    RETURN true;
END
$$;
