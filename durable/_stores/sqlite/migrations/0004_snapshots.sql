-- durable SQLite schema: snapshots, what replaying a run up to the end of one of its workflow
-- tasks gives (status, state, data, the await the coroutine is suspended at). Workers write one
-- every N events and keep the newest few; time travel (handle.state_at, durable show --at) and
-- describe() start from the newest one at or before the moment they need, so they read only the
-- events after it. A snapshot never takes part in a worker's replay.

CREATE TABLE snapshots (
    tenant       TEXT    NOT NULL,
    workflow_id  TEXT    NOT NULL,
    run_id       TEXT    NOT NULL,
    seq          INTEGER NOT NULL,         -- the last event of the workflow task it follows
    time         REAL    NOT NULL,         -- that event's time
    status       TEXT    NOT NULL,
    state        TEXT,
    data         BLOB    NOT NULL,         -- MessagePack dict[str, Any]
    suspended_at TEXT,                     -- file:line, NULL when not suspended
    PRIMARY KEY (tenant, workflow_id, run_id, seq)
) WITHOUT ROWID;
