-- durable PostgreSQL schema: look up a leased task by its key alone (issues 13, 14).
--
-- Three functions find a task by its primary key and check that the caller holds it. Written
-- as `owner = p_owner`, that check lets the planner serve the look-up from a partial index on
-- `owner IS NOT NULL` (action_tasks_leased, action_tasks_running, workflow_tasks_running)
-- instead of the key, reading every leased task (of the tenant) for each call. It does so
-- whenever the statistics make those indexes look cheaper, as they do once a table was analyzed
-- or vacuumed while nearly empty: after an ANALYZE of an idle database the settle's DELETE of
-- the action task took 0.1-2.7 ms instead of 9 us, and a plain step's commit 0.55-2.9 ms
-- instead of 0.32 (bench/RESULTS.md, "Plans that follow the queues"). `IS NOT DISTINCT FROM`
-- says the same for the non-NULL owner these functions are given, and implies nothing about
-- NULL, so no partial index on `owner IS NOT NULL` can serve the look-up. Each function is
-- otherwise as its last migration wrote it (a PL/pgSQL function is replaced whole).

CREATE OR REPLACE FUNCTION durable_commit(
    p_tenant text, p_workflow_id text, p_owner text, p_expected_seq bigint,
    p_seqs bigint[], p_bodies bytea[],
    p_action_cmds bigint[], p_action_names text[], p_action_args bytea[],
    p_action_kwargs bytea[], p_action_attempts integer[], p_action_visible_at double precision[],
    p_action_errors text[],
    p_timer_cmds bigint[], p_timer_fire_at double precision[], p_cancelled_timers bigint[],
    p_status text, p_state text, p_data bytea, p_result bytea, p_error bytea,
    p_now double precision, p_lease_run text, p_lease_owner text, p_lease_cmds bigint[],
    p_lease_until double precision,
    p_settle_run text, p_settle_cmd bigint, p_settle_body bytea, p_settle_dedup text)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_run_id text;
    v_status text;
    v_last_seq bigint;
    v_priority integer;
    v_key text;
    v_owner text;
    v_settles boolean := p_settle_body IS NOT NULL;
    v_seqs bigint[] := p_seqs;
    v_bodies bytea[] := p_bodies;
    v_sums bytea[] := '{}';
    v_sum bytea;
BEGIN
    SELECT run_id, status, last_seq, priority, fairness_key
        INTO v_run_id, v_status, v_last_seq, v_priority, v_key
        FROM executions WHERE tenant = p_tenant AND workflow_id = p_workflow_id FOR UPDATE;
    IF NOT FOUND OR v_last_seq <> p_expected_seq - 1 - v_settles::integer THEN
        RETURN false;
    END IF;
    SELECT owner INTO v_owner
        FROM workflow_tasks WHERE tenant = p_tenant AND workflow_id = p_workflow_id FOR UPDATE;
    IF v_settles THEN
        -- the outcome first (as durable_settle): only onto the history it extends, of a
        -- running execution with no workflow task pending, from the action task's owner
        IF FOUND OR v_run_id <> p_settle_run
                OR v_status IN ('completed', 'failed', 'cancelled') THEN
            RETURN false;
        END IF;
        DELETE FROM action_tasks WHERE tenant = p_tenant AND workflow_id = p_workflow_id
            AND run_id = p_settle_run AND cmd = p_settle_cmd
            AND owner IS NOT DISTINCT FROM p_owner;
        IF NOT FOUND THEN
            RETURN false;
        END IF;
        v_seqs := array_prepend(p_expected_seq - 1, p_seqs);
        v_bodies := array_prepend(p_settle_body, p_bodies);
    ELSE
        IF NOT FOUND THEN
            -- no task row: only right after durable_settle recorded the outcome that made
            -- this task due, in this transaction, for this owner (durable_commit_effects)
            IF current_setting('durable.settled', true) IS DISTINCT FROM
                    p_tenant || chr(31) || p_workflow_id || chr(31) || p_owner THEN
                RETURN false;
            END IF;
            PERFORM set_config('durable.settled', '', true);
        ELSIF v_owner IS DISTINCT FROM p_owner THEN
            RETURN false;
        END IF;
    END IF;
    IF cardinality(v_seqs) > 0 THEN
        v_sum := coalesce(
            (SELECT checksum FROM events WHERE tenant = p_tenant AND workflow_id = p_workflow_id
                AND run_id = v_run_id AND seq = v_seqs[1] - 1),
            durable_run_seed(p_tenant, p_workflow_id, v_run_id));
        FOR i IN 1 .. cardinality(v_seqs) LOOP
            v_sum := substring(sha256(v_sum || v_bodies[i]) FROM 1 FOR 8);
            v_sums := array_append(v_sums, v_sum);
        END LOOP;
    END IF;
    IF v_settles THEN
        INSERT INTO events (tenant, workflow_id, run_id, seq, dedup, body, checksum)
            VALUES (p_tenant, p_workflow_id, v_run_id, v_seqs[1], p_settle_dedup, v_bodies[1],
                    v_sums[1])
            ON CONFLICT (tenant, workflow_id, run_id, dedup) WHERE dedup IS NOT NULL DO NOTHING;
        IF NOT FOUND THEN
            RETURN false;  -- recorded before: the task was left over, and is gone now
        END IF;
        v_sums := v_sums[2:];
    END IF;
    INSERT INTO events (tenant, workflow_id, run_id, seq, body, checksum)
        SELECT p_tenant, p_workflow_id, v_run_id, e.seq, e.body, e.checksum
        FROM unnest(p_seqs, p_bodies, v_sums) AS e(seq, body, checksum);
    IF v_owner IS NOT NULL THEN
        DELETE FROM workflow_tasks WHERE tenant = p_tenant AND workflow_id = p_workflow_id;
    END IF;
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
                                           owner, lease_until, priority, fairness_key)
                SELECT p_tenant, p_workflow_id, v_run_id, a.*, p_now,
                       CASE WHEN p_lease_run = v_run_id AND a.cmd = ANY (p_lease_cmds)
                            THEN p_lease_owner END,
                       CASE WHEN p_lease_run = v_run_id AND a.cmd = ANY (p_lease_cmds)
                            THEN p_lease_until ELSE 0 END,
                       v_priority, v_key
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

CREATE OR REPLACE FUNCTION durable_settle(p_tenant text, p_workflow_id text, p_owner text,
                                          p_seq bigint, p_run_id text, p_cmd bigint,
                                          p_body bytea, p_dedup text)
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
        AND run_id = p_run_id AND cmd = p_cmd AND owner IS NOT DISTINCT FROM p_owner;
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

CREATE OR REPLACE FUNCTION durable_release(p_tenant text, p_workflow_id text, p_owner text,
                                           p_visible_at double precision, p_error text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_error IS NOT NULL THEN  -- lock order: the executions row first
        PERFORM FROM executions WHERE tenant = p_tenant AND workflow_id = p_workflow_id
            FOR UPDATE;
    END IF;
    UPDATE workflow_tasks SET owner = NULL, visible_at = p_visible_at, dispatched_at = 0
        WHERE tenant = p_tenant AND workflow_id = p_workflow_id
            AND owner IS NOT DISTINCT FROM p_owner;
    IF FOUND AND p_error IS NOT NULL THEN
        UPDATE executions SET task_error = p_error
            WHERE tenant = p_tenant AND workflow_id = p_workflow_id;
    END IF;
END
$$;
