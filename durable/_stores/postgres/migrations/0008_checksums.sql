-- durable PostgreSQL schema: history integrity. Each event carries a checksum chained to the one
-- before it in its run, and every read of a history checks it (durable._stores._integrity).
--
-- checksum(n) = first 8 bytes of sha256(checksum(n - 1) || body(n)), from a seed of the run's
-- own (sha256 of 'tenant US workflow_id US run_id') at seq 1, and again after a row without a
-- checksum. The database computes it, in a trigger: the seq of an input is decided inside the
-- functions that append it (durable_append), PostgreSQL has no CRC-32 before version 18, and
-- so every way a row gets written (a commit, an input, a start, a new run, whatever a later
-- migration or an older process still running sends) is covered by one definition and costs
-- no round trip. The statements that read histories call durable_history, which checks each
-- row against the one before it next to the data; the store then checks the rest (dense seqs,
-- decoding, the execution's last seq).
--
-- Rows written before this migration keep NULL (no backfill: the upgrade rewrites nothing and
-- takes no time). They are read as they are, and the chain starts again at the next row that
-- has a checksum.
--
-- The trigger reads the row before the new one: a multi-row INSERT (durable_commit) inserts
-- its events in seq order, and a row-level BEFORE trigger sees the rows its statement has
-- inserted before (PostgreSQL: "Visibility of Data Changes").

ALTER TABLE events ADD COLUMN checksum bytea;  -- 8 bytes; NULL: written before this migration

CREATE FUNCTION durable_run_seed(p_tenant text, p_workflow_id text, p_run_id text)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT substring(sha256(convert_to(p_tenant || chr(31) || p_workflow_id || chr(31)
                                       || p_run_id, 'UTF8')) FROM 1 FOR 8)
$$;

CREATE FUNCTION durable_checksum(p_prev bytea, p_body bytea)
RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT substring(sha256(p_prev || p_body) FROM 1 FOR 8)
$$;

CREATE FUNCTION durable_chain_event() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.checksum := durable_checksum(coalesce(
        (SELECT checksum FROM events WHERE tenant = NEW.tenant AND workflow_id = NEW.workflow_id
            AND run_id = NEW.run_id AND seq = NEW.seq - 1),
        durable_run_seed(NEW.tenant, NEW.workflow_id, NEW.run_id)), NEW.body);
    RETURN NEW;
END
$$;

CREATE TRIGGER events_chain BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION durable_chain_event();

-- A run's rows from p_after_seq on, each with whether it is intact: true or false when it has
-- a checksum (is it the chain continued from the row before it?), NULL when it has none. The
-- first row of a range with p_after_seq > 0 is the anchor the caller already holds: its
-- verdict is meaningless (its predecessor is not read). Order by seq.
CREATE FUNCTION durable_history(p_tenant text, p_workflow_id text, p_run_id text,
                                p_after_seq bigint)
RETURNS TABLE (seq bigint, body bytea, intact boolean)
LANGUAGE sql STABLE AS $$
    SELECT e.seq, e.body,
           e.checksum = durable_checksum(
               CASE WHEN e.prev_seq = e.seq - 1 AND e.prev IS NOT NULL THEN e.prev
                    ELSE durable_run_seed(p_tenant, p_workflow_id, p_run_id) END, e.body)
    FROM (SELECT v.seq, v.body, v.checksum, lag(v.seq) OVER w AS prev_seq,
                 lag(v.checksum) OVER w AS prev
          FROM events AS v
          WHERE v.tenant = p_tenant AND v.workflow_id = p_workflow_id AND v.run_id = p_run_id
            AND v.seq >= p_after_seq
          WINDOW w AS (ORDER BY v.seq)) AS e
$$;
