-- durable PostgreSQL schema: schedules (client.schedule).
-- body is the MessagePack ScheduleRecord (definition and scheduler state); revision is what a
-- compare-and-set update names; next_check is when a scheduler should look at the schedule
-- next (NULL: nothing can happen, e.g. paused); owner/lease_until is the scheduler holding it.
-- Schedulers claim due rows with FOR UPDATE SKIP LOCKED and a lease, so several servers
-- process disjoint schedules; the key leads with tenant (Citus distribution column).

CREATE TABLE schedules (
    tenant      text             NOT NULL,
    schedule_id text             NOT NULL,
    revision    bigint           NOT NULL,
    next_check  double precision,
    owner       text,
    lease_until double precision NOT NULL DEFAULT 0,
    body        bytea            NOT NULL,
    due         double precision GENERATED ALWAYS AS
                    (CASE WHEN owner IS NULL THEN next_check
                          ELSE greatest(next_check, lease_until) END) STORED,
    PRIMARY KEY (tenant, schedule_id)
);

CREATE INDEX schedules_by_due ON schedules (due);
