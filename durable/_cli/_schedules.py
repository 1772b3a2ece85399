"""``durable schedule create | list | show | pause | unpause | trigger | backfill | delete``.

Schedules start workflows on a cron expression or an interval; ``durable server`` (or an
embedded worker) starts their runs. Every command here but ``trigger`` and ``backfill``, which
start runs themselves, only writes the schedule and so ignores ``--redis``.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any, Final

import durable

from ..errors import UsageError
from . import _render
from ._options import Commands, add_module_option, json_values, parse_duration
from ._targets import connect, iso_moment, local_times, module_names, resolve_workflow, times
from ._targets import wants_json

__all__ = ["add_commands"]

_OVERLAPS: Final = [o.value for o in durable.Overlap]


def add_commands(commands: Commands) -> None:
    """Register ``durable schedule ACTION``."""
    actions = commands.group(
        "schedule", "start workflows on a cron expression or an interval: create, list, show, "
        "pause, unpause, trigger, backfill, delete", "Schedules (started by `durable server` or by an "
        "embedded worker).", dest="schedule_command")
    _add_create(actions)
    _add_list_and_show(actions)
    _add_changes(actions)


def _add_changes(actions: Commands) -> None:
    for name, handler, help in (
            ("pause", _pause, "start nothing until unpaused"),
            ("unpause", _unpause, "resume (runs missed while paused are not caught up)")):
        p = actions.add(name, handler, help)
        p.add_argument("id", metavar="ID")
        p.add_argument("--note", help="replace the schedule's note")
    p = actions.add("trigger", _trigger, "start a run now")
    p.add_argument("id", metavar="ID")
    p.add_argument("--overlap", choices=_OVERLAPS, help="policy for this run (default: the "
                   "schedule's)")
    p = actions.add("backfill", _backfill, "start the runs of every due time in a past range",
                    epilog="example: durable schedule backfill nightly --start 2026-11-01T00:00Z "
                    "--end 2026-11-07T23:59Z --overlap allow_all")
    p.add_argument("id", metavar="ID")
    for bound in ("start", "end"):
        p.add_argument(f"--{bound}", required=True,
                       help=f"{bound} of the range (included): ISO 8601 (UTC without a zone, "
                       "or local with --local), or epoch seconds")
    p.add_argument("--overlap", choices=_OVERLAPS, help="policy for these runs (default: the "
                   "schedule's)")
    actions.add("delete", _delete, "delete a schedule (its runs go on)").add_argument(
        "id", metavar="ID")


# ---- create ---------------------------------------------------------------------------------


def _add_create(actions: Commands) -> None:
    p = actions.add("create", _create, "create a schedule (or, with --replace, change it)",
                    epilog="example: durable schedule create nightly Report '\"eu\"' "
                    "--cron '0 3 * * *' --timezone Europe/Paris --module app.reports")
    p.add_argument("id", metavar="ID", help="schedule id (runs get <ID>-<due time> ids)")
    p.add_argument("workflow", metavar="WORKFLOW", help="registered workflow name")
    p.add_argument("args", metavar="ARG", nargs="*", help="arguments, one JSON value each")
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", metavar="EXPR", help="cron expression (croniter syntax)")
    when.add_argument("--every", type=parse_duration, metavar="DURATION",
                      help="interval, e.g. 30s, 5m, 1h (at least 1s)")
    p.add_argument("--offset", type=parse_duration, default=0.0, metavar="DURATION",
                   help="with --every: shift from the epoch-aligned times (default 0)")
    p.add_argument("--timezone", default="UTC", metavar="TZ",
                   help="time zone of --cron, an IANA name (default UTC)")
    p.add_argument("--overlap", choices=_OVERLAPS, default="skip",
                   help="when a run is due while one still runs (default skip)")
    p.add_argument("--catchup-window", type=parse_duration, metavar="DURATION",
                   help="start missed runs at most this late (default 365d)")
    p.add_argument("--paused", action="store_true", help="create it paused")
    p.add_argument("--note", default="", help="a note shown by show and list")
    p.add_argument("--replace", action="store_true", help="change an existing schedule")
    add_module_option(p, "the workflow")


async def _create(args: argparse.Namespace) -> int:
    values = json_values(args.args)
    workflow = resolve_workflow(args.workflow, module_names(args))
    options: dict[str, Any] = {}
    if args.catchup_window is not None:
        options["catchup_window"] = args.catchup_window
    async with connect(args, redis=False) as client:
        handle = await client.schedule(
            workflow, *values, id=args.id, cron=args.cron, every=args.every,
            offset=args.offset, timezone=args.timezone, overlap=args.overlap,
            paused=args.paused, note=args.note, replace=args.replace, **options)
        description = await handle.describe(next_runs=1)
    if wants_json(args):
        print(_render.json(description))
        return 0
    upcoming = (times(args).when(description.next_runs[0].timestamp())
                if description.next_runs else "-")
    print(f"schedule {args.id}: next run {upcoming}")
    return 0


# ---- list and show --------------------------------------------------------------------------


def _add_list_and_show(actions: Commands) -> None:
    p = actions.add("list", _list, "list schedules")
    p.add_argument("--all-tenants", action="store_true")
    p.add_argument("--limit", type=int, default=100)
    p = actions.add("show", _show, "show a schedule: definition, next and recent runs")
    p.add_argument("id", metavar="ID")
    p.add_argument("--next", type=int, default=5, metavar="N", help="next runs to show")


async def _list(args: argparse.Namespace) -> int:
    async with connect(args, redis=False, read_only=True) as client:
        found = await client.list_schedules(limit=args.limit, all_tenants=args.all_tenants)
    if wants_json(args):
        for line in _render.ndjson(found):
            print(line)
        return 0
    if not found:
        print("no schedules")
        return 0
    header = ["ID", "WORKFLOW", "WHEN", "OVERLAP", "STATUS", "NEXT RUN", "RUNS"]
    shown = times(args)
    rows = [[d.schedule_id, d.workflow, _render.schedule_when(d), d.overlap.value,
             "paused" if d.paused else "active",
             shown.when(d.next_runs[0].timestamp()) if d.next_runs else "-", str(d.runs)]
            for d in found]
    tenants = [d.tenant for d in found] if args.all_tenants else None
    print("\n".join(_render.table(header, rows, tenants)))
    return 0


async def _show(args: argparse.Namespace) -> int:
    async with connect(args, redis=False, read_only=True) as client:
        description = await client.get_schedule(args.id).describe(next_runs=args.next)
    print(_render.json(description) if wants_json(args)
          else "\n".join(_render.schedule(description, times(args))))
    return 0


# ---- pause, unpause, trigger, backfill, delete --------------------------------------------------------


async def _pause(args: argparse.Namespace) -> int:
    async with connect(args, redis=False) as client:
        await client.get_schedule(args.id).pause(note=args.note)
    return _done(args, "paused")


async def _unpause(args: argparse.Namespace) -> int:
    async with connect(args, redis=False) as client:
        await client.get_schedule(args.id).unpause(note=args.note)
    return _done(args, "unpaused")


async def _trigger(args: argparse.Namespace) -> int:
    async with connect(args) as client:
        await client.get_schedule(args.id).trigger(overlap=args.overlap)
    return _done(args, "triggered")


async def _backfill(args: argparse.Namespace) -> int:
    async with connect(args) as client:
        count = await client.get_schedule(args.id).backfill(
            _moment("--start", args.start, args), _moment("--end", args.end, args),
            overlap=args.overlap)
    if wants_json(args):
        print(_render.json({"schedule_id": args.id, "action": "backfilled", "runs": count}))
        return 0
    print(f"backfilled {args.id}: {count} run{'' if count == 1 else 's'} queued")
    return 0


def _moment(option: str, text: str, args: argparse.Namespace) -> datetime | float:
    """A backfill bound: epoch seconds, or ISO 8601 (UTC without a zone, unless --local)."""
    try:
        return float(text)
    except ValueError:
        pass
    when = iso_moment(text, local_times(args))
    if when is None:
        raise UsageError(f"{option} {text!r} is neither ISO 8601 nor epoch seconds")
    return when


def _done(args: argparse.Namespace, action: str) -> int:
    """Print that ``action`` was done to schedule ``args.id``."""
    print(_render.json({"schedule_id": args.id, "action": action}) if wants_json(args)
          else f"{action} {args.id}")
    return 0


async def _delete(args: argparse.Namespace) -> int:
    async with connect(args, redis=False) as client:
        await client.get_schedule(args.id).delete()
    return _done(args, "deleted")
