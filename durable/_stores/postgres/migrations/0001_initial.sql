-- durable PostgreSQL schema, version 1.
--
-- Every table's primary key and unique keys lead with (tenant, workflow_id), so the schema can
-- be distributed by Citus on tenant. Times are seconds since the epoch (double precision);
-- payloads are MessagePack (bytea). Work tables (workflow_tasks, action_tasks, timers) are
-- also indexed by due time and by dispatch time, because claims, timer scans and the outbox
-- look for work across tenants.
--
-- Lock order (no deadlocks): a transaction that writes an execution's history locks its
-- executions row first, then that execution's workflow_tasks / action_tasks / timers rows.
-- Whatever scans work across executions (claims, dispatch_due, fire_due_timers) locks with
-- SKIP LOCKED and never waits while holding a row.

CREATE TABLE executions (
    tenant      text             NOT NULL,
    workflow_id text             NOT NULL,
    run_id      text             NOT NULL,
    workflow    text             NOT NULL,
    version     text             NOT NULL,
    status      text             NOT NULL,   -- running | completed | failed | cancelled
    created_at  double precision NOT NULL,
    updated_at  double precision NOT NULL,
    last_seq    bigint           NOT NULL,
    state       text,
    data        bytea            NOT NULL,   -- MessagePack dict[str, Any]
    result      bytea            NOT NULL,   -- MessagePack Any
    error       bytea,                       -- MessagePack ErrorInfo, NULL when none
    task_error  text,
    PRIMARY KEY (tenant, workflow_id)
);

CREATE INDEX executions_by_tenant_created ON executions (tenant, created_at, workflow_id);
CREATE INDEX executions_by_created ON executions (created_at, workflow_id);

-- Invariant: seq is dense per run (1, 2, 3 ...); a dedup key appears at most once per run.
CREATE TABLE events (
    tenant      text   NOT NULL,
    workflow_id text   NOT NULL,
    run_id      text   NOT NULL,
    seq         bigint NOT NULL,
    dedup       text,                        -- idempotency key of an input, NULL for most events
    body        bytea  NOT NULL,             -- MessagePack Event (durable._history.encode_event)
    PRIMARY KEY (tenant, workflow_id, run_id, seq)
);

CREATE UNIQUE INDEX events_dedup ON events (tenant, workflow_id, run_id, dedup)
    WHERE dedup IS NOT NULL;

-- One row per execution that has inputs to run. due = when it can next be claimed;
-- dispatched_at = when its hint was last published (0: publish once due).
CREATE TABLE workflow_tasks (
    tenant        text             NOT NULL,
    workflow_id   text             NOT NULL,
    workflow      text             NOT NULL,
    visible_at    double precision NOT NULL,
    owner         text,
    lease_until   double precision NOT NULL DEFAULT 0,
    attempt       integer          NOT NULL DEFAULT 0,
    dispatched_at double precision NOT NULL DEFAULT 0,
    due           double precision GENERATED ALWAYS AS
                      (CASE WHEN owner IS NULL THEN visible_at
                            ELSE greatest(visible_at, lease_until) END) STORED,
    PRIMARY KEY (tenant, workflow_id)
);

CREATE INDEX workflow_tasks_by_due ON workflow_tasks (due);
CREATE INDEX workflow_tasks_by_dispatched ON workflow_tasks (dispatched_at);

CREATE TABLE action_tasks (
    tenant        text             NOT NULL,
    workflow_id   text             NOT NULL,
    run_id        text             NOT NULL,
    cmd           bigint           NOT NULL,
    name          text             NOT NULL,
    args          bytea            NOT NULL, -- MessagePack list
    kwargs        bytea            NOT NULL, -- MessagePack dict
    attempt       integer          NOT NULL,
    visible_at    double precision NOT NULL,
    last_error    text,
    owner         text,
    lease_until   double precision NOT NULL DEFAULT 0,
    dispatched_at double precision NOT NULL DEFAULT 0,
    due           double precision GENERATED ALWAYS AS
                      (CASE WHEN owner IS NULL THEN visible_at
                            ELSE greatest(visible_at, lease_until) END) STORED,
    PRIMARY KEY (tenant, workflow_id, run_id, cmd)
);

CREATE INDEX action_tasks_by_due ON action_tasks (due);
CREATE INDEX action_tasks_by_dispatched ON action_tasks (dispatched_at);

-- Invariant: a timer row is deleted in the transaction that records its TimerFired.
CREATE TABLE timers (
    tenant      text             NOT NULL,
    workflow_id text             NOT NULL,
    run_id      text             NOT NULL,
    cmd         bigint           NOT NULL,
    fire_at     double precision NOT NULL,
    PRIMARY KEY (tenant, workflow_id, run_id, cmd)
);

CREATE INDEX timers_by_fire_at ON timers (fire_at);


-- ---- functions: one round trip per hot operation ---------------------------------------------

-- The MessagePack encoding of a non-negative integer, smallest form first (as msgspec writes it).
-- Not STRICT: a STRICT SQL function whose body is not strict (CASE) is never inlined, and
-- calling it costs ~20 us per row instead of nothing. NULL still gives NULL.
CREATE FUNCTION durable_msgpack_uint(n bigint) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN n < 128 THEN substring(int2send(n::smallint) FROM 2)
        WHEN n < 256 THEN '\xcc'::bytea || substring(int2send(n::smallint) FROM 2)
        WHEN n < 65536 THEN '\xcd'::bytea || substring(int4send(n::integer) FROM 3)
        WHEN n < 4294967296 THEN '\xce'::bytea || substring(int8send(n) FROM 5)
        ELSE '\xcf'::bytea || int8send(n)
    END
$$;

-- Append an input event at the next seq and make the execution runnable.
-- The event's body is p_head || msgpack(seq) || p_tail: the caller encodes the event with its
-- time and splits it where seq goes, because only this function knows the seq.
-- Returns the seq; NULL when the execution has ended or p_dedup was seen; 0 when there is no
-- such execution.
CREATE FUNCTION durable_append(p_tenant text, p_workflow_id text, p_head bytea, p_tail bytea,
                               p_dedup text, p_now double precision) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_run_id text;
    v_workflow text;
    v_status text;
    v_seq bigint;
BEGIN
    SELECT run_id, workflow, status, last_seq + 1 INTO v_run_id, v_workflow, v_status, v_seq
        FROM executions WHERE tenant = p_tenant AND workflow_id = p_workflow_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    IF v_status IN ('completed', 'failed', 'cancelled') THEN
        RETURN NULL;
    END IF;
    INSERT INTO events (tenant, workflow_id, run_id, seq, dedup, body)
        VALUES (p_tenant, p_workflow_id, v_run_id, v_seq, p_dedup,
                p_head || durable_msgpack_uint(v_seq) || p_tail)
        ON CONFLICT (tenant, workflow_id, run_id, dedup) WHERE dedup IS NOT NULL DO NOTHING;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    UPDATE executions SET last_seq = v_seq, updated_at = p_now
        WHERE tenant = p_tenant AND workflow_id = p_workflow_id;
    -- made runnable now: its creator publishes the hint, so it counts as dispatched
    INSERT INTO workflow_tasks AS w (tenant, workflow_id, workflow, visible_at, dispatched_at)
        VALUES (p_tenant, p_workflow_id, v_workflow, p_now, p_now)
        ON CONFLICT (tenant, workflow_id) DO UPDATE
        SET visible_at = least(w.visible_at, excluded.visible_at),
            dispatched_at = excluded.dispatched_at;
    RETURN v_seq;
END
$$;

-- Record an action's outcome (first completion wins, by dedup key) and drop its task.
CREATE FUNCTION durable_complete_action(p_tenant text, p_workflow_id text, p_run_id text,
                                        p_cmd bigint, p_head bytea, p_tail bytea, p_dedup text,
                                        p_now double precision) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM FROM executions WHERE tenant = p_tenant AND workflow_id = p_workflow_id FOR UPDATE;
    DELETE FROM action_tasks WHERE tenant = p_tenant AND workflow_id = p_workflow_id
        AND run_id = p_run_id AND cmd = p_cmd;
    RETURN coalesce(durable_append(p_tenant, p_workflow_id, p_head, p_tail, p_dedup, p_now), 0) > 0;
END
$$;

-- Commit a workflow task: if the history ends at p_expected_seq - 1 and p_owner holds the
-- task, append the events, schedule actions and timers, drop cancelled timers, update the
-- execution and finish the task. A terminal status drops the run's remaining work instead.
CREATE FUNCTION durable_commit(
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
    IF NOT FOUND OR v_owner IS DISTINCT FROM p_owner THEN
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

-- Give a leased workflow task back (dispatched again once due), noting why it failed.
CREATE FUNCTION durable_release(p_tenant text, p_workflow_id text, p_owner text,
                                p_visible_at double precision, p_error text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_error IS NOT NULL THEN  -- lock order: the executions row first
        PERFORM FROM executions WHERE tenant = p_tenant AND workflow_id = p_workflow_id
            FOR UPDATE;
    END IF;
    UPDATE workflow_tasks SET owner = NULL, visible_at = p_visible_at, dispatched_at = 0
        WHERE tenant = p_tenant AND workflow_id = p_workflow_id AND owner = p_owner;
    IF FOUND AND p_error IS NOT NULL THEN
        UPDATE executions SET task_error = p_error
            WHERE tenant = p_tenant AND workflow_id = p_workflow_id;
    END IF;
END
$$;

-- Fire up to p_limit due timers: delete each and append its TimerFired (dedup 't<run>/<cmd>').
-- A TimerFired body is p_head || msgpack(seq) || p_time || msgpack(cmd).
-- Only the executions rows are locked (SKIP LOCKED): concurrent callers take disjoint
-- executions, a timer whose execution is busy is left for the next call, and a timer row is
-- only ever deleted under its execution's lock (here, or by a commit), so a timer another
-- caller fired since this snapshot is found gone and skipped.
CREATE FUNCTION durable_fire_due_timers(p_now double precision, p_limit integer,
                                        p_head bytea, p_time bytea)
RETURNS TABLE (fired_tenant text, fired_workflow_id text)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT t.tenant, t.workflow_id, t.run_id, t.cmd
        FROM timers AS t JOIN executions AS e
            ON e.tenant = t.tenant AND e.workflow_id = t.workflow_id
        WHERE t.fire_at <= p_now
        ORDER BY t.fire_at
        LIMIT p_limit
        FOR UPDATE OF e SKIP LOCKED
    LOOP
        DELETE FROM timers WHERE tenant = r.tenant AND workflow_id = r.workflow_id
            AND run_id = r.run_id AND cmd = r.cmd;
        CONTINUE WHEN NOT FOUND;
        PERFORM durable_append(r.tenant, r.workflow_id, p_head,
                               p_time || durable_msgpack_uint(r.cmd),
                               't' || r.run_id || '/' || r.cmd, p_now);
        fired_tenant := r.tenant;
        fired_workflow_id := r.workflow_id;
        RETURN NEXT;
    END LOOP;
END
$$;
