-- durable PostgreSQL schema: a commit creates its eager actions leased (issue 14).
--
-- With eager dispatch a commit's new actions that the committing worker runs at once were
-- inserted by durable_commit and then leased to it by durable_lease_actions (0017, 0022) in the
-- same statement: an insert and an update of each row, the update changing indexed columns
-- (owner, lease_until), so not a heap-only one. durable_commit now takes the lease too
-- (p_lease_run, p_lease_owner, p_lease_cmds, p_lease_until: the actions numbered in
-- p_lease_cmds of run p_lease_run are created leased to p_lease_owner until p_lease_until)
-- and writes each row once. The 22-parameter durable_commit, which durable_commit_effects
-- calls (its commits lease through durable_lease_actions as before), leases nothing. The body
-- is 0023's but for the insert of action tasks.

CREATE FUNCTION durable_commit(
    p_tenant text, p_workflow_id text, p_owner text, p_expected_seq bigint,
    p_seqs bigint[], p_bodies bytea[],
    p_action_cmds bigint[], p_action_names text[], p_action_args bytea[],
    p_action_kwargs bytea[], p_action_attempts integer[], p_action_visible_at double precision[],
    p_action_errors text[],
    p_timer_cmds bigint[], p_timer_fire_at double precision[], p_cancelled_timers bigint[],
    p_status text, p_state text, p_data bytea, p_result bytea, p_error bytea,
    p_now double precision, p_lease_run text, p_lease_owner text, p_lease_cmds bigint[],
    p_lease_until double precision) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_run_id text;
    v_last_seq bigint;
    v_owner text;
BEGIN
    SELECT run_id, last_seq INTO v_run_id, v_last_seq
        FROM executions WHERE tenant = p_tenant AND workflow_id = p_workflow_id FOR UPDATE;
    IF NOT FOUND OR v_last_seq <> p_expected_seq - 1 THEN
        RETURN false;
    END IF;
    SELECT owner INTO v_owner
        FROM workflow_tasks WHERE tenant = p_tenant AND workflow_id = p_workflow_id FOR UPDATE;
    IF NOT FOUND THEN
        -- no task row: only right after durable_settle recorded the outcome that made this
        -- task due, in this transaction, for this owner
        IF current_setting('durable.settled', true) IS DISTINCT FROM
                p_tenant || chr(31) || p_workflow_id || chr(31) || p_owner THEN
            RETURN false;
        END IF;
        PERFORM set_config('durable.settled', '', true);
    ELSIF v_owner IS DISTINCT FROM p_owner THEN
        RETURN false;
    END IF;
    INSERT INTO events (tenant, workflow_id, run_id, seq, body)
        SELECT p_tenant, p_workflow_id, v_run_id, e.seq, e.body
        FROM unnest(p_seqs, p_bodies) AS e(seq, body);
    DELETE FROM workflow_tasks WHERE tenant = p_tenant AND workflow_id = p_workflow_id;
    IF p_status IN ('completed', 'failed', 'cancelled') THEN
        DELETE FROM action_tasks
            WHERE tenant = p_tenant AND workflow_id = p_workflow_id AND run_id = v_run_id;
        DELETE FROM timers
            WHERE tenant = p_tenant AND workflow_id = p_workflow_id AND run_id = v_run_id;
    ELSE
        IF cardinality(p_action_cmds) > 0 THEN
            -- new action tasks count as dispatched: the committing worker publishes them, or
            -- runs them, those created leased to it (eager dispatch)
            INSERT INTO action_tasks AS t (tenant, workflow_id, run_id, cmd, name, args, kwargs,
                                           attempt, visible_at, last_error, dispatched_at,
                                           owner, lease_until)
                SELECT p_tenant, p_workflow_id, v_run_id, a.*, p_now,
                       CASE WHEN p_lease_run = v_run_id AND a.cmd = ANY (p_lease_cmds)
                            THEN p_lease_owner END,
                       CASE WHEN p_lease_run = v_run_id AND a.cmd = ANY (p_lease_cmds)
                            THEN p_lease_until ELSE 0 END
                FROM unnest(p_action_cmds, p_action_names, p_action_args, p_action_kwargs,
                            p_action_attempts, p_action_visible_at, p_action_errors)
                     AS a(cmd, name, args, kwargs, attempt, visible_at, last_error)
                ON CONFLICT (tenant, workflow_id, run_id, cmd) DO UPDATE
                SET name = excluded.name, args = excluded.args, kwargs = excluded.kwargs,
                    attempt = excluded.attempt, visible_at = excluded.visible_at,
                    last_error = excluded.last_error, owner = excluded.owner,
                    lease_until = excluded.lease_until, dispatched_at = excluded.dispatched_at;
        END IF;
        IF cardinality(p_timer_cmds) > 0 THEN
            INSERT INTO timers (tenant, workflow_id, run_id, cmd, fire_at)
                SELECT p_tenant, p_workflow_id, v_run_id, t.cmd, t.fire_at
                FROM unnest(p_timer_cmds, p_timer_fire_at) AS t(cmd, fire_at)
                ON CONFLICT (tenant, workflow_id, run_id, cmd) DO UPDATE
                SET fire_at = excluded.fire_at;
        END IF;
        IF cardinality(p_cancelled_timers) > 0 THEN
            DELETE FROM timers WHERE tenant = p_tenant AND workflow_id = p_workflow_id
                AND run_id = v_run_id AND cmd = ANY (p_cancelled_timers);
        END IF;
    END IF;
    UPDATE executions
        SET last_seq = p_expected_seq + cardinality(p_seqs) - 1, updated_at = p_now,
            status = p_status, state = p_state, data = p_data, result = p_result,
            error = p_error, task_error = NULL
        WHERE tenant = p_tenant AND workflow_id = p_workflow_id;
    RETURN true;
END
$$;


CREATE OR REPLACE FUNCTION durable_commit(
    p_tenant text, p_workflow_id text, p_owner text, p_expected_seq bigint,
    p_seqs bigint[], p_bodies bytea[],
    p_action_cmds bigint[], p_action_names text[], p_action_args bytea[],
    p_action_kwargs bytea[], p_action_attempts integer[], p_action_visible_at double precision[],
    p_action_errors text[],
    p_timer_cmds bigint[], p_timer_fire_at double precision[], p_cancelled_timers bigint[],
    p_status text, p_state text, p_data bytea, p_result bytea, p_error bytea,
    p_now double precision) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    RETURN durable_commit(p_tenant, p_workflow_id, p_owner, p_expected_seq, p_seqs, p_bodies,
                          p_action_cmds, p_action_names, p_action_args, p_action_kwargs,
                          p_action_attempts, p_action_visible_at, p_action_errors,
                          p_timer_cmds, p_timer_fire_at, p_cancelled_timers, p_status, p_state,
                          p_data, p_result, p_error, p_now, NULL::text, NULL::text,
                          NULL::bigint[], 0::double precision);
END
$$;
