"""Every SQL statement the PostgreSQL store sends: module-level constants, so that asyncpg
prepares each once per connection and reuses it (its statement cache is keyed by the text).

The hot operations (append, complete, commit, release, timer firing) are PL/pgSQL functions
created by the migrations (``migrations/0001_initial.sql``): one round trip each.
"""

from __future__ import annotations

from typing import Final

# ---- executions and history -----------------------------------------------------------------

EXECUTION_COLUMNS: Final = ("tenant, workflow_id, run_id, workflow, version, status, created_at, "
                            "updated_at, last_seq, state, data, result, error, task_error")
SELECT_EXECUTION: Final = (f"SELECT {EXECUTION_COLUMNS} FROM executions "
                           "WHERE tenant = $1 AND workflow_id = $2")
LIST_TENANT_EXECUTIONS: Final = (
    f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE tenant = $1 "
    "AND ($2::text IS NULL OR status = $2) ORDER BY created_at DESC, workflow_id DESC LIMIT $3")
LIST_ALL_EXECUTIONS: Final = (
    f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE ($1::text IS NULL OR status = $1) "
    "ORDER BY created_at DESC, workflow_id DESC LIMIT $2")

# $1 tenant, $2 workflow_id, $3 run_id, $4 workflow, $5 version, $6 now, $7 data, $8 result,
# $9 the WorkflowStarted body. Returns whether it created the execution.
CREATE_EXECUTION: Final = """
WITH created AS (
    INSERT INTO executions (tenant, workflow_id, run_id, workflow, version, status, created_at,
                            updated_at, last_seq, data, result)
    VALUES ($1, $2, $3, $4, $5, 'running', $6, $6, 1, $7, $8)
    ON CONFLICT (tenant, workflow_id) DO NOTHING
    RETURNING run_id
), started AS (
    INSERT INTO events (tenant, workflow_id, run_id, seq, body)
    SELECT $1, $2, run_id, 1, $9 FROM created
), task AS (
    INSERT INTO workflow_tasks (tenant, workflow_id, workflow, visible_at, dispatched_at)
    SELECT $1, $2, $4, $6, $6 FROM created
)
SELECT EXISTS (SELECT FROM created)
"""

SELECT_EVENTS: Final = (
    "SELECT body FROM events WHERE tenant = $1 AND workflow_id = $2 AND run_id = coalesce($3, "
    "(SELECT run_id FROM executions WHERE tenant = $1 AND workflow_id = $2)) AND seq > $4 "
    "ORDER BY seq")

APPEND: Final = "SELECT durable_append($1, $2, $3, $4, $5, $6)"

# ---- workflow tasks -------------------------------------------------------------------------

# ... and, when the commit succeeded and $24 is not NULL (a terminal status), NOTIFY channel
# $23 with payload $24 in the same transaction, so result waiters elsewhere wake at once.
COMMIT: Final = ("SELECT c.done, CASE WHEN c.done AND $24::text IS NOT NULL "
                 "THEN pg_notify($23, $24) END "
                 "FROM (SELECT durable_commit($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, "
                 "$13, $14, $15, $16, $17, $18, $19, $20, $21, $22) AS done) AS c")

# $1 owner, $2 lease_until, $3 now, $4 workflow names, $5 limit
CLAIM_WORKFLOW_TASKS: Final = """
UPDATE workflow_tasks AS w SET owner = $1, lease_until = $2, attempt = w.attempt + 1
FROM (SELECT tenant, workflow_id FROM workflow_tasks
      WHERE due <= $3 AND workflow = ANY ($4::text[])
      ORDER BY due LIMIT $5 FOR UPDATE SKIP LOCKED) AS picked
WHERE w.tenant = picked.tenant AND w.workflow_id = picked.workflow_id
RETURNING w.tenant, w.workflow_id, w.workflow, w.attempt, w.requested
"""

RELEASE: Final = "SELECT durable_release($1, $2, $3, $4, $5)"

# ---- action tasks ---------------------------------------------------------------------------

ACTION_COLUMNS: Final = ("tenant, workflow_id, run_id, cmd, name, args, kwargs, attempt, "
                         "visible_at, last_error")
_RETURNING_ACTION: Final = ("a.tenant, a.workflow_id, a.run_id, a.cmd, a.name, a.args, "
                            "a.kwargs, a.attempt, a.visible_at, a.last_error")

# A task whose lease expired was claimed before: its worker died, so that was an attempt.
# $1 owner, $2 lease_until, $3 now, $4 action names, $5 limit
CLAIM_ACTION_TASKS: Final = f"""
UPDATE action_tasks AS a
SET owner = $1, lease_until = $2, attempt = a.attempt + (a.owner IS NOT NULL)::integer
FROM (SELECT tenant, workflow_id, run_id, cmd FROM action_tasks
      WHERE due <= $3 AND name = ANY ($4::text[])
      ORDER BY due LIMIT $5 FOR UPDATE SKIP LOCKED) AS picked
WHERE a.tenant = picked.tenant AND a.workflow_id = picked.workflow_id AND a.run_id = picked.run_id
  AND a.cmd = picked.cmd
RETURNING {_RETURNING_ACTION}
"""

_ACTION_KEY: Final = "tenant = $2 AND workflow_id = $3 AND run_id = $4 AND cmd = $5"
EXTEND_ACTION: Final = (f"UPDATE action_tasks SET lease_until = $1 WHERE {_ACTION_KEY} "
                        "AND owner = $6 RETURNING true")
# dispatched again once due
RETRY_ACTION: Final = (
    "UPDATE action_tasks SET attempt = $1, visible_at = $6, last_error = $7, owner = NULL, "
    f"lease_until = 0, dispatched_at = 0 WHERE {_ACTION_KEY} AND owner = $8")
COMPLETE_ACTION: Final = "SELECT durable_complete_action($1, $2, $3, $4, $5, $6, $7, $8)"
PENDING_ACTIONS: Final = (f"SELECT {ACTION_COLUMNS} FROM action_tasks "
                          "WHERE tenant = $1 AND workflow_id = $2 ORDER BY cmd")

# ---- dispatch -------------------------------------------------------------------------------

# Lease the hinted tasks that are claimable now and hosted here; stale hints match nothing.
# $1 owner, $2 lease_until, $3 now, $4 hosted names, then the hints' key columns.
# Rows come back as (tenant, workflow_id, run_id, cmd, name, args, kwargs, attempt,
# visible_at, last_error, requested); workflow tasks with run_id '', cmd -1 and no args.
_CLAIM_WORKFLOW_REFS: Final = """
    UPDATE workflow_tasks AS w SET owner = $1, lease_until = $2, attempt = w.attempt + 1
    FROM (SELECT t.tenant, t.workflow_id FROM workflow_tasks AS t
          JOIN (SELECT DISTINCT * FROM unnest($5::text[], $6::text[])) AS h(tenant, workflow_id)
            ON t.tenant = h.tenant AND t.workflow_id = h.workflow_id
          WHERE t.due <= $3 AND t.workflow = ANY ($4::text[])
          FOR UPDATE OF t SKIP LOCKED) AS hinted
    WHERE w.tenant = hinted.tenant AND w.workflow_id = hinted.workflow_id
    RETURNING w.tenant, w.workflow_id, '' AS run_id, -1::bigint AS cmd, w.workflow AS name,
              NULL::bytea AS args, NULL::bytea AS kwargs, w.attempt,
              0::double precision AS visible_at, NULL::text AS last_error, w.requested"""
_CLAIM_ACTION_REFS: Final = f"""
    UPDATE action_tasks AS a
    SET owner = $1, lease_until = $2, attempt = a.attempt + (a.owner IS NOT NULL)::integer
    FROM (SELECT t.tenant, t.workflow_id, t.run_id, t.cmd FROM action_tasks AS t
          JOIN (SELECT DISTINCT * FROM unnest({{}}::text[], {{}}::text[], {{}}::text[],
                                              {{}}::bigint[])) AS h(tenant, workflow_id, run_id, cmd)
            ON t.tenant = h.tenant AND t.workflow_id = h.workflow_id AND t.run_id = h.run_id
           AND t.cmd = h.cmd
          WHERE t.due <= $3 AND t.name = ANY ({{}}::text[])
          FOR UPDATE OF t SKIP LOCKED) AS hinted
    WHERE a.tenant = hinted.tenant AND a.workflow_id = hinted.workflow_id
      AND a.run_id = hinted.run_id AND a.cmd = hinted.cmd
    RETURNING {_RETURNING_ACTION}, false AS requested"""

# Workflow hints only: $5/$6 (tenant, workflow_id).
CLAIM_WORKFLOW_REFS: Final = _CLAIM_WORKFLOW_REFS
# Action hints only: $4 action names, $5-$8 (tenant, workflow_id, run_id, cmd).
CLAIM_ACTION_REFS: Final = _CLAIM_ACTION_REFS.format("$5", "$6", "$7", "$8", "$4")
# Both: $4 workflow names, $5/$6 workflow hints, $7 action names, $8-$11 action hints.
CLAIM_REFS: Final = (
    f"WITH workflows AS ({_CLAIM_WORKFLOW_REFS}), "
    f"actions AS ({_CLAIM_ACTION_REFS.format('$8', '$9', '$10', '$11', '$7')}) "
    "SELECT * FROM workflows UNION ALL SELECT * FROM actions")

# The outbox: claimable tasks whose hint was published at or before $2 (now - older_than) are
# marked dispatched at $1 (now); up to $3 in all, workflow tasks first.
DISPATCH_DUE: Final = """
WITH workflows AS (
    UPDATE workflow_tasks AS w SET dispatched_at = $1
    FROM (SELECT tenant, workflow_id FROM workflow_tasks
          WHERE dispatched_at <= $2 AND due <= $1
          ORDER BY dispatched_at LIMIT $3 FOR UPDATE SKIP LOCKED) AS picked
    WHERE w.tenant = picked.tenant AND w.workflow_id = picked.workflow_id
    RETURNING w.tenant, w.workflow_id
), actions AS (
    UPDATE action_tasks AS a SET dispatched_at = $1
    FROM (SELECT tenant, workflow_id, run_id, cmd FROM action_tasks
          WHERE dispatched_at <= $2 AND due <= $1
          ORDER BY dispatched_at LIMIT greatest($3 - (SELECT count(*) FROM workflows), 0)
          FOR UPDATE SKIP LOCKED) AS picked
    WHERE a.tenant = picked.tenant AND a.workflow_id = picked.workflow_id
      AND a.run_id = picked.run_id AND a.cmd = picked.cmd
    RETURNING a.tenant, a.workflow_id, a.name, a.run_id, a.cmd
)
SELECT 'w' AS kind, tenant, workflow_id, '' AS name, '' AS run_id, -1::bigint AS cmd
FROM workflows
UNION ALL
SELECT 'a', tenant, workflow_id, name, run_id, cmd FROM actions
"""

# ---- timers and introspection ---------------------------------------------------------------

FIRE_DUE_TIMERS: Final = ("SELECT fired_tenant, fired_workflow_id "
                          "FROM durable_fire_due_timers($1, $2, $3, $4)")
PENDING_TIMERS: Final = ("SELECT tenant, workflow_id, run_id, cmd, fire_at FROM timers "
                         "WHERE tenant = $1 AND workflow_id = $2 ORDER BY cmd")
NEXT_WAKEUP: Final = ("SELECT least((SELECT min(fire_at) FROM timers), "
                      "(SELECT min(due) FROM action_tasks), (SELECT min(due) FROM workflow_tasks))")

# ---- requests (queries and updates) -------------------------------------------------------

REQUEST_COLUMNS: Final = "tenant, workflow_id, id, kind, name, args, created_at, status, result, error"
SUBMIT_REQUEST: Final = ("SELECT r_kind, r_name, r_args, r_created_at, r_status, r_result, "
                         "r_error, r_made FROM durable_submit_request($1, $2, $3, $4, $5, $6, $7)")
SELECT_REQUEST: Final = (f"SELECT {REQUEST_COLUMNS} FROM requests "
                         "WHERE tenant = $1 AND workflow_id = $2 AND id = $3")
PENDING_REQUESTS: Final = (f"SELECT {REQUEST_COLUMNS} FROM requests WHERE tenant = $1 "
                           "AND workflow_id = $2 AND status = 'pending' ORDER BY created_at, id")
NEEDS_REARM: Final = (
    "SELECT EXISTS (SELECT FROM requests WHERE tenant = $1 AND workflow_id = $2 AND id = $3 "
    "AND status = 'pending') AND NOT EXISTS (SELECT FROM workflow_tasks WHERE tenant = $1 "
    "AND workflow_id = $2)")
REARM_REQUEST: Final = "SELECT durable_rearm_request($1, $2, $3, $4)"
ANSWER_REQUESTS: Final = "SELECT durable_answer($1, $2, $3, $4, $5, $6, $7)"
DELETE_REQUEST: Final = "DELETE FROM requests WHERE tenant = $1 AND workflow_id = $2 AND id = $3"

# ---- migrations -----------------------------------------------------------------------------

# Serializes concurrent migrations of one database (the key is 'durable' in ASCII).
LOCK_MIGRATIONS: Final = "SELECT pg_advisory_xact_lock(28258139826203749)"
CREATE_SCHEMA_VERSION: Final = (
    "CREATE TABLE IF NOT EXISTS schema_version "
    "(version integer PRIMARY KEY, name text NOT NULL, applied_at double precision NOT NULL)")
SELECT_SCHEMA_VERSION: Final = "SELECT coalesce(max(version), 0) FROM schema_version"
INSERT_SCHEMA_VERSION: Final = ("INSERT INTO schema_version (version, name, applied_at) "
                                "VALUES ($1, $2, $3)")
