-- durable PostgreSQL schema: requests, the queries and updates waiting for a worker to answer
-- them (handle.query / handle.update). The client inserts a request and makes the execution's
-- workflow task runnable with requested = true; the worker that runs the task reads the
-- pending requests, answers them and records accepted updates in the execution's history.
--
-- Lock order as in 0001: a function that changes an execution's requests and its workflow
-- task locks the executions row first.

CREATE TABLE requests (
    tenant      text             NOT NULL,
    workflow_id text             NOT NULL,
    id          text             NOT NULL,   -- the update's idempotency key, or a random id
    kind        text             NOT NULL,   -- query | update
    name        text             NOT NULL,
    args        bytea            NOT NULL,   -- MessagePack list
    created_at  double precision NOT NULL,
    status      text             NOT NULL,   -- pending | accepted | ok | failed | rejected
    result      bytea,                       -- MessagePack Any, once ok
    error       bytea,                       -- MessagePack ErrorInfo, once failed or rejected
    PRIMARY KEY (tenant, workflow_id, id)
);

CREATE INDEX requests_pending ON requests (tenant, workflow_id, created_at)
    WHERE status = 'pending';

-- Set when a request made the task runnable: the worker then looks for pending requests.
ALTER TABLE workflow_tasks ADD COLUMN requested boolean NOT NULL DEFAULT false;

-- Record a request (unless one with its id exists; a rejected update is replaced by the new
-- attempt) and, while it is pending, make the execution runnable with requested set.
-- r_status is 'missing' when there is no such execution, 'closed' for a new update of an
-- execution that has ended, else the stored request's status (r_made: a task was made runnable).
CREATE FUNCTION durable_submit_request(p_tenant text, p_workflow_id text, p_id text,
                                       p_kind text, p_name text, p_args bytea,
                                       p_now double precision)
RETURNS TABLE (r_kind text, r_name text, r_args bytea, r_created_at double precision,
               r_status text, r_result bytea, r_error bytea, r_made boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_workflow text;
    v_status text;
    v_request requests%ROWTYPE;
BEGIN
    SELECT workflow, status INTO v_workflow, v_status
        FROM executions WHERE tenant = p_tenant AND workflow_id = p_workflow_id FOR UPDATE;
    IF NOT FOUND THEN
        r_status := 'missing';
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT * INTO v_request FROM requests
        WHERE tenant = p_tenant AND workflow_id = p_workflow_id AND id = p_id;
    IF NOT FOUND OR v_request.status = 'rejected' THEN
        IF p_kind = 'update' AND v_status IN ('completed', 'failed', 'cancelled') THEN
            r_status := 'closed';
            RETURN NEXT;
            RETURN;
        END IF;
        INSERT INTO requests AS r (tenant, workflow_id, id, kind, name, args, created_at, status)
            VALUES (p_tenant, p_workflow_id, p_id, p_kind, p_name, p_args, p_now, 'pending')
            ON CONFLICT (tenant, workflow_id, id) DO UPDATE
            SET kind = excluded.kind, name = excluded.name, args = excluded.args,
                created_at = excluded.created_at, status = 'pending', result = NULL, error = NULL
            RETURNING * INTO v_request;
    END IF;
    r_kind := v_request.kind;
    r_name := v_request.name;
    r_args := v_request.args;
    r_created_at := v_request.created_at;
    r_status := v_request.status;
    r_result := v_request.result;
    r_error := v_request.error;
    r_made := v_request.status = 'pending';
    IF r_made THEN
        -- made runnable now: the caller publishes the hint, so it counts as dispatched
        INSERT INTO workflow_tasks AS w (tenant, workflow_id, workflow, visible_at, dispatched_at,
                                         requested)
            VALUES (p_tenant, p_workflow_id, v_workflow, p_now, p_now, true)
            ON CONFLICT (tenant, workflow_id) DO UPDATE
            SET visible_at = least(w.visible_at, excluded.visible_at),
                dispatched_at = excluded.dispatched_at, requested = true;
    END IF;
    RETURN NEXT;
END
$$;

-- A pending request whose execution has no workflow task (a worker committed a task that had
-- started before the request arrived) gets one, requested and runnable now.
CREATE FUNCTION durable_rearm_request(p_tenant text, p_workflow_id text, p_id text,
                                      p_now double precision) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_workflow text;
BEGIN
    SELECT workflow INTO v_workflow
        FROM executions WHERE tenant = p_tenant AND workflow_id = p_workflow_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM FROM requests WHERE tenant = p_tenant AND workflow_id = p_workflow_id
        AND id = p_id AND status = 'pending';
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO workflow_tasks (tenant, workflow_id, workflow, visible_at, dispatched_at,
                                requested)
        VALUES (p_tenant, p_workflow_id, v_workflow, p_now, p_now, true)
        ON CONFLICT (tenant, workflow_id) DO NOTHING;
    RETURN FOUND;
END
$$;

-- Answer requests (one reply per id); a request already answered keeps its answer. Each final
-- answer is announced on p_channel ('tenant US workflow_id US id') when the transaction commits.
CREATE FUNCTION durable_answer(p_tenant text, p_workflow_id text, p_ids text[],
                               p_statuses text[], p_results bytea[], p_errors bytea[],
                               p_channel text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE requests AS r SET status = a.status, result = a.result, error = a.error
        FROM unnest(p_ids, p_statuses, p_results, p_errors) AS a(id, status, result, error)
        WHERE r.tenant = p_tenant AND r.workflow_id = p_workflow_id AND r.id = a.id
          AND r.status IN ('pending', 'accepted');
    PERFORM pg_notify(p_channel, p_tenant || chr(31) || p_workflow_id || chr(31) || a.id)
        FROM unnest(p_ids, p_statuses) AS a(id, status)
        WHERE a.status IN ('ok', 'failed', 'rejected');
END
$$;
