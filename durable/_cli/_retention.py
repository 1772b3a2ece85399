"""``durable gc`` and ``durable tenant retention``: delete closed executions by hand, and set
how long a tenant's are kept (``client.collect_garbage``, ``client.set_retention``)."""

from __future__ import annotations

import argparse
from typing import Final

from .._retention import DEFAULT_RETENTION
from .._validate import check_tenant
from ..errors import UsageError
from ._options import Commands, parse_duration
from ._render import duration, table
from ._targets import connect

__all__ = ["add_commands", "add_tenant_retention"]

_GC_EPILOG: Final = """\
Closed executions (completed, failed, cancelled) are deleted with every row of theirs: each
run's history, pending work, requests and update records, snapshots and recorded outcomes;
a child's with its parent. Without --older-than, each is kept for its retention: its
workflow's (@durable.workflow(retention=...)), else its tenant's (durable tenant retention),
else --retention. `durable server` and embedded workers do the same in the background.
"""


def add_commands(commands: Commands) -> None:
    """Register ``gc``."""
    p = commands.add("gc", _gc, "delete closed executions past their retention (or older "
                     "than --older-than), with every row of theirs", epilog=_GC_EPILOG, raw=True)
    p.add_argument("--older-than", type=parse_duration, metavar="DURATION",
                   help="delete every execution closed longer ago than this (90s, 5m, 2h, 1d, "
                   "1w), whatever its retention")
    p.add_argument("--retention", type=parse_duration, metavar="DURATION",
                   default=DEFAULT_RETENTION, help="without --older-than: how long executions "
                   "with no setting of their own are kept (default 30d)")
    p.add_argument("--dry-run", action="store_true",
                   help="delete nothing; list what one pass would delete")
    p.add_argument("--all-tenants", action="store_true", help="every tenant (needs --tenants '*')")
    p.add_argument("--limit", type=int, default=100, metavar="N",
                   help="executions per transaction, and listed by --dry-run (default 100)")


def add_tenant_retention(group: Commands) -> None:
    """Register ``tenant retention`` in the ``tenant`` group."""
    p = group.add("retention", _retention, "show retention settings, or set how long a "
                  "tenant's closed executions are kept (any store)")
    p.add_argument("name", nargs="?", metavar="NAME", help="the tenant")
    p.add_argument("period", nargs="?", type=parse_duration, metavar="DURATION",
                   help="keep the tenant's closed executions this long (90s, 5m, 2h, 1d, 1w)")
    p.add_argument("--clear", action="store_true",
                   help="forget the tenant's setting (the default applies)")


async def _gc(args: argparse.Namespace) -> int:
    async with connect(args, redis=False) as client:
        found = await client.collect_garbage(args.older_than, all_tenants=args.all_tenants,
                                             dry_run=args.dry_run, retention=args.retention,
                                             limit=args.limit)
    if args.dry_run:
        for tenant, workflow_id in found:
            print(f"{tenant}\t{workflow_id}")
        print(f"would delete {len(found)} closed execution(s)")
    else:
        print(f"deleted {len(found)} closed execution(s) with every row of theirs")
    return 0


async def _retention(args: argparse.Namespace) -> int:
    if (args.clear or args.period is not None) and args.name is None:
        raise UsageError("name the tenant: durable tenant retention NAME DURATION")
    if args.clear and args.period is not None:
        raise UsageError("give a DURATION or --clear, not both")
    if args.name is not None:
        args.tenant = check_tenant(args.name)
    period: float | None = args.period
    async with connect(args, redis=False) as client:
        if args.clear or period is not None:
            await client.set_retention(period)
            kept = "cleared" if period is None else duration(period)
            print(f"tenant {client.tenant!r}: retention {kept}")
            return 0
        settings = await client.store.retention_settings()
    rows = [["workflow", name, duration(s)] for name, s in sorted(settings.workflows.items())]
    rows += [["tenant", name, duration(s)] for name, s in sorted(settings.tenants.items())
             if args.name in (None, name)]
    print("\n".join(table(["SCOPE", "NAME", "RETENTION"], rows)) if rows else
          f"no retention settings: closed executions are kept {duration(DEFAULT_RETENTION)} "
          "(durable server --retention)")
    return 0
