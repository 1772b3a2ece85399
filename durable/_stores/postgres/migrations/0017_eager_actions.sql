-- durable PostgreSQL schema: eager action dispatch.
--
-- A workflow task's commit may create some of its new action tasks already leased to the
-- committing worker, which runs them at once (no hint, no claim). The commit statement calls
-- this after durable_commit, in the same statement and transaction, when that succeeded. It
-- leases only rows nobody holds: the ones the commit has just created.

CREATE FUNCTION durable_lease_actions(p_tenant text, p_workflow_id text, p_run_id text,
                                      p_owner text, p_cmds bigint[],
                                      p_until double precision)
RETURNS integer LANGUAGE sql AS $$
    WITH leased AS (
        UPDATE action_tasks SET owner = p_owner, lease_until = p_until
        WHERE tenant = p_tenant AND workflow_id = p_workflow_id AND run_id = p_run_id
          AND cmd = ANY (p_cmds) AND owner IS NULL
        RETURNING 1)
    SELECT count(*)::integer FROM leased
$$;
