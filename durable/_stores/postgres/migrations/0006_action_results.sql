-- durable PostgreSQL schema: the outcomes of database actions (@durable.action(transaction=True)).
-- A database action's transaction inserts its ActionCompleted here, together with the user's
-- writes: one commit makes both durable, or neither. Right after, a second statement moves it
-- into the history (durable_complete_action) and marks the row moved; if the worker dies in
-- between, whoever takes the action task over finds the row and finishes the move instead of
-- running the action again. The row stays (one per database action call, like the history):
-- an attempt that ran concurrently (a worker whose lease had expired) conflicts with it on
-- insert and rolls its writes back. (The history is not appended inside the user's transaction because that would
-- lock the execution's row for as long as the action runs, and, at repeatable read or
-- serializable, fail whenever the execution changed meanwhile.)
-- head || msgpack(seq) || tail is the event's body (see durable_append).

CREATE TABLE action_results (
    tenant      text   NOT NULL,
    workflow_id text   NOT NULL,
    run_id      text   NOT NULL,
    cmd         bigint NOT NULL,
    head        bytea  NOT NULL,
    tail        bytea  NOT NULL,
    moved       boolean NOT NULL DEFAULT false,   -- the outcome is in the history
    PRIMARY KEY (tenant, workflow_id, run_id, cmd)
);
