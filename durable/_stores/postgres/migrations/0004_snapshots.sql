-- durable PostgreSQL schema: snapshots, what replaying a run up to the end of one of its
-- workflow tasks gives (status, state, data, the await the coroutine is suspended at). Workers
-- write one every N events and keep the newest few; time travel (handle.state_at, durable show
-- --at) and describe() start from the newest one at or before the moment they need, so they
-- read only the events after it. A snapshot never takes part in a worker's replay.

CREATE TABLE snapshots (
    tenant       text             NOT NULL,
    workflow_id  text             NOT NULL,
    run_id       text             NOT NULL,
    seq          bigint           NOT NULL,  -- the last event of the workflow task it follows
    time         double precision NOT NULL,  -- that event's time
    status       text             NOT NULL,
    state        text,
    data         bytea            NOT NULL,  -- MessagePack dict[str, Any]
    suspended_at text,                       -- file:line, NULL when not suspended
    PRIMARY KEY (tenant, workflow_id, run_id, seq)
);
