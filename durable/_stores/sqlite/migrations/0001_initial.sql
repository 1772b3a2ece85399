-- durable SQLite schema, version 1.
-- Every table's key leads with (tenant, workflow_id); every row carries its tenant.
-- Work tables (workflow_tasks, action_tasks, timers) are also indexed by due time, because
-- claims and timer scans look for due work across tenants.

CREATE TABLE executions (
    tenant      TEXT    NOT NULL,
    workflow_id TEXT    NOT NULL,
    run_id      TEXT    NOT NULL,
    workflow    TEXT    NOT NULL,
    version     TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    created_at  REAL    NOT NULL,
    updated_at  REAL    NOT NULL,
    last_seq    INTEGER NOT NULL,
    state       TEXT,
    data        BLOB    NOT NULL,          -- MessagePack dict[str, Any]
    result      BLOB    NOT NULL,          -- MessagePack Any
    error       BLOB,                      -- MessagePack ErrorInfo, NULL when none
    task_error  TEXT,
    PRIMARY KEY (tenant, workflow_id)
) WITHOUT ROWID;

CREATE INDEX executions_by_tenant_created ON executions (tenant, created_at, workflow_id);
CREATE INDEX executions_by_created ON executions (created_at, workflow_id);

-- Invariant: seq is dense per run (1, 2, 3 ...); a dedup key appears at most once per run.
CREATE TABLE events (
    tenant      TEXT    NOT NULL,
    workflow_id TEXT    NOT NULL,
    run_id      TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    dedup       TEXT,                      -- idempotency key of an input, NULL for most events
    body        BLOB    NOT NULL,          -- MessagePack Event (durable._history.encode_event)
    PRIMARY KEY (tenant, workflow_id, run_id, seq)
) WITHOUT ROWID;

CREATE UNIQUE INDEX events_dedup ON events (tenant, workflow_id, run_id, dedup)
    WHERE dedup IS NOT NULL;

-- One row per execution that has inputs to run. due = when it can next be claimed.
CREATE TABLE workflow_tasks (
    tenant      TEXT    NOT NULL,
    workflow_id TEXT    NOT NULL,
    workflow    TEXT    NOT NULL,
    visible_at  REAL    NOT NULL,
    owner       TEXT,
    lease_until REAL    NOT NULL DEFAULT 0,
    attempt     INTEGER NOT NULL DEFAULT 0,
    due         REAL    GENERATED ALWAYS AS
                    (CASE WHEN owner IS NULL THEN visible_at ELSE lease_until END) VIRTUAL,
    PRIMARY KEY (tenant, workflow_id)
) WITHOUT ROWID;

CREATE INDEX workflow_tasks_by_due ON workflow_tasks (due);

CREATE TABLE action_tasks (
    tenant      TEXT    NOT NULL,
    workflow_id TEXT    NOT NULL,
    run_id      TEXT    NOT NULL,
    cmd         INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    args        BLOB    NOT NULL,          -- MessagePack list
    kwargs      BLOB    NOT NULL,          -- MessagePack dict
    attempt     INTEGER NOT NULL,
    visible_at  REAL    NOT NULL,
    last_error  TEXT,
    owner       TEXT,
    lease_until REAL    NOT NULL DEFAULT 0,
    due         REAL    GENERATED ALWAYS AS
                    (CASE WHEN owner IS NULL THEN visible_at ELSE lease_until END) VIRTUAL,
    PRIMARY KEY (tenant, workflow_id, run_id, cmd)
) WITHOUT ROWID;

CREATE INDEX action_tasks_by_due ON action_tasks (due);

-- Invariant: a timer row is deleted in the transaction that records its TimerFired.
CREATE TABLE timers (
    tenant      TEXT    NOT NULL,
    workflow_id TEXT    NOT NULL,
    run_id      TEXT    NOT NULL,
    cmd         INTEGER NOT NULL,
    fire_at     REAL    NOT NULL,
    PRIMARY KEY (tenant, workflow_id, run_id, cmd)
) WITHOUT ROWID;

CREATE INDEX timers_by_fire_at ON timers (fire_at);
