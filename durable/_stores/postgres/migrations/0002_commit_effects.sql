-- durable PostgreSQL schema, version 10: what a workflow-task commit does beyond its own
-- execution, in the same transaction (Store.commit_workflow_task: cancelled_actions, starts,
-- signals): drop cancelled action tasks, create child executions or the execution's next run
-- (continue-as-new), and append inputs to other executions (a child's outcome to its parent, a
-- cancellation to a child).
--
-- durable_commit is not changed: durable_commit_effects locks every execution it will touch,
-- in (tenant, workflow_id) order so that two such commits never deadlock, then calls it.
-- durable_complete_action is replaced (same signature) so that an outcome is recorded only in
-- the run that scheduled the action, never in a later run of the same execution.

-- Append an input to the current run of an execution, if it is run p_run_id (when given).
-- Returns the seq; NULL when skipped (no such execution, ended, another run, dedup seen).
CREATE FUNCTION durable_signal(p_tenant text, p_workflow_id text, p_run_id text, p_head bytea,
                               p_tail bytea, p_dedup text, p_now double precision) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_run_id text;
BEGIN
    IF p_run_id IS NOT NULL THEN
        SELECT run_id INTO v_run_id FROM executions
            WHERE tenant = p_tenant AND workflow_id = p_workflow_id FOR UPDATE;
        IF NOT FOUND OR v_run_id <> p_run_id THEN
            RETURN NULL;
        END IF;
    END IF;
    RETURN nullif(durable_append(p_tenant, p_workflow_id, p_head, p_tail, p_dedup, p_now), 0);
END
$$;

-- Create an execution with its WorkflowStarted (p_body, seq 1) and a runnable workflow task,
-- unless the workflow id is taken. Returns whether it was created.
-- data and result start as MessagePack {} (\x80) and nil (\xc0), as create_execution writes.
CREATE FUNCTION durable_start(p_tenant text, p_workflow_id text, p_run_id text, p_workflow text,
                              p_version text, p_body bytea, p_now double precision)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO executions (tenant, workflow_id, run_id, workflow, version, status, created_at,
                            updated_at, last_seq, data, result)
        VALUES (p_tenant, p_workflow_id, p_run_id, p_workflow, p_version, 'running', p_now,
                p_now, 1, '\x80', '\xc0')
        ON CONFLICT (tenant, workflow_id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO events (tenant, workflow_id, run_id, seq, body)
        VALUES (p_tenant, p_workflow_id, p_run_id, 1, p_body);
    INSERT INTO workflow_tasks (tenant, workflow_id, workflow, visible_at, dispatched_at)
        VALUES (p_tenant, p_workflow_id, p_workflow, p_now, p_now);
    RETURN true;
END
$$;

-- Continue-as-new: end the current run's work and switch the execution (locked by the caller)
-- to run p_run_id, whose WorkflowStarted is p_body; created_at stays, nothing else carries over.
CREATE FUNCTION durable_new_run(p_tenant text, p_workflow_id text, p_run_id text,
                                p_workflow text, p_version text, p_body bytea,
                                p_now double precision) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_old_run text;
BEGIN
    SELECT run_id INTO v_old_run FROM executions
        WHERE tenant = p_tenant AND workflow_id = p_workflow_id FOR UPDATE;
    DELETE FROM action_tasks
        WHERE tenant = p_tenant AND workflow_id = p_workflow_id AND run_id = v_old_run;
    DELETE FROM timers
        WHERE tenant = p_tenant AND workflow_id = p_workflow_id AND run_id = v_old_run;
    UPDATE executions
        SET run_id = p_run_id, workflow = p_workflow, version = p_version, status = 'running',
            updated_at = p_now, last_seq = 1, state = NULL, data = '\x80', result = '\xc0',
            error = NULL, task_error = NULL
        WHERE tenant = p_tenant AND workflow_id = p_workflow_id;
    INSERT INTO events (tenant, workflow_id, run_id, seq, body)
        VALUES (p_tenant, p_workflow_id, p_run_id, 1, p_body);
    INSERT INTO workflow_tasks AS w (tenant, workflow_id, workflow, visible_at, dispatched_at)
        VALUES (p_tenant, p_workflow_id, p_workflow, p_now, p_now)
        ON CONFLICT (tenant, workflow_id) DO UPDATE
        SET workflow = excluded.workflow, visible_at = excluded.visible_at, owner = NULL,
            lease_until = 0, attempt = 0, dispatched_at = excluded.dispatched_at;
END
$$;

-- durable_commit (the first 22 parameters) and then, if it succeeded, the effects:
-- p_cancelled_actions: cmds of the run's action tasks to drop;
-- starts (arrays of one length): tenant, workflow_id, run_id, workflow, version, the
--   WorkflowStarted body, and the inputs to append to the committer when the start created
--   the execution (p_started_*) or found its workflow id taken (p_exists_*), as head/tail
--   pairs around the seq (durable_append; NULL heads for none); a start of the committing
--   execution itself is its next run;
-- signals (arrays of one length): tenant, workflow_id, run_id (NULL: whatever run is current),
--   head/tail of the input, dedup key.
CREATE FUNCTION durable_commit_effects(
    p_tenant text, p_workflow_id text, p_owner text, p_expected_seq bigint,
    p_seqs bigint[], p_bodies bytea[],
    p_action_cmds bigint[], p_action_names text[], p_action_args bytea[],
    p_action_kwargs bytea[], p_action_attempts integer[], p_action_visible_at double precision[],
    p_action_errors text[],
    p_timer_cmds bigint[], p_timer_fire_at double precision[], p_cancelled_timers bigint[],
    p_status text, p_state text, p_data bytea, p_result bytea, p_error bytea,
    p_now double precision,
    p_cancelled_actions bigint[],
    p_start_tenants text[], p_start_ids text[], p_start_run_ids text[], p_start_workflows text[],
    p_start_versions text[], p_start_bodies bytea[], p_started_heads bytea[],
    p_started_tails bytea[], p_exists_heads bytea[], p_exists_tails bytea[],
    p_signal_tenants text[], p_signal_ids text[], p_signal_run_ids text[],
    p_signal_heads bytea[], p_signal_tails bytea[], p_signal_dedups text[]) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_run_id text;
    i integer;
BEGIN
    -- Lock order: every executions row this commit writes, sorted, before anything else.
    PERFORM FROM executions
        WHERE (tenant, workflow_id) IN (
            SELECT * FROM unnest(p_signal_tenants || p_tenant, p_signal_ids || p_workflow_id))
        ORDER BY tenant, workflow_id
        FOR UPDATE;
    IF NOT durable_commit(p_tenant, p_workflow_id, p_owner, p_expected_seq, p_seqs, p_bodies,
                          p_action_cmds, p_action_names, p_action_args, p_action_kwargs,
                          p_action_attempts, p_action_visible_at, p_action_errors, p_timer_cmds,
                          p_timer_fire_at, p_cancelled_timers, p_status, p_state, p_data,
                          p_result, p_error, p_now) THEN
        RETURN false;
    END IF;
    IF cardinality(p_cancelled_actions) > 0 THEN
        SELECT run_id INTO v_run_id FROM executions
            WHERE tenant = p_tenant AND workflow_id = p_workflow_id;
        DELETE FROM action_tasks WHERE tenant = p_tenant AND workflow_id = p_workflow_id
            AND run_id = v_run_id AND cmd = ANY (p_cancelled_actions);
    END IF;
    FOR i IN 1 .. coalesce(cardinality(p_start_ids), 0) LOOP
        IF p_start_tenants[i] = p_tenant AND p_start_ids[i] = p_workflow_id THEN
            PERFORM durable_new_run(p_tenant, p_workflow_id, p_start_run_ids[i],
                                    p_start_workflows[i], p_start_versions[i], p_start_bodies[i],
                                    p_now);
        ELSIF durable_start(p_start_tenants[i], p_start_ids[i], p_start_run_ids[i],
                            p_start_workflows[i], p_start_versions[i], p_start_bodies[i],
                            p_now) THEN
            IF p_started_heads[i] IS NOT NULL THEN
                PERFORM durable_append(p_tenant, p_workflow_id, p_started_heads[i],
                                       p_started_tails[i], NULL, p_now);
            END IF;
        ELSIF p_exists_heads[i] IS NOT NULL THEN
            PERFORM durable_append(p_tenant, p_workflow_id, p_exists_heads[i],
                                   p_exists_tails[i], NULL, p_now);
        END IF;
    END LOOP;
    FOR i IN 1 .. coalesce(cardinality(p_signal_ids), 0) LOOP
        PERFORM durable_signal(p_signal_tenants[i], p_signal_ids[i], p_signal_run_ids[i],
                               p_signal_heads[i], p_signal_tails[i], p_signal_dedups[i], p_now);
    END LOOP;
    RETURN true;
END
$$;

-- Record an action's outcome (first completion wins, by dedup key) and drop its task; only in
-- the run that scheduled it (after continue-as-new the execution's current run is another).
CREATE OR REPLACE FUNCTION durable_complete_action(p_tenant text, p_workflow_id text,
                                                   p_run_id text, p_cmd bigint, p_head bytea,
                                                   p_tail bytea, p_dedup text,
                                                   p_now double precision) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_run_id text;
BEGIN
    SELECT run_id INTO v_run_id FROM executions
        WHERE tenant = p_tenant AND workflow_id = p_workflow_id FOR UPDATE;
    DELETE FROM action_tasks WHERE tenant = p_tenant AND workflow_id = p_workflow_id
        AND run_id = p_run_id AND cmd = p_cmd;
    IF v_run_id IS DISTINCT FROM p_run_id THEN
        RETURN false;
    END IF;
    RETURN coalesce(durable_append(p_tenant, p_workflow_id, p_head, p_tail, p_dedup, p_now), 0) > 0;
END
$$;
