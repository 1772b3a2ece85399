-- durable PostgreSQL schema: timers are due on the store's clock, the database server's.
--
-- Before, a timer's fire_at was written on the clock of the worker that committed it and
-- compared with the clock of whoever scanned for due timers: a worker whose clock ran ahead
-- fired other workers' timers early. Now a commit's timers, due at fire_at on the committer's
-- clock (the commit's p_now), are stored due as long after the server's clock at commit
-- (durable_due_on_store_clock), and the scan compares with the server's clock
-- (durable_fire_timers). The events a scan appends, and the workflow
-- tasks it makes runnable, are stamped with the earlier of the caller's p_now and the store's
-- clock: claims compare due times with the claiming worker's clock, and a scanner whose clock
-- runs ahead must not hide the tasks it makes runnable from the other workers. Tests that
-- drive the store with explicit times pass the store's time instead of NULL (p_given,
-- p_store_now).
--
-- durable_commit, durable_commit_effects and durable_fire_due_timers are not changed (an older
-- durable still calls them): the statements pass durable_commit's p_timer_fire_at through
-- durable_due_on_store_clock, and scan with durable_fire_timers instead.

-- The store's time: p_given (tests), else the server's clock, in epoch seconds.
CREATE FUNCTION durable_store_time(p_given double precision) RETURNS double precision
LANGUAGE sql VOLATILE AS $$
    SELECT coalesce(p_given, extract(epoch FROM clock_timestamp())::double precision)
$$;

-- Due times on the committer's clock (which read p_from at the commit) moved onto the store's.
CREATE FUNCTION durable_due_on_store_clock(p_fire_at double precision[], p_from double precision,
                                           p_given double precision)
RETURNS double precision[]
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_shift double precision;
BEGIN
    IF coalesce(cardinality(p_fire_at), 0) = 0 THEN
        RETURN p_fire_at;
    END IF;
    v_shift := durable_store_time(p_given) - p_from;
    RETURN ARRAY(SELECT t.fire_at + v_shift
                 FROM unnest(p_fire_at) WITH ORDINALITY AS t(fire_at, i) ORDER BY t.i);
END
$$;

-- durable_fire_due_timers (0001) with the comparison on the store's clock: fire up to p_limit
-- timers due at durable_store_time(p_store_now). Each TimerFired and its workflow task are
-- stamped v_stamp, the earlier of p_now and that time; the body is p_head || msgpack(seq) ||
-- msgpack(v_stamp) || msgpack(cmd) (msgspec writes every float as a float 64: 0xcb and the
-- 8 bytes float8send gives). Locking as in 0001.
CREATE FUNCTION durable_fire_timers(p_now double precision, p_limit integer, p_head bytea,
                                    p_store_now double precision)
RETURNS TABLE (fired_tenant text, fired_workflow_id text)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v_due double precision := durable_store_time(p_store_now);
    v_stamp double precision := least(p_now, v_due);
    v_time bytea := '\xcb'::bytea || float8send(v_stamp);
BEGIN
    FOR r IN
        SELECT t.tenant, t.workflow_id, t.run_id, t.cmd
        FROM timers AS t JOIN executions AS e
            ON e.tenant = t.tenant AND e.workflow_id = t.workflow_id
        WHERE t.fire_at <= v_due
        ORDER BY t.fire_at
        LIMIT p_limit
        FOR UPDATE OF e SKIP LOCKED
    LOOP
        DELETE FROM timers WHERE tenant = r.tenant AND workflow_id = r.workflow_id
            AND run_id = r.run_id AND cmd = r.cmd;
        CONTINUE WHEN NOT FOUND;
        PERFORM durable_append(r.tenant, r.workflow_id, p_head,
                               v_time || durable_msgpack_uint(r.cmd),
                               't' || r.run_id || '/' || r.cmd, v_stamp);
        fired_tenant := r.tenant;
        fired_workflow_id := r.workflow_id;
        RETURN NEXT;
    END LOOP;
END
$$;
