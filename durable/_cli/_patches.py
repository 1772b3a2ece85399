"""``durable patches``: for each ``ctx.patched()`` id, the open executions on its old path.

Each open execution is replayed against the workflows of ``--module``; a patch that no open
execution still needs is reported "safe to remove". The exit status is 1 if an execution could
not be replayed, since the report would then be incomplete.
"""

from __future__ import annotations

import argparse
from typing import Final

from .._patches import patch_ids_in, patch_report
from ..errors import UsageError
from . import _render
from ._options import Commands, add_module_option
from ._targets import connect, import_modules, wants_json

__all__ = ["add_commands"]

PATCHES_HELP: Final = """\
Each open execution is replayed against the workflows of --module: where ctx.patched(ID)
returns False, the execution recorded the old code's commands and keeps that path until it
ends, so the old branch must stay. A patch with none left on its old path is "safe to remove":
delete the ctx.patched() call and the old branch (the markers recorded by executions on the
new path are skipped on replay). Patch ids are found in the modules' source too, so a patch
no open execution has reached yet is listed. Exit status 1 if an execution could not be
replayed (the report would be incomplete): see durable show ID.

example: durable patches --module billing
"""


def add_commands(commands: Commands) -> None:
    """Register ``patches``."""
    p = commands.add("patches", _patches, "list, for each ctx.patched() id, the open executions "
                     "that still depend on its old path", epilog=PATCHES_HELP, raw=True)
    add_module_option(p, "the workflows")
    p.add_argument("--workflow", metavar="NAME", help="only executions of this workflow")
    p.add_argument("--all-tenants", action="store_true")
    p.add_argument("--limit", type=int, default=10_000, metavar="N",
                   help="open executions to check at most (default 10000)")


async def _patches(args: argparse.Namespace) -> int:
    modules = import_modules(args)
    if not modules:
        raise UsageError("durable patches needs the workflows' code: pass --module MOD "
                         "(or DURABLE_MODULES=mod1,mod2)")
    workflows = [v for m in modules for v in vars(m).values()
                 if hasattr(v, "__durable_workflow__")]
    async with connect(args, redis=False, read_only=True) as client:
        report = await patch_report(client, workflows, known_ids=patch_ids_in(modules),
                                    workflow=args.workflow, all_tenants=args.all_tenants,
                                    limit=args.limit)
    print(_render.json(report) if wants_json(args) else
          "\n".join(_render.patch_report(report, args.all_tenants)))
    return 1 if report.unchecked else 0
