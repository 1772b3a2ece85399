"""``durable schedule create | list | show | pause | unpause | trigger | delete``."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import datetime, timezone
from contextlib import AbstractAsyncContextManager
from typing import Any, Final

import durable

__all__ = ["add_schedule_commands", "parse_duration"]

_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhdw]?)\s*$")
_UNITS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_OVERLAPS: Final = [o.value for o in durable.Overlap]

Connect = Callable[..., AbstractAsyncContextManager[durable.Client]]


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``5m``, ``2h``, ``1d``, ``1w`` in seconds (argparse type)."""
    match = _DURATION.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: use seconds or a number with s, m, h, d or w (5m)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def add_schedule_commands(sub: Any, common: argparse.ArgumentParser, connect: Connect) -> None:
    """Register ``durable schedule ...`` on the top-level subparsers ``sub``."""
    top = sub.add_parser("schedule", parents=[common], help="start workflows on a cron "
                         "expression or an interval: create, list, show, pause, unpause, "
                         "trigger, delete", description="Schedules (started by `durable "
                         "server` or by an embedded worker).")
    actions = top.add_subparsers(dest="schedule_command", required=True, metavar="ACTION")
    commands = _Commands(connect)

    def action(name: str, handler: Any, help: str, **kw: Any) -> argparse.ArgumentParser:
        p = actions.add_parser(name, parents=[common], help=help, description=help, **kw)
        p.set_defaults(handler=handler)
        return p

    p = action("create", commands.create, "create a schedule (or, with --replace, change it)",
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
    p.add_argument("--module", "-m", action="append", default=[], metavar="MOD",
                   help="module that defines the workflow (repeatable; env DURABLE_MODULES)")

    p = action("list", commands.list, "list schedules")
    p.add_argument("--all-tenants", action="store_true")
    p.add_argument("--limit", type=int, default=100)
    p = action("show", commands.show, "show a schedule: definition, next and recent runs")
    p.add_argument("id", metavar="ID")
    p.add_argument("--next", type=int, default=5, metavar="N", help="next runs to show")
    for name, help in (("pause", "start nothing until unpaused"),
                       ("unpause", "resume (runs missed while paused are not caught up)")):
        p = action(name, getattr(commands, name), help)
        p.add_argument("id", metavar="ID")
        p.add_argument("--note", help="replace the schedule's note")
    p = action("trigger", commands.trigger, "start a run now")
    p.add_argument("id", metavar="ID")
    p.add_argument("--overlap", choices=_OVERLAPS, help="policy for this run (default: the "
                   "schedule's)")
    p = action("delete", commands.delete, "delete a schedule (its runs go on)")
    p.add_argument("id", metavar="ID")


class _Commands:
    """The handlers; the shared CLI helpers come from ``_cli`` (imported late: it imports us)."""

    def __init__(self, connect: Connect) -> None:
        self.connect = connect

    @property
    def helpers(self) -> Any:
        from . import _cli

        return _cli

    async def create(self, args: argparse.Namespace) -> int:
        values = [self.helpers._json_arg(a, f"argument {i}") for i, a in enumerate(args.args, 1)]
        workflow = self.helpers._resolve_workflow(args.workflow, self.helpers._modules(args))
        options: dict[str, Any] = {}
        if args.catchup_window is not None:
            options["catchup_window"] = args.catchup_window
        async with self.connect(args, redis=False) as client:
            handle = await client.schedule(
                workflow, *values, id=args.id, cron=args.cron, every=args.every,
                offset=args.offset, timezone=args.timezone, overlap=args.overlap,
                paused=args.paused, note=args.note, replace=args.replace, **options)
            description = await handle.describe(next_runs=1)
        upcoming = description.next_runs[0].isoformat() if description.next_runs else "-"
        print(f"schedule {args.id}: next run {upcoming}")
        return 0

    async def list(self, args: argparse.Namespace) -> int:
        async with self.connect(args, redis=False) as client:
            found = await client.list_schedules(limit=args.limit, all_tenants=args.all_tenants)
        if not found:
            print("no schedules")
            return 0
        header = ["ID", "WORKFLOW", "WHEN", "OVERLAP", "STATUS", "NEXT RUN (UTC)", "RUNS"]
        rows = [[d.schedule_id, d.workflow, _when(d), d.overlap.value,
                 "paused" if d.paused else "active", _utc(d.next_runs[0]) if d.next_runs else "-",
                 str(d.runs)] for d in found]
        if args.all_tenants:
            header.insert(0, "TENANT")
            for row, d in zip(rows, found):
                row.insert(0, d.tenant)
        self.helpers._table(header, rows)
        return 0

    async def show(self, args: argparse.Namespace) -> int:
        async with self.connect(args, redis=False) as client:
            d = await client.get_schedule(args.id).describe(next_runs=args.next)
        call = self.helpers._call(d.workflow, d.args, d.kwargs)
        status = "paused" if d.paused else "active"
        lines = [f"schedule:  {d.schedule_id}  tenant={d.tenant}", f"workflow:  {call}",
                 f"when:      {_when(d)}",
                 f"overlap:   {d.overlap.value}  catch-up window: {_duration(d.catchup_window)}",
                 f"status:    {status}{f'  ({d.note})' if d.note else ''}",
                 f"runs:      {d.runs} started, {d.skipped} skipped (overlap), "
                 f"{d.missed} missed (catch-up window), {d.buffered} buffered",
                 f"running:   {', '.join(d.running) or '-'}",
                 "next runs: " + (", ".join(_utc(t) for t in d.next_runs) or "-"),
                 "recent runs:" if d.recent_runs else "recent runs: -"]
        lines += [f"  {_utc(datetime.fromtimestamp(r.due, timezone.utc))}  {r.workflow_id}"
                  f"{'  (manual)' if r.manual else ''}" for r in reversed(d.recent_runs)]
        print("\n".join(lines))
        return 0

    async def pause(self, args: argparse.Namespace) -> int:
        async with self.connect(args, redis=False) as client:
            await client.get_schedule(args.id).pause(note=args.note)
        print(f"paused {args.id}")
        return 0

    async def unpause(self, args: argparse.Namespace) -> int:
        async with self.connect(args, redis=False) as client:
            await client.get_schedule(args.id).unpause(note=args.note)
        print(f"unpaused {args.id}")
        return 0

    async def trigger(self, args: argparse.Namespace) -> int:
        async with self.connect(args) as client:
            await client.get_schedule(args.id).trigger(overlap=args.overlap)
        print(f"triggered {args.id}")
        return 0

    async def delete(self, args: argparse.Namespace) -> int:
        async with self.connect(args, redis=False) as client:
            await client.get_schedule(args.id).delete()
        print(f"deleted {args.id}")
        return 0


def _when(d: durable.ScheduleDescription) -> str:
    if d.cron is not None:
        return f"cron {d.cron!r} {d.timezone}"
    assert d.every is not None
    return f"every {_duration(d.every)}"


def _duration(seconds: float) -> str:
    for unit in ("w", "d", "h", "m"):
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return f"{seconds / _UNITS[unit]:g}{unit}"
    return f"{seconds:g}s"


def _utc(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
