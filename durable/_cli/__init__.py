"""``durable``: a thin command-line shell over the public API.

Global options ``--db URL`` (env ``DURABLE_DB``, default ``sqlite:///durable.db``),
``--redis URL`` (env ``DURABLE_REDIS``: dispatch through Redis Streams), ``--prefix NAME`` (env
``DURABLE_REDIS_PREFIX``: Redis key prefix), ``--tenant NAME`` (default ``default``) and
``--tenants A,B|*`` (env ``DURABLE_TENANTS``: the tenants the command may act for; ``*``, which
``--all-tenants`` needs, is every tenant) and ``--codec MODULE:ATTR`` (env ``DURABLE_CODEC``:
the payload codec; without it encoded payloads show as ``<encoded>``), ``--json`` (print JSON
with named fields: one object, or NDJSON for a list) and ``--local`` (times in local time, not
UTC) go before or after the command; ``list``, ``show``, ``replay``, ``verify``, ``patches``,
``query`` and ``schedule list|show`` only read the store (they refuse a SQLite path that does
not exist) and but for ``query`` ignore ``--redis``. Errors from ``durable.errors`` are printed as one ``error: ...`` line on
stderr with exit status 1.

One module per command group: ``_workers`` (worker, server, ui), ``_executions`` (start, send,
query, update, cancel, list, show; ``show --at`` is in ``_timetravel``), ``_replay``,
``_patches``, ``_lint``, ``_schedules``, ``_verify``, ``_tenants`` (PostgreSQL tenant roles),
``_retention`` (gc, and ``tenant retention``, which ``_tenants`` registers) and
``_admin`` (migrate, bench); ``_ui`` holds the web UI's options for ``_workers``. They share
``_options`` (how a command is declared), ``_targets`` (what it acts on) and ``_render`` (how
results are shown); none imports this module or, but for ``show --at``, another group.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine
from importlib import metadata
from typing import Any

from ..errors import DurableError, NonDeterminismError
from . import (
    _admin, _executions, _lint, _patches, _replay, _retention, _schedules, _tenants, _verify,
    _workers,
)
from ._options import Commands
from ._targets import global_options

__all__ = ["main"]

_GROUPS = (_workers, _executions, _replay, _patches, _lint, _schedules, _verify, _tenants,
           _retention, _admin)


def main(argv: list[str] | None = None) -> int:
    """Run the ``durable`` command line; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        return _run(args.handler(args))
    except DurableError as exc:
        print(f"error: {_message(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    common = global_options()
    parser = argparse.ArgumentParser(prog="durable", parents=[common],
                                     description="Durable execution: run workers, start and "
                                     "inspect workflow executions.")
    parser.add_argument("--version", action="version",
                        version=f"durable {metadata.version('durable')}")
    commands = Commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"),
                        common)
    for group in _GROUPS:
        group.add_commands(commands)
    return parser


def _message(exc: DurableError) -> str:
    """The error on one line; a divergence keeps its lines (recorded, new, where)."""
    return str(exc) if isinstance(exc, NonDeterminismError) else " ".join(str(exc).split())


def _run(coro: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop  # optional: not on Windows
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)
