"""Every SQL statement the PostgreSQL store sends: module-level constants, so that asyncpg
prepares each once per connection and reuses it (its statement cache is keyed by the text).

The hot operations (append, complete, commit, release, timer firing) are PL/pgSQL functions
created by the migrations (``migrations/0001_initial.sql``): one round trip each.
"""

from __future__ import annotations

import functools
from typing import Final

from .._backlog import REANNOUNCE_AT_MOST

# ---- executions and history -----------------------------------------------------------------

EXECUTION_COLUMNS: Final = ("tenant, workflow_id, run_id, workflow, version, status, created_at, "
                            "updated_at, last_seq, state, data, result, error, task_error, "
                            "priority, fairness_key")
SELECT_EXECUTION: Final = (f"SELECT {EXECUTION_COLUMNS} FROM executions "
                           "WHERE tenant = $1 AND workflow_id = $2")
# Many at once: $1 tenants, $2 workflow ids; each row starts with the (1-based) position.
SELECT_EXECUTIONS: Final = (
    f"SELECT h.i, {', '.join('x.' + c for c in EXECUTION_COLUMNS.split(', '))} "
    "FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS h(tenant, workflow_id, i) "
    "JOIN executions AS x ON x.tenant = h.tenant AND x.workflow_id = h.workflow_id")
LIST_TENANT_EXECUTIONS: Final = (
    f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE tenant = $1 "
    "AND ($2::text IS NULL OR status = $2) ORDER BY created_at DESC, workflow_id DESC LIMIT $3")
LIST_ALL_EXECUTIONS: Final = (
    f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE ($1::text IS NULL OR status = $1) "
    "ORDER BY created_at DESC, workflow_id DESC LIMIT $2")
# Oldest first, for tools that walk every execution (durable replay); keyset paging.
# $1 tenant, $2 workflow, $3 status (each NULL: any), $4 created since (NULL: any), $5-$7 the
# (created_at, tenant, workflow_id) of the previous page's last row (NULL: none), $8 limit.
SCAN_EXECUTIONS: Final = (
    f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE ($1::text IS NULL OR tenant = $1) "
    "AND ($2::text IS NULL OR workflow = $2 OR right(workflow, length($2) + 1) = chr(30) || $2) "
    "AND ($3::text IS NULL OR status = $3) "
    "AND ($4::float8 IS NULL OR created_at >= $4) "
    "AND ($5::float8 IS NULL OR (created_at, tenant, workflow_id) > ($5, $6::text, $7::text)) "
    "ORDER BY created_at, tenant, workflow_id LIMIT $8")

# $1 tenant, $2 workflow_id, $3 run_id, $4 workflow, $5 version, $6 now, $7 data, $8 result,
# $9 the WorkflowStarted body, $10/$11 the owner and lease_until of an eager start (or NULL),
# $12 the priority, $13 the fairness key ('' for none), $14 the WorkflowStarted row's checksum
# (``first_checksum``). Returns whether it created it.
CREATE_EXECUTION: Final = """
WITH created AS (
    INSERT INTO executions (tenant, workflow_id, run_id, workflow, version, status, created_at,
                            updated_at, last_seq, data, result, priority, fairness_key)
    VALUES ($1, $2, $3, $4, $5, 'running', $6, $6, 1, $7, $8, $12, $13)
    ON CONFLICT (tenant, workflow_id) DO NOTHING
    RETURNING run_id
), started AS (
    INSERT INTO events (tenant, workflow_id, run_id, seq, body, checksum)
    SELECT $1, $2, run_id, 1, $9, $14 FROM created
), task AS (
    INSERT INTO workflow_tasks (tenant, workflow_id, workflow, visible_at, dispatched_at, owner,
                                lease_until, attempt, priority, fairness_key)
    SELECT $1, $2, $4, $6, $6, $10, coalesce($11, 0), (($10::text) IS NOT NULL)::integer, $12, $13
    FROM created
)
SELECT EXISTS (SELECT FROM created)
"""

# A history read: the execution's current run and last seq, then the rows of run $3 (NULL: the
# current one) from seq $4 on (the anchor the next ones are checked against, then those), each
# checked against the one before it by the database (durable_history, migration 0008); one
# row with NULL seq when the run has none, no row when there is no such execution.
_HISTORY_COLUMNS: Final = "x.run_id, x.last_seq, e.seq, e.body, e.intact"
SELECT_EVENTS: Final = (
    f"SELECT {_HISTORY_COLUMNS} FROM executions AS x "
    "LEFT JOIN LATERAL durable_history($1, $2, coalesce($3, x.run_id), $4) AS e ON true "
    "WHERE x.tenant = $1 AND x.workflow_id = $2 ORDER BY e.seq")

# The histories of many executions: $1 tenants, $2 workflow ids, $3 after_seqs, $4 run ids
# (NULL: the current run); rows are the (1-based) position, then as SELECT_EVENTS, in order.
SELECT_HISTORIES: Final = f"""
SELECT h.i, {_HISTORY_COLUMNS}
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[])
     WITH ORDINALITY AS h(tenant, workflow_id, after_seq, run_id, i)
JOIN executions AS x ON x.tenant = h.tenant AND x.workflow_id = h.workflow_id
LEFT JOIN LATERAL durable_history(h.tenant, h.workflow_id, coalesce(h.run_id, x.run_id),
                                  h.after_seq) AS e ON true
ORDER BY h.i, e.seq
"""

# Every run of an execution, whole: (run id, then as SELECT_EVENTS), by run and seq. The
# current run is listed even when it has no rows left.
VERIFY_HISTORY: Final = f"""
SELECT r.run_id, {_HISTORY_COLUMNS}
FROM executions AS x
CROSS JOIN LATERAL (SELECT v.run_id FROM events AS v
                    WHERE v.tenant = x.tenant AND v.workflow_id = x.workflow_id
                    UNION SELECT x.run_id) AS r
LEFT JOIN LATERAL durable_history(x.tenant, x.workflow_id, r.run_id, 0) AS e ON true
WHERE x.tenant = $1 AND x.workflow_id = $2
ORDER BY r.run_id, e.seq
"""

APPEND: Final = "SELECT durable_append($1, $2, $3, $4, $5, $6)"

# A start's next run under a reused workflow id (migration 0018), and the inputs it appends
# elsewhere (its old run's end to a parent): every row it writes locked first, in order.
RESTART: Final = "SELECT durable_restart($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
SIGNAL: Final = "SELECT durable_signal($1, $2, $3, $4, $5, $6, $7)"
LOCK_EXECUTIONS: Final = (
    "SELECT FROM executions WHERE (tenant, workflow_id) IN "
    "(SELECT * FROM unnest($1::text[], $2::text[])) ORDER BY tenant, workflow_id FOR UPDATE")

# ---- workflow tasks -------------------------------------------------------------------------

# Leases and dispatch marks commit without waiting for the WAL flush (one fsync less on the
# path of every task): if the database crashes and loses one, the task is merely claimable
# again (the lease owner's commit then finds it is no longer the owner and writes nothing),
# or re-announced. History, executions and task creation always commit synchronously.
_NO_FLUSH: Final = "(SELECT set_config('synchronous_commit', 'off', true)) AS no_flush"

# ... and, when the commit succeeded and $24 is not NULL (a terminal status), NOTIFY channel
# $23 with payload $24 in the same transaction, so result waiters elsewhere wake at once.
# The new timers ($15) are due on the committer's clock ($22, the commit's now); they are moved
# onto the store's clock: $25, or the server's when NULL (migration 0009).
# The lease of the actions it creates leased to its worker (migration 0025): none here,
# ``leasing`` puts them in.
_NO_LEASE: Final = "NULL::text, NULL::text, NULL::bigint[], 0::float8"
COMMIT: Final = ("SELECT c.done, CASE WHEN c.done AND $24::text IS NOT NULL "
                 "THEN pg_notify($23, $24) END "
                 "FROM (SELECT durable_commit($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, "
                 "$13, $14, durable_due_on_store_clock($15, $22, $25::float8), $16, $17, $18, "
                 f"$19, $20, $21, $22, {_NO_LEASE}) AS done) AS c")

# Claim order: higher priority first; then round-robin across partitions (tenant, fairness
# key): a partition's k-th oldest due task of a priority has turn k plus the number of the
# partition's tasks leased (running) now, and the lowest turns go first, so one backlog does
# not hold another partition's ready task back by more than a round, and a partition with a
# hundred tasks running waits while one with none has a task due; then due time. The cost
# does not grow with the backlog: _partitions walks the partitions that have due tasks (one
# index seek each), and each one's first $5 are locked through the (tenant, fairness_key,
# priority DESC, due) index (migration 0016).
def _partitions(table: str) -> str:
    return f"""WITH RECURSIVE parts AS (
  (SELECT tenant, fairness_key FROM {table} WHERE due <= $3
   ORDER BY tenant, fairness_key LIMIT 1)
  UNION ALL
  SELECT x.tenant, x.fairness_key FROM parts AS p CROSS JOIN LATERAL (
    SELECT y.tenant, y.fairness_key FROM {table} AS y
    WHERE (y.tenant, y.fairness_key) > (p.tenant, p.fairness_key) AND y.due <= $3
    ORDER BY y.tenant, y.fairness_key LIMIT 1) AS x)"""


def _running(table: str) -> str:
    """The partitions with due tasks, each with how many of its tasks are leased now (counted
    up to 1,000, which bounds the cost; not at all when a single partition has due tasks, as
    turns then change nothing)."""
    return (f"(SELECT p.tenant, p.fairness_key, CASE WHEN (SELECT count(*) FROM parts) > 1 "
            f"THEN (SELECT count(*) FROM (SELECT FROM {table} AS x "
            f"WHERE x.tenant = p.tenant AND x.fairness_key = p.fairness_key "
            f"AND x.owner IS NOT NULL AND x.lease_until > $3 LIMIT 1000) AS x) ELSE 0 END "
            f"AS running FROM parts AS p) AS n")


_TURN: Final = ("n.running + row_number() OVER (PARTITION BY c.tenant, c.fairness_key, "
                "c.priority ORDER BY c.due) AS turn")
_IN_PARTITION: Final = ("t.tenant = n.tenant AND t.fairness_key = n.fairness_key "
                        "AND t.due <= $3")
_CLAIM_ORDER: Final = "ORDER BY c.priority DESC, c.turn, c.due LIMIT $5"
# the claimed rows come back in that order (an UPDATE's RETURNING has none of its own)
_ORD: Final = "row_number() OVER (ORDER BY c.priority DESC, c.turn, c.due) AS ord"

# $1 owner, $2 lease_until, $3 now, $4 workflow names, $5 limit
CLAIM_WORKFLOW_TASKS: Final = f"""
{_partitions("workflow_tasks")}, claimed AS (
UPDATE workflow_tasks AS w SET owner = $1, lease_until = $2, attempt = w.attempt + 1
FROM (SELECT k.tenant, k.workflow_id, r.ord FROM workflow_tasks AS k JOIN (
        SELECT c.tenant, c.workflow_id, {_ORD} FROM (
          SELECT c.*, {_TURN} FROM {_running("workflow_tasks")} CROSS JOIN LATERAL (
            SELECT t.tenant, t.fairness_key, t.priority, t.due, t.workflow_id
            FROM workflow_tasks AS t WHERE {_IN_PARTITION} AND t.workflow = ANY ($4::text[])
            ORDER BY t.priority DESC, t.due LIMIT $5) AS c) AS c
        {_CLAIM_ORDER}) AS r ON r.tenant = k.tenant AND r.workflow_id = k.workflow_id
      WHERE k.due <= $3  -- rechecked on the row it locks: another claim may have leased it
      FOR UPDATE OF k SKIP LOCKED) AS picked, {_NO_FLUSH}
WHERE w.tenant = picked.tenant AND w.workflow_id = picked.workflow_id
RETURNING w.tenant, w.workflow_id, w.workflow, w.attempt, w.requested, picked.ord)
SELECT tenant, workflow_id, workflow, attempt, requested FROM claimed ORDER BY ord
"""

def _then(commit: str, call: str) -> str:
    """A commit statement (``COMMIT``, ``COMMIT_EFFECTS``, or one made by this) that, when the
    commit succeeded, also calls ``call`` in the same statement and transaction."""
    return commit.replace(" FROM (SELECT durable_", f", CASE WHEN c.done THEN {call} END "
                          "FROM (SELECT durable_", 1)


def leasing(commit: str, params: int) -> str:
    """A commit statement of ``params`` parameters that leases the new actions numbered in the
    next three parameters: the run, its cmds, lease_until (to the owner, $3: eager dispatch).
    ``durable_commit`` creates them leased (migration 0025); ``durable_commit_effects``'s
    commits lease them after it, when it succeeded (``durable_lease_actions``, 0017)."""
    lease = f"${params + 1}, $3, ${params + 2}::bigint[], ${params + 3}"
    if _NO_LEASE in commit:
        return commit.replace(_NO_LEASE, lease, 1)
    return _then(commit, f"durable_lease_actions($1, $2, {lease})")


@functools.cache
def settling(commit: str, params: int) -> str:
    """A commit statement of ``params`` parameters (any made above) that first records the
    action outcome it settles from the next four: the action's run and cmd, the event's body
    and its dedup key; the commit runs only if that did. ``durable_commit`` takes them
    (migration 0026: one lock and one update of the execution for both);
    ``durable_commit_effects`` runs after ``durable_settle`` (migration 0023)."""
    outcome = f"${params + 1}, ${params + 2}, ${params + 3}, ${params + 4}"
    if "(SELECT durable_commit(" in commit:
        return commit.replace(") AS done) AS c", f", {outcome}) AS done) AS c", 1)
    settle = f"durable_settle($1, $2, $3, $4::bigint - 1, {outcome})"
    return commit.replace("(SELECT durable_commit", f"(SELECT CASE WHEN {settle} THEN "
                          "durable_commit", 1).replace(" AS done) AS c",
                                                       " ELSE false END AS done) AS c", 1)


RELEASE: Final = "SELECT durable_release($1, $2, $3, $4, $5)"


def with_flow(commit: str, first: int) -> str:
    """A commit statement (``COMMIT``, ``COMMIT_EFFECTS``) that then, if it succeeded, writes
    what differs from the execution's priority and fairness key (``durable_flow``, migration
    0013) from parameters ``$first`` to ``$first + 6``: action cmds and their priorities,
    then the started executions' tenants, ids, run ids, priorities and fairness keys."""
    types = ("bigint[]", "integer[]", "text[]", "text[]", "text[]", "integer[]", "text[]")
    params = ", ".join(f"${first + i}::{t}" for i, t in enumerate(types))
    return _then(commit, f"durable_flow($1, $2, {params})")


# COMMIT, then durable_flow with $26-$32
COMMIT_FLOW: Final = with_flow(COMMIT, 26)

# ---- action tasks ---------------------------------------------------------------------------

ACTION_COLUMNS: Final = ("tenant, workflow_id, run_id, cmd, name, args, kwargs, attempt, "
                         "visible_at, last_error, priority, fairness_key")
_RETURNING_ACTION: Final = ("a.tenant, a.workflow_id, a.run_id, a.cmd, a.name, a.args, "
                            "a.kwargs, a.attempt, a.visible_at, a.last_error, a.priority, "
                            "a.fairness_key")

# A task whose lease expired was claimed before: its worker died, so that was an attempt.
# In the order of CLAIM_WORKFLOW_TASKS.
# $1 owner, $2 lease_until, $3 now, $4 action names, $5 limit
CLAIM_ACTION_TASKS: Final = f"""
{_partitions("action_tasks")}, claimed AS (
UPDATE action_tasks AS a
SET owner = $1, lease_until = $2, attempt = a.attempt + (a.owner IS NOT NULL)::integer
FROM (SELECT k.tenant, k.workflow_id, k.run_id, k.cmd, r.ord FROM action_tasks AS k JOIN (
        SELECT c.tenant, c.workflow_id, c.run_id, c.cmd, {_ORD} FROM (
          SELECT c.*, {_TURN} FROM {_running("action_tasks")} CROSS JOIN LATERAL (
            SELECT t.tenant, t.fairness_key, t.priority, t.due, t.workflow_id, t.run_id, t.cmd
            FROM action_tasks AS t WHERE {_IN_PARTITION} AND t.name = ANY ($4::text[])
            ORDER BY t.priority DESC, t.due LIMIT $5) AS c) AS c
        {_CLAIM_ORDER}) AS r ON r.tenant = k.tenant AND r.workflow_id = k.workflow_id
          AND r.run_id = k.run_id AND r.cmd = k.cmd
      WHERE k.due <= $3  -- rechecked on the row it locks: another claim may have leased it
      FOR UPDATE OF k SKIP LOCKED) AS picked, {_NO_FLUSH}
WHERE a.tenant = picked.tenant AND a.workflow_id = picked.workflow_id AND a.run_id = picked.run_id
  AND a.cmd = picked.cmd
RETURNING {_RETURNING_ACTION}, picked.ord)
SELECT {ACTION_COLUMNS} FROM claimed ORDER BY ord
"""

_ACTION_KEY: Final = "tenant = $2 AND workflow_id = $3 AND run_id = $4 AND cmd = $5"
HAND_OFF_ACTION: Final = ("UPDATE action_tasks SET owner = $1, lease_until = $6 "
                          "WHERE tenant = $2 AND workflow_id = $3 AND run_id = $4 AND cmd = $5 "
                          "AND owner IS NOT DISTINCT FROM $7 RETURNING true")
EXTEND_ACTION: Final = (f"UPDATE action_tasks SET lease_until = $1 FROM {_NO_FLUSH} "
                        f"WHERE {_ACTION_KEY} "
                        "AND owner IS NOT DISTINCT FROM $6 RETURNING true")
# dispatched again once due
RETRY_ACTION: Final = (
    "UPDATE action_tasks SET attempt = $1, visible_at = $6, last_error = $7, owner = NULL, "
    f"lease_until = 0, dispatched_at = 0 WHERE {_ACTION_KEY} "
    "AND owner IS NOT DISTINCT FROM $8")
COMPLETE_ACTION: Final = "SELECT durable_complete_action($1, $2, $3, $4, $5, $6, $7, $8)"
PENDING_ACTIONS: Final = (f"SELECT {ACTION_COLUMNS} FROM action_tasks "
                          "WHERE tenant = $1 AND workflow_id = $2 ORDER BY cmd")

# ---- dispatch -------------------------------------------------------------------------------

# Lease the hinted tasks that are claimable now and hosted here; stale hints match nothing.
# $1 owner, $2 lease_until, $3 now, $4 hosted names, then the hints' key columns.

# Workflow hints: $5 tenants, $6 workflow ids, $7 after_seqs. Each claimed task comes back
# with the rows of its current run from its after_seq on (NULL: none), in one round trip:
# rows (tenant, workflow_id, workflow, attempt, after_seq, requested, then as SELECT_EVENTS),
# ordered by task and seq, with seq NULL for a task that has no such rows.
CLAIM_WORKFLOW_REFS: Final = f"""
WITH claimed AS (
    UPDATE workflow_tasks AS w SET owner = $1, lease_until = $2, attempt = w.attempt + 1
    FROM (SELECT t.tenant, t.workflow_id, h.after_seq FROM workflow_tasks AS t
          JOIN (SELECT DISTINCT * FROM unnest($5::text[], $6::text[], $7::bigint[]))
               AS h(tenant, workflow_id, after_seq)
            ON t.tenant = h.tenant AND t.workflow_id = h.workflow_id
          WHERE t.due <= $3 AND t.workflow = ANY ($4::text[])
          FOR UPDATE OF t SKIP LOCKED) AS hinted, {_NO_FLUSH}
    WHERE w.tenant = hinted.tenant AND w.workflow_id = hinted.workflow_id
    RETURNING w.tenant, w.workflow_id, w.workflow, w.attempt, hinted.after_seq, w.requested
)
SELECT c.tenant, c.workflow_id, c.workflow, c.attempt, c.after_seq, c.requested,
       x.run_id, x.last_seq, e.seq, e.body, e.intact
FROM claimed AS c
LEFT JOIN executions AS x ON x.tenant = c.tenant AND x.workflow_id = c.workflow_id
LEFT JOIN LATERAL durable_history(c.tenant, c.workflow_id, x.run_id, c.after_seq) AS e ON true
ORDER BY c.tenant, c.workflow_id, e.seq
"""
# Action hints: $4 action names, $5-$8 (tenant, workflow_id, run_id, cmd).
CLAIM_ACTION_REFS: Final = f"""
UPDATE action_tasks AS a
SET owner = $1, lease_until = $2, attempt = a.attempt + (a.owner IS NOT NULL)::integer
FROM (SELECT t.tenant, t.workflow_id, t.run_id, t.cmd FROM action_tasks AS t
      JOIN (SELECT DISTINCT * FROM unnest($5::text[], $6::text[], $7::text[], $8::bigint[]))
           AS h(tenant, workflow_id, run_id, cmd)
        ON t.tenant = h.tenant AND t.workflow_id = h.workflow_id AND t.run_id = h.run_id
       AND t.cmd = h.cmd
      WHERE t.due <= $3 AND t.name = ANY ($4::text[])
      FOR UPDATE OF t SKIP LOCKED) AS hinted, {_NO_FLUSH}
WHERE a.tenant = hinted.tenant AND a.workflow_id = hinted.workflow_id
  AND a.run_id = hinted.run_id AND a.cmd = hinted.cmd
RETURNING {_RETURNING_ACTION}
"""

# The outbox: claimable tasks whose hint was published at or before $2 (now - older_than) are
# marked dispatched at $1 (now); up to $3 in all, workflow tasks first; their hints come out
# higher priority first (then workflow tasks first).
# Each announced task is marked as ``_backlog.announced_mark`` says ($1 - $2: older_than).
# The rows picked are updated by ``ctid`` (a TID scan): a join back to the table by key was
# planned as a hash join over a sequential scan of it whenever the planner priced random index
# reads above reading the whole queue (its estimate of the rows picked, of a LIMIT with a
# parameter, is a guess): 12-16 ms of a 22-30 ms pass with 60,000 tasks queued. A row the
# statement locked is not changed by anyone else before it ends; one whose newest version the
# statement's snapshot does not see is left for the next pass.
_ANNOUNCED: Final = f"$1 + greatest(0, least($1 - {{}}.due, {REANNOUNCE_AT_MOST!r}) - ($1 - $2))"
DISPATCH_DUE: Final = f"""
WITH workflows AS (
    UPDATE workflow_tasks AS w SET dispatched_at = {_ANNOUNCED.format("w")}
    FROM {_NO_FLUSH}
    WHERE w.ctid = ANY (ARRAY(
        SELECT ctid FROM workflow_tasks WHERE dispatched_at <= $2 AND due <= $1
        ORDER BY dispatched_at LIMIT $3 FOR UPDATE SKIP LOCKED))
    RETURNING w.tenant, w.workflow_id, w.workflow, w.priority
), actions AS (
    UPDATE action_tasks AS a SET dispatched_at = {_ANNOUNCED.format("a")}
    WHERE a.ctid = ANY (ARRAY(
        SELECT ctid FROM action_tasks WHERE dispatched_at <= $2 AND due <= $1
        ORDER BY dispatched_at LIMIT greatest($3 - (SELECT count(*) FROM workflows), 0)
        FOR UPDATE SKIP LOCKED))
    RETURNING a.tenant, a.workflow_id, a.name, a.run_id, a.cmd, a.priority
)
SELECT kind, tenant, workflow_id, name, run_id, cmd FROM (
    SELECT 'w' AS kind, tenant, workflow_id, workflow AS name, '' AS run_id, -1::bigint AS cmd,
           priority FROM workflows
    UNION ALL
    SELECT 'a', tenant, workflow_id, name, run_id, cmd, priority FROM actions) AS d
ORDER BY d.priority DESC, d.kind DESC
"""

# The queue tables, as the statements resolve them (the search path), that this role owns:
# only their owner may ANALYZE or REINDEX them (a tenant's role may not, and PostgreSQL would
# skip its ANALYZE with a warning).
_OWN_QUEUES: Final = """
SELECT c.relname::text FROM pg_class AS c JOIN pg_stat_user_tables AS s ON s.relid = c.oid
WHERE c.oid = ANY (ARRAY[to_regclass('workflow_tasks'), to_regclass('action_tasks'),
                         to_regclass('timers')])
  AND pg_has_role(c.relowner, 'USAGE')"""
# ``refresh_statistics``: those whose live rows grew past four times what the planner last
# counted (``reltuples``, -1 before the first ANALYZE) and by 1,000 at least, or that it counted
# (all but) empty and now hold 50 rows or more (a queue is empty whenever its workers keep up:
# autovacuum then records it so, and the next backlog finds plans made for none). The history
# and executions only grow, and autovacuum follows that.
GROWN_TABLES: Final = f"""{_OWN_QUEUES}
  AND (s.n_live_tup > greatest(4 * c.reltuples, c.reltuples + 1000)
       OR c.reltuples BETWEEN 0 AND 10 AND s.n_live_tup >= 50)
"""

# ``rebuild_bloated_indexes``: those of the queue tables with an index of more than 1 MiB
# that is over ten times the size its live rows need (~100 entries a page); and the indexes a
# ``REINDEX ... CONCURRENTLY`` left invalid when it was interrupted (named ``*_ccnew``, or
# ``*_ccold`` after the swap), which every write would still keep up to date.
BLOATED_TABLES: Final = f"""{_OWN_QUEUES}
  AND EXISTS (SELECT FROM pg_index AS i WHERE i.indrelid = c.oid
              AND pg_relation_size(i.indexrelid) / current_setting('block_size')::integer
                  > greatest(128, 10 * (s.n_live_tup / 100 + 1)))
"""
LEFT_HALF_MADE: Final = """
SELECT x.relname::text FROM pg_index AS i JOIN pg_class AS x ON x.oid = i.indexrelid
WHERE i.indrelid = to_regclass($1) AND NOT i.indisvalid
  AND (x.relname LIKE '%\\_ccnew%' OR x.relname LIKE '%\\_ccold%')
"""
REBUILD_LOCK: Final = 0x64757261626C65  # pg_try_advisory_lock key: one rebuild at a time

# ---- timers and introspection ---------------------------------------------------------------

# $1 the caller's now, $2 limit, $3 the TimerFired's head (up to its seq), $4 the store's time
# (NULL: the server's clock; migration 0009).
FIRE_DUE_TIMERS: Final = ("SELECT fired_tenant, fired_workflow_id "
                          "FROM durable_fire_timers($1, $2, $3, $4::float8)")
PENDING_TIMERS: Final = ("SELECT tenant, workflow_id, run_id, cmd, fire_at FROM timers "
                         "WHERE tenant = $1 AND workflow_id = $2 ORDER BY cmd")
# $1 the caller's now, $2 the store's time (NULL: the server's clock): timers are due on the
# store's clock, the rest on the callers'.
# Ready tasks nobody holds by kind and route ($1: now), timers due ($2: the store's time).
BACKLOG: Final = (
    "SELECT 'workflow', workflow, count(*) FROM workflow_tasks "
    "WHERE due <= $1 AND owner IS NULL GROUP BY workflow "
    "UNION ALL SELECT 'action', name, count(*) FROM action_tasks "
    "WHERE due <= $1 AND owner IS NULL GROUP BY name "
    "UNION ALL SELECT 'timers', '', count(*) FROM timers "
    "WHERE fire_at <= durable_store_time($2::float8)")
NEXT_TIMER: Final = ("SELECT (SELECT min(fire_at) FROM timers) "
                     "- durable_store_time($2::float8) + $1::float8")
NEXT_WAKEUP: Final = (f"SELECT least(({NEXT_TIMER}), "
                      "(SELECT min(due) FROM action_tasks), (SELECT min(due) FROM workflow_tasks), "
                      "(SELECT min(due) FROM schedules))")

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
FINISH: Final = "SELECT durable_finish($1, $2, $3, $4)"
DELETE_REQUEST: Final = "DELETE FROM requests WHERE tenant = $1 AND workflow_id = $2 AND id = $3"

# ---- time travel: pages of history, snapshots ---------------------------------------------

# SELECT_EVENTS, at most $5 rows after the anchor
SELECT_EVENTS_PAGE: Final = SELECT_EVENTS + " LIMIT $5 + ($4 > 0)::integer"
_SNAPSHOT_COLUMNS: Final = ("tenant, workflow_id, run_id, seq, time, status, state, data, "
                            "suspended_at")
SAVE_SNAPSHOT: Final = (
    f"INSERT INTO snapshots ({_SNAPSHOT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
    "ON CONFLICT (tenant, workflow_id, run_id, seq) DO UPDATE SET time = excluded.time, "
    "status = excluded.status, state = excluded.state, data = excluded.data, "
    "suspended_at = excluded.suspended_at")
# Keep the $4 newest of the run: drop those older than the $4-th newest.
PRUNE_SNAPSHOTS: Final = (
    "DELETE FROM snapshots WHERE tenant = $1 AND workflow_id = $2 AND run_id = $3 AND seq < "
    "(SELECT seq FROM snapshots WHERE tenant = $1 AND workflow_id = $2 AND run_id = $3 "
    "ORDER BY seq DESC LIMIT 1 OFFSET $4 - 1)")
FIND_SNAPSHOT: Final = (
    f"SELECT {_SNAPSHOT_COLUMNS} FROM snapshots WHERE tenant = $1 AND workflow_id = $2 "
    "AND run_id = $3 AND ($4::bigint IS NULL OR seq <= $4) "
    "AND ($5::double precision IS NULL OR time <= $5) ORDER BY seq DESC LIMIT 1")

# ---- migrations -----------------------------------------------------------------------------

# Serializes concurrent migrations of one database (the key is 'durable' in ASCII).
LOCK_MIGRATIONS: Final = "SELECT pg_advisory_xact_lock(28258139826203749)"
CREATE_SCHEMA_VERSION: Final = (
    "CREATE TABLE IF NOT EXISTS schema_version "
    "(version integer PRIMARY KEY, name text NOT NULL, applied_at double precision NOT NULL)")
SELECT_SCHEMA_VERSION: Final = "SELECT coalesce(max(version), 0) FROM schema_version"
SELECT_SCHEMA_VERSIONS: Final = "SELECT version, name FROM schema_version"
RENUMBER_SCHEMA_VERSION: Final = ("UPDATE schema_version SET version = $2, name = $3 "
                                  "WHERE version = $1")
INSERT_SCHEMA_VERSION: Final = ("INSERT INTO schema_version (version, name, applied_at) "
                                "VALUES ($1, $2, $3)")
