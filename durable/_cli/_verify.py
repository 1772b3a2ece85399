"""``durable verify``: check every stored history, row by row, and say what is damaged.

Every run of every execution (of ``--tenant``, or ``--all-tenants``) is read whole and each row
checked as a read checks it, and more (each row's checksum against the one before it, not only
the chain's end; see ``durable._stores._integrity``). Each damaged history is printed as it is
found, with where (tenant, workflow id, run, seq) and what; progress goes to stderr; the
summary line comes last, and the exit status is 1 if anything is damaged.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import Any, Final

from .._scope import permit_all
from .._stores import RunCheck
from .._stores._integrity import verify_store
from . import _render
from ._options import Commands
from ._targets import connect, wants_json

__all__ = ["add_commands"]

_EPILOG: Final = """\
Rows written before this version of durable have no checksum: they are checked for their seq
and for decoding only, and counted in the summary.

examples:
  durable verify --db postgresql://app@db/app --all-tenants
  durable verify --json > damage.json
"""


def add_commands(commands: Commands) -> None:
    """Register ``verify``."""
    p = commands.add("verify", _verify, "check every stored history's integrity; exit 1 if "
                     "any is damaged", epilog=_EPILOG, raw=True)
    p.add_argument("--all-tenants", action="store_true", help="executions of every tenant")
    p.add_argument("--progress", type=float, default=2.0, metavar="SECONDS",
                   help="a progress line on stderr at most this often (default 2; 0: each one)")


async def _verify(args: argparse.Namespace) -> int:
    report = _Report(args.progress, quiet=wants_json(args))
    async with connect(args, redis=False, read_only=True) as client:
        tenant = None if args.all_tenants else client.tenant
        if tenant is None:
            permit_all(client.tenants, "durable verify --all-tenants")
        async for check in verify_store(client.store, tenant):
            report.add(check)
    if wants_json(args):  # the damaged histories and the counts, as one document
        print(_render.json(report.document()))
    else:
        print(report.summary())
    return 1 if report.damaged else 0


class _Report:
    """Counts what was checked, prints each damaged run as it is found and progress."""

    def __init__(self, progress: float, *, quiet: bool) -> None:
        self.quiet = quiet
        self.counts: Counter[str] = Counter()
        self.damaged: list[RunCheck] = []
        self._executions: set[tuple[str, str]] = set()
        self._progress = _render.Progress(progress)

    def add(self, check: RunCheck) -> None:
        """Count one run; print it if it is damaged."""
        self._executions.add((check.tenant, check.workflow_id))
        self.counts.update(runs=1, events=check.events, unchecked=check.unchecked)
        if check.error is not None:
            self.damaged.append(check)
            if not self.quiet:
                error = check.error
                print(f"DAMAGED  {check.tenant}/{check.workflow_id} run {check.run_id}: "
                      f"{error.reason} [{error.damage}]", flush=True)
        self._tick()

    def _tick(self) -> None:
        done = len(self._executions)
        rate = self._progress.rate(done)
        if rate is None:
            return
        print(f"verify: {done} executions, {len(self.damaged)} damaged ({rate:.0f}/s)",
              file=sys.stderr, flush=True)

    def summary(self) -> str:
        """The last line: what was checked, and how much of it is damaged."""
        unchecked = self.counts["unchecked"]
        old = (f"; {unchecked} written before checksums, checked for seq and decoding only"
               if unchecked else "")
        return (f"verified {len(self._executions)} executions ({self.counts['runs']} runs, "
                f"{self.counts['events']} events{old}): {len(self.damaged)} damaged")

    def document(self) -> dict[str, Any]:
        """The counts and the damaged runs, for ``--json``."""
        damaged = [{"tenant": c.tenant, "workflow_id": c.workflow_id, "run_id": c.run_id,
                    "seq": c.error.seq, "damage": c.error.damage, "reason": c.error.reason,
                    "message": str(c.error)}
                   for c in self.damaged if c.error is not None]
        return {"executions": len(self._executions), "runs": self.counts["runs"],
                "events": self.counts["events"], "unchecked": self.counts["unchecked"],
                "damaged": damaged}
