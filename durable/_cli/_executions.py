"""``durable start | send | query | update | cancel | list | show``: one execution at a time.

Each command opens a client on the store (``start``, ``send``, ``query``, ``update`` and
``cancel`` publish through ``--redis`` when given; ``list`` and ``show`` only read), does one
thing through the public API and prints its result: an id, a line, JSON, a table or a timeline.
"""

from __future__ import annotations

import argparse
import sys
import time

from .. import _pages as pages
from .._named import named
from .._pages import LIST_STATUSES, parse_when
from .._stores._listing import display_status
from ..errors import HistoryError, UsageError, WorkflowClosedError
from . import _render
from ._options import Commands, add_module_option, json_value, json_values
from ._targets import connect, module_names, resolve_workflow, times, wants_json
from ._timetravel import AT_HELP, show_at

__all__ = ["add_commands"]

def add_commands(commands: Commands) -> None:
    """Register the commands on one execution (and ``list``)."""
    _add_start(commands)
    _add_send(commands)
    _add_query(commands)
    _add_update(commands)
    _add_list(commands)
    _add_show(commands)
    commands.add("cancel", _cancel, "ask an execution to stop").add_argument("id", metavar="ID")


# ---- start, send, cancel --------------------------------------------------------------------


def _add_start(commands: Commands) -> None:
    p = commands.add("start", _start, "start a workflow execution and print its id",
                     epilog="example: durable start InvoiceApproval '\"inv-1\"' 500 --id inv-1 "
                     "--module examples.invoice")
    p.add_argument("workflow", metavar="WORKFLOW", help="registered workflow name")
    p.add_argument("args", metavar="ARG", nargs="*", help="arguments, one JSON value each")
    p.add_argument("--id", help="workflow id (default: a new UUID)")
    p.add_argument("--priority", type=int, default=0,
                   help="its tasks' priority: higher first (default 0)")
    p.add_argument("--fairness-key", metavar="KEY",
                   help="ready tasks take turns across (tenant, key) (default: none)")
    p.add_argument("--on-conflict", metavar="POLICY",
                   help="if an execution with the id runs: use_existing, fail or "
                   "terminate_existing (default: use it if its workflow and arguments are the "
                   "same, else fail)")
    p.add_argument("--id-reuse", metavar="POLICY", default="allow",
                   help="if the execution with the id has ended: allow (a new run, the "
                   "default), allow_failed_only or reject")
    add_module_option(p, "the workflow")


async def _start(args: argparse.Namespace) -> int:
    values = json_values(args.args)
    workflow = resolve_workflow(args.workflow, module_names(args))
    async with connect(args) as client:
        handle = await client.start(workflow, *values, id=args.id, priority=args.priority,
                                    fairness_key=args.fairness_key,
                                    on_conflict=args.on_conflict, id_reuse=args.id_reuse)
    print(_render.json({"workflow_id": handle.workflow_id, "tenant": handle.tenant})
          if wants_json(args) else handle.workflow_id)
    return 0


def _add_send(commands: Commands) -> None:
    p = commands.add("send", _send, "send an external event to an execution")
    p.add_argument("id", metavar="ID")
    p.add_argument("event", metavar="EVENT", help="event name")
    p.add_argument("payload", metavar="PAYLOAD", nargs="?", help="payload as JSON (default null)")
    p.add_argument("--key", help="idempotency key: the event is delivered once per key")
    p.add_argument("--metadata", metavar="JSON", help="recorded with the event, e.g. "
                   "'{\"user_id\": \"u1\"}' (who sent it)")


async def _send(args: argparse.Namespace) -> int:
    payload = None if args.payload is None else json_value(args.payload, "payload")
    metadata = None if args.metadata is None else json_value(args.metadata, "--metadata")
    async with connect(args) as client:
        handle = client.get_handle(args.id)
        await handle.send(args.event, payload, idempotency_key=args.key, metadata=metadata)
    print(_render.json({"workflow_id": args.id, "tenant": handle.tenant, "event": args.event,
                        "key": args.key}) if wants_json(args)
          else f"sent {args.event} to {args.id}")
    return 0


async def _cancel(args: argparse.Namespace) -> int:
    async with connect(args) as client:
        handle = client.get_handle(args.id)
        status = (await handle.describe()).status
        if status != "running":
            raise WorkflowClosedError(f"execution {args.id!r} has already ended ({status})",
                                      workflow_id=args.id)
        await handle.cancel()
    print(_render.json({"workflow_id": args.id, "tenant": handle.tenant,
                        "cancel_requested": True}) if wants_json(args)
          else f"cancel requested for {args.id}")
    return 0


# ---- queries and updates --------------------------------------------------------------------


def _add_query(commands: Commands) -> None:
    p = commands.add("query", _query, "ask a running (or ended) execution's query handler; "
                     "print the answer as JSON", epilog="example: durable query cart-1 total")
    p.add_argument("id", metavar="ID")
    p.add_argument("name", metavar="NAME", help="query name (ctx.on_query)")
    p.add_argument("args", metavar="ARG", nargs="*", help="arguments, one JSON value each")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="how long to wait for a worker to answer (default 30)")


async def _query(args: argparse.Namespace) -> int:
    values = json_values(args.args)
    async with connect(args, read_only=True) as client:
        answer = await client.get_handle(args.id).query(args.name, *values, timeout=args.timeout)
    print(_render.json({"workflow_id": args.id, "query": args.name, "result": answer})
          if wants_json(args) else _render.json(answer))
    return 0


def _add_update(commands: Commands) -> None:
    p = commands.add("update", _update, "send an update to an execution and print its "
                     "handler's answer as JSON",
                     epilog="example: durable update cart-1 add '\"tea\"' --key add-tea-1")
    p.add_argument("id", metavar="ID")
    p.add_argument("name", metavar="NAME", help="update name (ctx.on_update)")
    p.add_argument("args", metavar="ARG", nargs="*", help="arguments, one JSON value each")
    p.add_argument("--key", help="idempotency key: the update is applied once per key")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="how long to wait for the answer (default 30)")


async def _update(args: argparse.Namespace) -> int:
    values = json_values(args.args)
    async with connect(args) as client:
        answer = await client.get_handle(args.id).update(
            args.name, *values, idempotency_key=args.key, timeout=args.timeout)
    print(_render.json({"workflow_id": args.id, "update": args.name, "key": args.key,
                        "result": answer}) if wants_json(args) else _render.json(answer))
    return 0


# ---- list and show --------------------------------------------------------------------------


def _add_list(commands: Commands) -> None:
    p = commands.add("list", _list, "list executions, newest first, a page at a time",
                     epilog="examples: durable list --status held;  durable list --workflow "
                     "InvoiceApproval --since 1d;  durable list --after CURSOR (the next page)")
    p.add_argument("--status", choices=LIST_STATUSES, help="held: running but stopped by a "
                   "task error (fix the code); continued: continued as new at least once")
    p.add_argument("--workflow", metavar="NAME", help="registered workflow name")
    p.add_argument("--since", metavar="WHEN", help="started at or after: an ISO 8601 date or "
                   "date and time (local unless it names an offset), or an age (2h, 1d)")
    p.add_argument("--until", metavar="WHEN", help="started before (as --since)")
    p.add_argument("--id-prefix", metavar="PREFIX", help="workflow ids that start with PREFIX")
    p.add_argument("--after", metavar="CURSOR", help="the next page: the cursor the previous "
                   "page printed")
    p.add_argument("--limit", type=int, default=50, help="executions per page (default 50)")
    p.add_argument("--all-tenants", action="store_true")


async def _list(args: argparse.Namespace) -> int:
    now = time.time()
    since, until = (None if w is None else parse_when(w, now=now) for w in (args.since, args.until))
    async with connect(args, redis=False, read_only=True) as client:
        where = pages.query(client, tenants=None if args.all_tenants else [client.tenant],
                            workflow=args.workflow, status=args.status, since=since,
                            until=until, id_prefix=args.id_prefix)
        records, after = await pages.page(client, where, after=args.after, limit=args.limit)
    if after is not None:
        print(f"next page: --after {after}", file=sys.stderr)
    if wants_json(args):
        for line in _render.ndjson(records):
            print(line)
        return 0
    if not records:
        print("no executions")
        return 0
    header = ["ID", "WORKFLOW", "VERSION", "STATUS", "STATE", "UPDATED"]
    shown = times(args)
    rows = [[r.workflow_id, r.workflow, r.version, display_status(r), r.state or "-",
             shown.when(r.updated_at)] for r in records]
    tenants = [r.tenant for r in records] if args.all_tenants else None
    print("\n".join(_render.table(header, rows, tenants)))
    return 0


def _add_show(commands: Commands) -> None:
    p = commands.add("show", _show, "show an execution's history timeline and status",
                     epilog="examples: durable show inv-1 --at 12;  durable show inv-1 --at "
                     "10:31:34;  durable show inv-1 --at 2026-01-05T10:31:34 --replay "
                     "-m examples.invoice")
    p.add_argument("id", metavar="ID")
    p.add_argument("--run", metavar="RUN_ID",
                   help="an earlier run of the execution (continue-as-new) instead of the current")
    p.add_argument("--at", metavar="WHEN", help=AT_HELP)
    p.add_argument("--replay", action="store_true", help="with --at: replay the workflow's "
                   "code (import it with --module) instead of reading what was recorded")
    add_module_option(p, "the workflow, for --replay")


async def _show(args: argparse.Namespace) -> int:
    if args.at is not None:
        return await show_at(args)
    if args.replay:
        raise UsageError("--replay goes with --at WHEN")
    async with connect(args, redis=False, read_only=True) as client:
        handle = client.get_handle(args.id)
        try:
            events = await handle.history(run_id=args.run)
        except HistoryError:  # damaged: how the execution stands, then what is damaged
            print("\n".join(_render.summary(await handle.describe(), times(args))))
            raise
        if not events:
            raise UsageError(f"execution {args.id!r} has no run {args.run!r} (the runs are named "
                             "by WorkflowStarted.continued_from and WorkflowContinuedAsNew)")
        description = await handle.describe()
    if wants_json(args):  # payloads it cannot decode (no --codec) shown as "<encoded>"
        print(_render.json({**named(description), "history": events}))
        return 0
    shown = times(args)
    print("\n".join([*_render.timeline(events, shown), "", *_render.summary(description, shown)]))
    return 0
