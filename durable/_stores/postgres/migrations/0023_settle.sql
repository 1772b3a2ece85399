-- durable PostgreSQL schema: a commit that first records the action outcome that made its
-- workflow task due (issue 14: the plain action path in one transaction per step).
--
-- With eager dispatch an action usually runs on the worker that committed the workflow task
-- which scheduled it, and that worker still holds the execution's instance. It then runs the
-- next workflow task at once, without a row or a claim, and its commit statement calls
-- durable_settle first: the outcome is recorded at p_seq (with the action's dedup key, first
-- completion wins, as durable_complete_action) and the action's task goes. Nothing is written
-- (false) unless the history of run p_run_id ends at p_seq - 1, the execution runs, no
-- workflow task is pending (an input or a request waits for one: the worker records the
-- outcome alone instead) and p_owner holds the action's task.
--
-- The task the outcome made due has no row: durable_settle marks the transaction instead
-- (`durable.settled`, a transaction-local setting naming the execution and the owner), and
-- durable_commit, next in the same statement, accepts that mark once in place of a task row
-- leased to the committer, and clears it. Everything else in durable_commit is as 0001 wrote
-- it (a PL/pgSQL function is replaced whole).

CREATE FUNCTION durable_settle(p_tenant text, p_workflow_id text, p_owner text, p_seq bigint,
                               p_run_id text, p_cmd bigint, p_body bytea, p_dedup text)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_run_id text;
    v_status text;
    v_last_seq bigint;
BEGIN
    SELECT run_id, status, last_seq INTO v_run_id, v_status, v_last_seq
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
    -- the task the outcome made due is the committer's: durable_commit, next in this
    -- statement, finds this mark instead of a task row (none is written and deleted)
    PERFORM set_config('durable.settled', p_tenant || chr(31) || p_workflow_id || chr(31)
                       || p_owner, true);
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
            -- new action tasks count as dispatched: the committing worker publishes them
            INSERT INTO action_tasks AS t (tenant, workflow_id, run_id, cmd, name, args, kwargs,
                                           attempt, visible_at, last_error, dispatched_at)
                SELECT p_tenant, p_workflow_id, v_run_id, a.*, p_now
                FROM unnest(p_action_cmds, p_action_names, p_action_args, p_action_kwargs,
                            p_action_attempts, p_action_visible_at, p_action_errors) AS a
                ON CONFLICT (tenant, workflow_id, run_id, cmd) DO UPDATE
                SET name = excluded.name, args = excluded.args, kwargs = excluded.kwargs,
                    attempt = excluded.attempt, visible_at = excluded.visible_at,
                    last_error = excluded.last_error, owner = NULL, lease_until = 0,
                    dispatched_at = excluded.dispatched_at;
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
