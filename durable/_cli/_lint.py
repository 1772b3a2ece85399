"""``durable lint MODULE...``: the calls in workflow code that would replay differently.

Every workflow the modules define is read by the determinism guard (``durable/_guard.py``):
``datetime.now()``, ``time.time()``, ``random``, ``uuid.uuid4()``, ``os.environ``, ``secrets``
and the like, each printed as ``file:line: call is not deterministic: what to use instead``.
The exit status is 1 if anything was found, for CI.
"""

from __future__ import annotations

import argparse
import warnings
from typing import Final

from .._definitions import definitions_in
from .._guard import NondeterministicCallWarning, check
from . import _render
from ._options import Commands
from ._targets import import_module, wants_json

__all__ = ["add_commands"]

_EPILOG: Final = """\
Reads the source of every workflow (nested functions included) and resolves each call through
the workflow's module, so `from datetime import datetime; datetime.now()` is found too. What
cannot be resolved statically (a method of a parameter) is not reported.

example: durable lint myapp.workflows myapp.billing
"""


def add_commands(commands: Commands) -> None:
    """Register ``lint``."""
    p = commands.add("lint", _lint, "report calls in workflow code that would replay "
                     "differently; exit 1 if any", epilog=_EPILOG, raw=True)
    p.add_argument("modules", nargs="+", metavar="MODULE", help="modules to check")


async def _lint(args: argparse.Namespace) -> int:
    with warnings.catch_warnings():  # lint reports them itself, once
        warnings.simplefilter("ignore", NondeterministicCallWarning)
        modules = [import_module(name) for name in args.modules]
    workflows, _ = definitions_in(modules)
    findings = [(name, finding) for name, defn in sorted(workflows.items())
                for finding in check(defn.fn)]
    if wants_json(args):
        print(_render.json({"findings": [{"workflow": name, **finding._asdict()}
                                         for name, finding in findings],
                            "workflows": len(workflows)}))
    else:
        for name, finding in findings:
            print(f"{finding} (workflow {name!r})")
        print(f"checked {len(workflows)} workflow(s): {len(findings)} call(s) that would "
              "replay differently")
    return 1 if findings else 0
