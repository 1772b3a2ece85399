"""The SQL of the SQLite store's core (executions, history, tasks, timers, dispatch,
migrations) as module-level constants: ``sqlite3`` caches prepared statements by their text.
Requests, schedules and snapshots keep theirs beside their code, as in the PostgreSQL store."""

from __future__ import annotations

from typing import Final

EXECUTION_COLUMNS: Final = ("tenant, workflow_id, run_id, workflow, version, status, created_at, "
                            "updated_at, last_seq, state, data, result, error, task_error, "
                            "priority, fairness_key")
SELECT_EXECUTION: Final = (f"SELECT {EXECUTION_COLUMNS} FROM executions "
                           "WHERE tenant = ? AND workflow_id = ?")
LIST_TENANT_EXECUTIONS: Final = (
    f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE tenant = ?1 "
    "AND (?2 IS NULL OR status = ?2) ORDER BY created_at DESC, workflow_id DESC LIMIT ?3")
LIST_ALL_EXECUTIONS: Final = (
    f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE (?1 IS NULL OR status = ?1) "
    "ORDER BY created_at DESC, workflow_id DESC LIMIT ?2")
SCAN_EXECUTIONS: Final = (
    f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE (?1 IS NULL OR tenant = ?1) "
    "AND (?2 IS NULL OR workflow = ?2 OR substr(workflow, -length(?2) - 1) = char(30) || ?2) "
    "AND (?3 IS NULL OR status = ?3) "
    "AND (?4 IS NULL OR created_at >= ?4) "
    "AND (?5 IS NULL OR (created_at, tenant, workflow_id) > (?5, ?6, ?7)) "
    "ORDER BY created_at, tenant, workflow_id LIMIT ?8")
INSERT_EXECUTION: Final = (f"INSERT INTO executions ({EXECUTION_COLUMNS}) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
SELECT_HEAD: Final = ("SELECT run_id, workflow, status, last_seq FROM executions "
                      "WHERE tenant = ? AND workflow_id = ?")
# (run_id, last_seq, the task's owner, status, whether a workflow task is pending)
SELECT_COMMIT_HEAD: Final = (
    "SELECT e.run_id, e.last_seq, w.owner, e.status, w.workflow_id IS NOT NULL "
    "FROM executions AS e LEFT JOIN workflow_tasks AS w "
    "ON w.tenant = e.tenant AND w.workflow_id = e.workflow_id "
    "WHERE e.tenant = ? AND e.workflow_id = ?")
ADVANCE_EXECUTION: Final = ("UPDATE executions SET last_seq = ?, updated_at = ? "
                            "WHERE tenant = ? AND workflow_id = ?")
UPDATE_EXECUTION: Final = (
    "UPDATE executions SET last_seq = ?, updated_at = ?, status = ?, state = ?, data = ?, "
    "result = ?, error = ?, task_error = NULL WHERE tenant = ? AND workflow_id = ?")
SET_TASK_ERROR: Final = "UPDATE executions SET task_error = ? WHERE tenant = ? AND workflow_id = ?"
# continue-as-new: the execution switches to its next run; created_at stays
NEW_RUN: Final = (
    "UPDATE executions SET run_id = ?, workflow = ?, version = ?, status = 'running', "
    "updated_at = ?, last_seq = 1, state = NULL, data = ?, result = ?, error = NULL, "
    "task_error = NULL WHERE tenant = ? AND workflow_id = ?")
# A start's next run under a reused workflow id: as NEW_RUN, and it is created now with the
# start's priority and fairness key.
RESTART_RUN: Final = (
    "UPDATE executions SET run_id = ?1, workflow = ?2, version = ?3, status = 'running', "
    "created_at = ?4, updated_at = ?4, last_seq = 1, state = NULL, data = ?5, result = ?6, "
    "error = NULL, task_error = NULL, priority = ?7, fairness_key = ?8 "
    "WHERE tenant = ?9 AND workflow_id = ?10")

# A run's rows from seq ?4 on (the anchor a read checks the next ones against, then those);
# ?5 = -1: no limit. A body is read as bytes whatever was stored there (damaged, it may be
# text, which the driver would fail to decode before the checksum could say where).
SELECT_ROWS: Final = (
    "SELECT seq, CAST(body AS BLOB), checksum FROM events WHERE tenant = ?1 "
    "AND workflow_id = ?2 AND run_id = ?3 AND seq >= ?4 ORDER BY seq LIMIT ?5")
SELECT_CHECKSUM: Final = ("SELECT checksum FROM events WHERE tenant = ? AND workflow_id = ? "
                          "AND run_id = ? AND seq = ?")
SELECT_RUN_IDS: Final = ("SELECT DISTINCT run_id FROM events WHERE tenant = ? AND workflow_id = ? "
                         "ORDER BY run_id")
INSERT_EVENT: Final = (
    "INSERT INTO events (tenant, workflow_id, run_id, seq, dedup, body, checksum) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)")
# Invariant: a dedup key is recorded at most once per run (the unique index decides).
INSERT_INPUT: Final = (INSERT_EVENT + " ON CONFLICT (tenant, workflow_id, run_id, dedup) "
                       "WHERE dedup IS NOT NULL DO NOTHING")
DELETE_EVENTS_FROM: Final = ("DELETE FROM events WHERE tenant = ? AND workflow_id = ? "
                             "AND run_id = ? AND seq >= ?")

# A task made runnable counts as dispatched at that time: its creator publishes the hint.
# It takes its execution's priority and fairness key (migration 0009).
TASK_FLOW: Final = (
    "coalesce((SELECT priority FROM executions WHERE tenant = ?1 AND workflow_id = ?2), 0), "
    "coalesce((SELECT fairness_key FROM executions WHERE tenant = ?1 AND workflow_id = ?2), '')")
UPSERT_WORKFLOW_TASK: Final = (
    "INSERT INTO workflow_tasks (tenant, workflow_id, workflow, visible_at, dispatched_at, "
    f"priority, fairness_key) VALUES (?1, ?2, ?3, ?4, ?4, {TASK_FLOW}) "
    "ON CONFLICT (tenant, workflow_id) DO UPDATE SET "
    "visible_at = min(visible_at, excluded.visible_at), dispatched_at = excluded.dispatched_at")
DELETE_WORKFLOW_TASK: Final = "DELETE FROM workflow_tasks WHERE tenant = ? AND workflow_id = ?"
# Claim order: higher priority first; then round-robin across partitions (tenant, fairness
# key), counting each one's running tasks in its turn; then due time (``_tasks.claim_rows``,
# as the PostgreSQL store's claims). The cost does not grow with the backlog: the partitions
# with due tasks are found one index seek each, then each one's first through the
# (tenant, fairness_key, priority DESC, due) index (migration 0012).
def _next_partition(table: str) -> str:  # ?1 now, ?2/?3 the partition before (or '', '')
    return (f"SELECT tenant, fairness_key FROM {table} "
            f"WHERE (tenant, fairness_key) > (?2, ?3) AND due <= ?1 "
            f"ORDER BY tenant, fairness_key LIMIT 1")


def _running(table: str) -> str:  # how many of a partition's tasks are leased, up to 1,000
    return (f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE tenant = ? AND fairness_key = ? "
            f"AND owner IS NOT NULL AND lease_until > ? LIMIT 1000)")


NEXT_WORKFLOW_PARTITION: Final = _next_partition("workflow_tasks")
RUNNING_WORKFLOW_TASKS: Final = _running("workflow_tasks")
# ?1 now, ?2 routes (JSON), ?3 limit, ?4/?5 the partition; the rows end with priority and due
SELECT_DUE_WORKFLOW_TASKS: Final = (
    "SELECT tenant, workflow_id, workflow, attempt, requested, priority, due "
    "FROM workflow_tasks WHERE tenant = ?4 AND fairness_key = ?5 AND due <= ?1 "
    "AND workflow IN (SELECT value FROM json_each(?2)) ORDER BY priority DESC, due LIMIT ?3")
LEASE_WORKFLOW_TASK: Final = (
    "UPDATE workflow_tasks SET owner = ?, lease_until = ?, attempt = attempt + 1 "
    "WHERE tenant = ? AND workflow_id = ?")
RELEASE_WORKFLOW_TASK: Final = (  # dispatched again once due
    "UPDATE workflow_tasks SET owner = NULL, visible_at = ?, dispatched_at = 0 "
    "WHERE tenant = ? AND workflow_id = ? AND owner = ?")

ACTION_COLUMNS: Final = ("tenant, workflow_id, run_id, cmd, name, args, kwargs, attempt, "
                         "visible_at, last_error, priority, fairness_key")
UPSERT_ACTION: Final = (  # owner NULL and lease_until 0 unless created leased (eager)
    f"INSERT OR REPLACE INTO action_tasks ({ACTION_COLUMNS}, dispatched_at, owner, lease_until) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
NEXT_ACTION_PARTITION: Final = _next_partition("action_tasks")
RUNNING_ACTIONS: Final = _running("action_tasks")
SELECT_DUE_ACTIONS: Final = (  # as SELECT_DUE_WORKFLOW_TASKS
    f"SELECT {ACTION_COLUMNS}, owner IS NOT NULL, priority, due FROM action_tasks "
    "WHERE tenant = ?4 AND fairness_key = ?5 AND due <= ?1 "
    "AND name IN (SELECT value FROM json_each(?2)) ORDER BY priority DESC, due LIMIT ?3")
ACTION_KEY: Final = "tenant = ? AND workflow_id = ? AND run_id = ? AND cmd = ?"
LEASE_ACTION: Final = (f"UPDATE action_tasks SET owner = ?, lease_until = ?, attempt = ? "
                       f"WHERE {ACTION_KEY}")
HAND_OFF_ACTION: Final = (f"UPDATE action_tasks SET owner = ?, lease_until = ? "
                          f"WHERE {ACTION_KEY} AND owner = ?")
EXTEND_ACTION: Final = (f"UPDATE action_tasks SET lease_until = ? "
                        f"WHERE {ACTION_KEY} AND owner = ?")
RETRY_ACTION: Final = (  # dispatched again once due
    "UPDATE action_tasks SET attempt = ?, visible_at = ?, last_error = ?, owner = NULL, "
    f"lease_until = 0, dispatched_at = 0 WHERE {ACTION_KEY} AND owner = ?")
DELETE_ACTION: Final = f"DELETE FROM action_tasks WHERE {ACTION_KEY}"
DELETE_HELD_ACTION: Final = f"DELETE FROM action_tasks WHERE {ACTION_KEY} AND owner = ?"
DELETE_RUN_ACTIONS: Final = ("DELETE FROM action_tasks "
                             "WHERE tenant = ? AND workflow_id = ? AND run_id = ?")
PENDING_ACTIONS: Final = (f"SELECT {ACTION_COLUMNS} FROM action_tasks "
                          "WHERE tenant = ? AND workflow_id = ? ORDER BY cmd")

UPSERT_TIMER: Final = ("INSERT OR REPLACE INTO timers (tenant, workflow_id, run_id, cmd, fire_at) "
                       "VALUES (?, ?, ?, ?, ?)")
DELETE_TIMER: Final = ("DELETE FROM timers "
                       "WHERE tenant = ? AND workflow_id = ? AND run_id = ? AND cmd = ?")
DELETE_RUN_TIMERS: Final = "DELETE FROM timers WHERE tenant = ? AND workflow_id = ? AND run_id = ?"
SELECT_DUE_TIMERS: Final = ("SELECT tenant, workflow_id, run_id, cmd FROM timers "
                            "WHERE fire_at <= ? ORDER BY fire_at LIMIT ?")
PENDING_TIMERS: Final = ("SELECT tenant, workflow_id, run_id, cmd, fire_at FROM timers "
                         "WHERE tenant = ? AND workflow_id = ? ORDER BY cmd")

# claim_refs: one hinted task, if it is claimable now (?3 / ?5 is now).
SELECT_HINTED_WORKFLOW_TASK: Final = (
    "SELECT workflow, attempt, requested FROM workflow_tasks "
    "WHERE tenant = ?1 AND workflow_id = ?2 AND due <= ?3 AND visible_at <= ?3")
SELECT_HINTED_ACTION: Final = (
    f"SELECT {ACTION_COLUMNS}, owner IS NOT NULL FROM action_tasks "
    "WHERE tenant = ?1 AND workflow_id = ?2 AND run_id = ?3 AND cmd = ?4 "
    "AND due <= ?5 AND visible_at <= ?5")

# dispatch_due: claimable tasks announced at or before ?1 (now - older_than); ?2 is now.
SELECT_UNDISPATCHED_WORKFLOW_TASKS: Final = (
    "SELECT tenant, workflow_id, workflow, priority, due FROM workflow_tasks "
    "WHERE dispatched_at <= ?1 AND due <= ?2 "
    "AND visible_at <= ?2 ORDER BY dispatched_at LIMIT ?3")
SELECT_UNDISPATCHED_ACTIONS: Final = (
    "SELECT tenant, workflow_id, name, run_id, cmd, priority, due FROM action_tasks "
    "WHERE dispatched_at <= ?1 "
    "AND due <= ?2 AND visible_at <= ?2 ORDER BY dispatched_at LIMIT ?3")
MARK_WORKFLOW_TASK_DISPATCHED: Final = ("UPDATE workflow_tasks SET dispatched_at = ? "
                                        "WHERE tenant = ? AND workflow_id = ?")
MARK_ACTION_DISPATCHED: Final = f"UPDATE action_tasks SET dispatched_at = ? WHERE {ACTION_KEY}"

# Ready tasks nobody holds by kind and route (?1, ?2: now), timers due (?3: the store's now).
BACKLOG: Final = (
    "SELECT 'workflow', workflow, count(*) FROM workflow_tasks "
    "WHERE due <= ?1 AND owner IS NULL GROUP BY workflow "
    "UNION ALL SELECT 'action', name, count(*) FROM action_tasks "
    "WHERE due <= ?2 AND owner IS NULL GROUP BY name "
    "UNION ALL SELECT 'timers', '', count(*) FROM timers WHERE fire_at <= ?3")

NEXT_TIMER: Final = "SELECT min(fire_at) + ? AS t FROM timers"
NEXT_WAKEUP: Final = (
    f"SELECT min(t) FROM ({NEXT_TIMER} "
    "UNION ALL SELECT min(due) FROM action_tasks UNION ALL SELECT min(due) FROM workflow_tasks "
    "UNION ALL SELECT min(due) FROM schedules)")

CREATE_SCHEMA_VERSION: Final = (
    "CREATE TABLE IF NOT EXISTS schema_version "
    "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)")
SELECT_SCHEMA_VERSION: Final = "SELECT coalesce(max(version), 0) FROM schema_version"
SELECT_SCHEMA_VERSIONS: Final = "SELECT version, name FROM schema_version"
RENUMBER_SCHEMA_VERSION: Final = "UPDATE schema_version SET version = ?, name = ? WHERE version = ?"
INSERT_SCHEMA_VERSION: Final = ("INSERT INTO schema_version (version, name, applied_at) "
                                "VALUES (?, ?, ?)")
