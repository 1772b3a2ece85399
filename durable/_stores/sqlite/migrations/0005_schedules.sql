-- durable SQLite schema: schedules (client.schedule).
-- body is the MessagePack ScheduleRecord (definition and scheduler state); revision is what a
-- compare-and-set update names; next_check is when a scheduler should look at the schedule
-- next (NULL: nothing can happen, e.g. paused); owner/lease_until is the scheduler holding it.

CREATE TABLE schedules (
    tenant      TEXT    NOT NULL,
    schedule_id TEXT    NOT NULL,
    revision    INTEGER NOT NULL,
    next_check  REAL,
    owner       TEXT,
    lease_until REAL    NOT NULL DEFAULT 0,
    body        BLOB    NOT NULL,
    due         REAL    GENERATED ALWAYS AS
                    (CASE WHEN owner IS NULL THEN next_check
                          ELSE max(next_check, lease_until) END) VIRTUAL,
    PRIMARY KEY (tenant, schedule_id)
) WITHOUT ROWID;

CREATE INDEX schedules_by_due ON schedules (due);
