-- durable PostgreSQL schema: slots held for inline attempts of limited actions.
--
-- flow_holds: slots of a flow_buckets row (an action's route, or a queue's bucket) that one
-- worker holds until `until` for the attempts it runs inline (durable._limits). A limited
-- claim counts them as running, next to the leased tasks; a hold is rewritten by its worker's
-- next one, and deleted when the worker stops or is found dead. Not scoped by tenant: a worker
-- serves every tenant.
CREATE TABLE flow_holds (
    bucket text             NOT NULL,
    owner  text             NOT NULL,
    slots  integer          NOT NULL,
    until  double precision NOT NULL,
    PRIMARY KEY (bucket, owner)
);

CREATE INDEX flow_holds_by_owner ON flow_holds (owner);
