-- durable PostgreSQL schema: finishing a workflow task that recorded nothing (it only answered
-- queries or refused updates), without rewriting its execution: the task is dropped if p_owner
-- holds it and the history still ends at p_expected_seq - 1 (else false, nothing changed).
-- Lock order as in 0001: the executions row first, then the workflow_tasks row.
CREATE FUNCTION durable_finish(p_tenant text, p_workflow_id text, p_owner text,
                               p_expected_seq bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_last_seq bigint;
    v_owner text;
BEGIN
    SELECT last_seq INTO v_last_seq
        FROM executions WHERE tenant = p_tenant AND workflow_id = p_workflow_id FOR UPDATE;
    IF NOT FOUND OR v_last_seq <> p_expected_seq - 1 THEN
        RETURN false;
    END IF;
    SELECT owner INTO v_owner
        FROM workflow_tasks WHERE tenant = p_tenant AND workflow_id = p_workflow_id FOR UPDATE;
    IF NOT FOUND OR v_owner IS DISTINCT FROM p_owner THEN
        RETURN false;
    END IF;
    DELETE FROM workflow_tasks WHERE tenant = p_tenant AND workflow_id = p_workflow_id;
    RETURN true;
END
$$;
