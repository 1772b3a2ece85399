"""``durable``: a thin command-line shell over the public API.

Global options ``--db URL`` (env ``DURABLE_DB``, default ``sqlite:///durable.db``),
``--redis URL`` (env ``DURABLE_REDIS``: dispatch through Redis Streams), ``--prefix NAME`` (env
``DURABLE_REDIS_PREFIX``: Redis key prefix) and ``--tenant NAME`` (default ``default``) go before
or after the subcommand; ``list``, ``show`` and ``replay`` only read the store and ignore
``--redis``. Errors from ``durable.errors`` are printed as one ``error: ...`` line on stderr
with exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from types import ModuleType
from typing import Any, Protocol

import msgspec

import durable
from durable import errors

from . import _cli_replay, _cli_timetravel
from ._bench import add_arguments as add_bench_arguments
from ._cli_schedules import add_schedule_commands
from ._definitions import definitions_in, workflow_definition
from ._history import (
    ActionCancelRequested, ActionCompleted, ActionFailed, ActionScheduled, CancelRequested,
    ChildCancelled, ChildCancelRequested, ChildCompleted, ChildFailed, ChildInitiated,
    ChildStarted, ChildStartFailed, DataChanged, Event, EventReceived, Patched, StateChanged,
    TaskCompleted, TimerCancelled, TimerFired, TimerStarted, UpdateAccepted, UpdateCompleted,
    WorkflowCancelled, WorkflowCompleted, WorkflowContinuedAsNew, WorkflowFailed, WorkflowStarted,
    encode_history_json,
)
from ._urls import redact

__all__ = ["main"]

DEFAULT_DB = "sqlite:///durable.db"
DEFAULT_TENANT = "default"

WORKER_HELP = """\
TARGET is MODULE:ATTR (MODULE alone means MODULE:worker); the current directory is on
sys.path. ATTR may be:
  - a function taking a durable.Client and returning a durable.Worker, e.g.
        def worker(client, **options):
            return durable.Worker(client, workflows=[invoice_approval],
                                  actions=[send_email], **options)
    --concurrency / --lease, when given, are passed to it as keyword arguments;
  - an object or dict with `workflows` and `actions` lists;
  - a list of @durable.workflow and @durable.action functions.
SIGTERM or SIGINT stops claiming work and exits once the tasks in flight have finished
(a second signal aborts them). A worker serves every tenant of the store.

example: durable worker examples.invoice:worker
"""


PATCHES_HELP = """\
Each open execution is replayed against the workflows of --module: where ctx.patched(ID)
returns False, the execution recorded the old code's commands and keeps that path until it
ends, so the old branch must stay. A patch with none left on its old path is "safe to remove":
delete the ctx.patched() call and the old branch (the markers recorded by executions on the
new path are skipped on replay). Patch ids are found in the modules' source too, so a patch
no open execution has reached yet is listed. Exit status 1 if an execution could not be
replayed (the report would be incomplete): see durable show ID.

example: durable patches --module billing
"""


class CliError(Exception):
    """A problem with the command line itself (bad JSON, a module that cannot be imported)."""


# ---- entry point ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the ``durable`` command line; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        return _run(args.handler(args))
    except (errors.DurableError, CliError) as exc:
        print(f"error: {_message(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _message(exc: Exception) -> str:
    return " ".join(str(exc).split()) if not isinstance(exc, errors.NonDeterminismError) else str(exc)


def _run(coro: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


@asynccontextmanager
async def _connect(args: argparse.Namespace, *, redis: bool = True) -> AsyncIterator[durable.Client]:
    """A client on ``--db``; with ``redis`` and ``--redis``, one that publishes through Redis."""
    options: dict[str, Any] = {"tenant": getattr(args, "tenant", DEFAULT_TENANT)}
    if redis and (redis_url := _redis(args)):
        options["redis_url"] = redis_url
        if prefix := getattr(args, "prefix", None) or os.environ.get("DURABLE_REDIS_PREFIX"):
            options["prefix"] = prefix
    try:
        client = await durable.connect(_db(args), **options)
    except ValueError as exc:  # an unsupported or malformed store URL
        raise CliError(str(exc)) from None
    try:
        yield client
    finally:
        await client.close()


def _db(args: argparse.Namespace) -> str:
    return getattr(args, "db", None) or os.environ.get("DURABLE_DB") or DEFAULT_DB


def _redis(args: argparse.Namespace) -> str | None:
    return getattr(args, "redis", None) or os.environ.get("DURABLE_REDIS") or None


# ---- argument parsing -----------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", metavar="URL", default=argparse.SUPPRESS,
                        help=f"store URL (env DURABLE_DB, default {DEFAULT_DB})")
    common.add_argument("--redis", metavar="URL", default=argparse.SUPPRESS,
                        help="dispatch through Redis Streams at URL (env DURABLE_REDIS)")
    common.add_argument("--prefix", metavar="NAME", default=argparse.SUPPRESS,
                        help="prefix of the Redis keys (env DURABLE_REDIS_PREFIX)")
    common.add_argument("--tenant", default=argparse.SUPPRESS,
                        help=f"tenant of the executions (default {DEFAULT_TENANT!r})")
    parser = argparse.ArgumentParser(prog="durable", parents=[common],
                                     description="Durable execution: run workers, start and "
                                     "inspect workflow executions.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[..., Any], help: str, **kw: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help, description=help, **kw)
        p.set_defaults(handler=handler)
        return p

    p = command("worker", _worker, "run workflows and actions until SIGTERM/SIGINT",
                epilog=WORKER_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", metavar="TARGET", help="MODULE:ATTR (see below)")
    p.add_argument("--concurrency", type=int, metavar="N", help="tasks run at once (Worker default 100)")
    p.add_argument("--lease", type=float, metavar="SECONDS",
                   help="how soon a crashed worker's tasks are picked up again (default 30)")

    p = command("start", _start, "start a workflow execution and print its id",
                epilog="example: durable start InvoiceApproval '\"inv-1\"' 500 --id inv-1 "
                "--module examples.invoice")
    p.add_argument("workflow", metavar="WORKFLOW", help="registered workflow name")
    p.add_argument("args", metavar="ARG", nargs="*", help="arguments, one JSON value each")
    p.add_argument("--id", help="workflow id (default: a new UUID)")
    p.add_argument("--module", "-m", action="append", default=[], metavar="MOD",
                   help="module that defines the workflow (repeatable; env DURABLE_MODULES, "
                   "comma-separated)")

    p = command("send", _send, "send an external event to an execution")
    p.add_argument("id", metavar="ID")
    p.add_argument("event", metavar="EVENT", help="event name")
    p.add_argument("payload", metavar="PAYLOAD", nargs="?", help="payload as JSON (default null)")
    p.add_argument("--key", help="idempotency key: the event is delivered once per key")

    p = command("query", _query, "ask a running (or ended) execution's query handler; print "
                "the answer as JSON",
                epilog="example: durable query cart-1 total")
    p.add_argument("id", metavar="ID")
    p.add_argument("name", metavar="NAME", help="query name (ctx.on_query)")
    p.add_argument("args", metavar="ARG", nargs="*", help="arguments, one JSON value each")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="how long to wait for a worker to answer (default 30)")

    p = command("update", _update, "send an update to an execution and print its handler's "
                "answer as JSON",
                epilog="example: durable update cart-1 add '\"tea\"' --key add-tea-1")
    p.add_argument("id", metavar="ID")
    p.add_argument("name", metavar="NAME", help="update name (ctx.on_update)")
    p.add_argument("args", metavar="ARG", nargs="*", help="arguments, one JSON value each")
    p.add_argument("--key", help="idempotency key: the update is applied once per key")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="how long to wait for the answer (default 30)")

    p = command("list", _list, "list executions, newest first")
    p.add_argument("--status", choices=["running", "completed", "failed", "cancelled"])
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--all-tenants", action="store_true")

    p = command("show", _show, "show an execution's history timeline and status",
                epilog="examples: durable show inv-1 --at 12;  durable show inv-1 --at "
                "10:31:34;  durable show inv-1 --at 2026-01-05T10:31:34 --replay -m examples.invoice")
    p.add_argument("id", metavar="ID")
    p.add_argument("--run", metavar="RUN_ID",
                   help="an earlier run of the execution (continue-as-new) instead of the current")
    p.add_argument("--json", action="store_true", help="print the history (with --at: the "
                   "state at that moment) as JSON")
    p.add_argument("--at", metavar="WHEN", help=_cli_timetravel.AT_HELP)
    p.add_argument("--replay", action="store_true", help="with --at: replay the workflow's "
                   "code (import it with --module) instead of reading what was recorded")
    p.add_argument("--module", "-m", action="append", default=[], metavar="MOD",
                   help="module that defines the workflow, for --replay (repeatable; env "
                   "DURABLE_MODULES, comma-separated)")

    p = command("cancel", _cancel, "ask an execution to stop")
    p.add_argument("id", metavar="ID")

    p = command("server", _server, "fire timers, re-dispatch lost or expired tasks, serve "
                "/healthz and /metrics until SIGTERM/SIGINT")
    p.add_argument("--host", default="127.0.0.1", help="HTTP address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080; 0 picks one)")
    p.add_argument("--interval", type=float, default=0.1, metavar="SECONDS",
                   help="how long an idle loop sleeps (default 0.1)")
    p.add_argument("--redispatch-after", type=float, default=2.0, metavar="SECONDS",
                   help="announce a claimable task again after this long (default 2)")

    p = command("replay", _replay, "replay recorded histories against today's code; exit 1 "
                "on any divergence", epilog=_cli_replay.REPLAY_HELP,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    _cli_replay.add_arguments(p)

    p = command("patches", _patches, "list, for each ctx.patched() id, the open executions that "
                "still depend on its old path", epilog=PATCHES_HELP,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--module", "-m", action="append", default=[], metavar="MOD",
                   help="module that defines the workflows (repeatable; env DURABLE_MODULES, "
                   "comma-separated)")
    p.add_argument("--workflow", metavar="NAME", help="only executions of this workflow")
    p.add_argument("--all-tenants", action="store_true")
    p.add_argument("--limit", type=int, default=10_000, metavar="N",
                   help="open executions to check at most (default 10000)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = command("bench", _bench, "measure replay speed on this machine, by workflow shape and "
                "history size, next to Python's and asyncio's floors")
    add_bench_arguments(p)

    command("migrate", _migrate, "create or upgrade the store's schema and print its version")
    add_schedule_commands(sub, common, _connect)
    return parser


def _json_arg(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        hint = f" (a string needs JSON quotes: '\"{text}\"')" if text and text[0] not in "\"[{" else ""
        raise CliError(f"{what} {text!r} is not valid JSON: {exc.msg}{hint}") from None


# ---- modules and worker targets -------------------------------------------------------------


def _import(name: str) -> ModuleType:
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not (name == exc.name or name.startswith(exc.name + ".")):
            raise
        raise CliError(f"cannot import module {name!r}: {exc} (run from the directory that "
                       "contains it, or set PYTHONPATH)") from None


def _load_target(spec: str) -> tuple[str, Any]:
    module_name, _, attr = spec.partition(":")
    module = _import(module_name)
    attr = attr or "worker"
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise CliError(f"module {module_name!r} has no attribute {attr!r}") from None
    return f"{module_name}:{attr}", obj


def _is_durable(fn: Any) -> bool:
    return hasattr(fn, "__durable_workflow__") or hasattr(fn, "__durable_action__")


def _split(functions: Iterable[Any], where: str) -> tuple[list[Any], list[Any]]:
    workflows, actions = [], []
    for fn in functions:
        if hasattr(fn, "__durable_workflow__"):
            workflows.append(fn)
        elif hasattr(fn, "__durable_action__"):
            actions.append(fn)
        else:
            raise CliError(f"{where}: {fn!r} is neither a @durable.workflow nor a @durable.action")
    return workflows, actions


async def _make_worker(name: str, target: Any, client: durable.Client,
                       options: dict[str, Any]) -> durable.Worker:
    if isinstance(target, (list, tuple)) or _is_durable(target):
        workflows, actions = _split(target if isinstance(target, (list, tuple)) else [target], name)
        return durable.Worker(client, workflows, actions, **options)
    get = target.get if isinstance(target, dict) else lambda key: getattr(target, key, None)
    if get("workflows") is not None or get("actions") is not None:
        workflows, actions = _split([*(get("workflows") or ()), *(get("actions") or ())], name)
        return durable.Worker(client, workflows, actions, **options)
    if callable(target):
        worker = target(client, **options)
        if asyncio.iscoroutine(worker):
            worker = await worker
        if not isinstance(worker, durable.Worker):
            raise CliError(f"{name} returned {worker!r}, not a durable.Worker")
        return worker
    raise CliError(f"{name} is not a worker target: see `durable worker --help`")


# ---- commands -------------------------------------------------------------------------------


async def _worker(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    name, target = _load_target(args.target)
    options = {k: v for k in ("concurrency", "lease") if (v := getattr(args, k)) is not None}
    async with _connect(args) as client:
        try:
            worker = await _make_worker(name, target, client, options)
        except TypeError as exc:
            raise CliError(f"cannot build the worker from {name}: {exc}") from None
        started = (f"durable worker {worker.identity} started: db={_db(args)} "
                   f"workflows={','.join(worker.workflows) or '-'} "
                   f"actions={','.join(worker.actions) or '-'} "
                   f"concurrency={worker.concurrency} lease={worker.lease:g}s")
        await _run_until_signalled(worker, started)
        print(f"durable worker {worker.identity} stopped", flush=True)
    return 0


class _Service(Protocol):
    def run(self) -> Coroutine[Any, Any, None]: ...
    def shutdown(self) -> None: ...


async def _run_until_signalled(service: _Service, started: str | Callable[[], Awaitable[str]],
                               stopping: str = "durable worker stopping: finishing tasks in "
                               "flight") -> None:
    """Run the service; the first SIGINT/SIGTERM shuts it down gracefully, the second aborts.

    ``started`` is the line to print once signals are handled (or a coroutine function that
    returns it once the service has started).
    """
    loop = asyncio.get_running_loop()
    run = asyncio.ensure_future(service.run())
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            print(f"{stopping} (signal again to abort)", file=sys.stderr, flush=True)
            service.shutdown()
        else:
            run.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        if not isinstance(started, str):
            try:
                started = await started()
            except RuntimeError:
                await run  # it failed to start: raise why
                raise
        print(started, flush=True)  # only now: a signal from here on is handled
        await run
    except asyncio.CancelledError:
        if signals < 2:
            raise
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _server(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        from durable_server import Server
    except ImportError as exc:
        raise CliError(f"durable server needs the server extra (pip install 'durable[server]'): "
                       f"{exc}") from None
    async with _connect(args) as client:
        try:
            server = Server(client, host=args.host, port=args.port, interval=args.interval,
                            redispatch_after=args.redispatch_after)
        except ValueError as exc:
            raise CliError(str(exc)) from None

        async def started() -> str:
            await server.wait_started()
            redis = _redis(args)
            return (f"durable server {server.identity} started: db={redact(_db(args))} "
                    f"redis={redact(redis) if redis else '-'} http={server.url} "
                    f"interval={server.interval:g}s redispatch_after={server.redispatch_after:g}s")

        try:
            await _run_until_signalled(server, started, "durable server stopping")
        except OSError as exc:  # the HTTP port is taken or the address is wrong
            raise CliError(f"cannot listen on {args.host}:{args.port}: {exc}") from None
        print(f"durable server {server.identity} stopped", flush=True)
    return 0


async def _bench(args: argparse.Namespace) -> int:
    from ._bench._replay import run

    await asyncio.to_thread(run, args)  # it runs event loops of its own (the floors)
    return 0


async def _migrate(args: argparse.Namespace) -> int:
    from ._stores import migrate_store

    url = _db(args)
    try:
        version = await migrate_store(url)
    except ValueError as exc:  # an unsupported or malformed store URL
        raise CliError(str(exc)) from None
    print(f"schema version {version} at {redact(url)}")
    return 0


def _modules(args: argparse.Namespace) -> list[str]:
    env = [m.strip() for m in os.environ.get("DURABLE_MODULES", "").split(",") if m.strip()]
    return list(dict.fromkeys([*args.module, *env]))


def _resolve_workflow(name: str, module_names: list[str]) -> Any:
    found, _ = definitions_in(_import(m) for m in module_names)
    if name in found:
        return found[name]
    try:  # registered by a module imported along the way
        return workflow_definition(name).fn
    except errors.UnknownWorkflowError:
        pass
    imported = ", ".join(module_names) or "none"
    known = ", ".join(sorted(found)) or "none"
    raise errors.UnknownWorkflowError(
        f"no workflow named {name!r} (modules imported: {imported}; workflows found: {known}); "
        "pass the module that defines it with --module MOD or DURABLE_MODULES=mod1,mod2",
        name=name)


async def _start(args: argparse.Namespace) -> int:
    values = [_json_arg(a, f"argument {i}") for i, a in enumerate(args.args, 1)]
    workflow = _resolve_workflow(args.workflow, _modules(args))
    async with _connect(args) as client:
        handle = await client.start(workflow, *values, id=args.id)
    print(handle.workflow_id)
    return 0


async def _replay(args: argparse.Namespace) -> int:
    modules = [_import(m) for m in _modules(args)]
    try:
        return await _cli_replay.replay(args, modules, lambda: _connect(args, redis=False))
    except _cli_replay.UsageError as exc:
        raise CliError(str(exc)) from None


async def _send(args: argparse.Namespace) -> int:
    payload = None if args.payload is None else _json_arg(args.payload, "payload")
    async with _connect(args) as client:
        await client.get_handle(args.id).send(args.event, payload, idempotency_key=args.key)
    print(f"sent {args.event} to {args.id}")
    return 0


async def _query(args: argparse.Namespace) -> int:
    values = [_json_arg(a, f"argument {i}") for i, a in enumerate(args.args, 1)]
    async with _connect(args) as client:
        answer = await client.get_handle(args.id).query(args.name, *values, timeout=args.timeout)
    print(msgspec.json.encode(answer).decode())
    return 0


async def _update(args: argparse.Namespace) -> int:
    values = [_json_arg(a, f"argument {i}") for i, a in enumerate(args.args, 1)]
    async with _connect(args) as client:
        answer = await client.get_handle(args.id).update(args.name, *values,
                                                         idempotency_key=args.key,
                                                         timeout=args.timeout)
    print(msgspec.json.encode(answer).decode())
    return 0


async def _cancel(args: argparse.Namespace) -> int:
    async with _connect(args) as client:
        handle = client.get_handle(args.id)
        status = (await handle.describe()).status
        if status != "running":
            raise errors.WorkflowClosedError(f"execution {args.id!r} has already ended ({status})",
                                             workflow_id=args.id)
        await handle.cancel()
    print(f"cancel requested for {args.id}")
    return 0


async def _patches(args: argparse.Namespace) -> int:
    from ._patches import patch_ids_in, patch_report

    module_names = _modules(args)
    if not module_names:
        raise CliError("durable patches needs the workflows' code: pass --module MOD "
                       "(or DURABLE_MODULES=mod1,mod2)")
    modules = [_import(m) for m in module_names]
    workflows = [v for m in modules for v in vars(m).values() if hasattr(v, "__durable_workflow__")]
    async with _connect(args, redis=False) as client:
        report = await patch_report(client, workflows, known_ids=patch_ids_in(modules),
                                    workflow=args.workflow, all_tenants=args.all_tenants,
                                    limit=args.limit)
    if args.json:
        print(msgspec.json.encode(report).decode())
    else:
        for line in _patch_lines(report, args.all_tenants):
            print(line)
    return 1 if report.unchecked else 0


def _patch_lines(report: Any, all_tenants: bool) -> list[str]:
    def name(e: Any) -> str:
        where = f"{e.tenant}/" if all_tenants else ""
        return f"{where}{e.workflow_id} ({e.workflow} v{e.version})"

    lines = [f"checked {report.checked} open execution(s) against today's code"]
    if not report.patches:
        lines.append("no ctx.patched() ids in the code or in the open executions")
    rows = [["PATCH", "OLD PATH", "NEW PATH", "EXECUTIONS ON THE OLD PATH"]]
    for use in report.patches:
        who = ", ".join(map(name, use.old_path)) or "none: safe to remove the old branch"
        rows.append([use.patch_id, str(len(use.old_path)), str(use.new_path), who])
    if report.patches:
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        lines += ["  ".join([*(c.ljust(w) for c, w in zip(row, widths)), row[3]]) for row in rows]
    if report.unchecked:
        lines.append(f"could not check {len(report.unchecked)} execution(s):")
        lines += [f"  {name(u.execution)}: {' '.join(u.reason.split())}" for u in report.unchecked]
    return lines


async def _list(args: argparse.Namespace) -> int:
    async with _connect(args, redis=False) as client:
        records = await client.list(status=args.status, limit=args.limit,
                                    all_tenants=args.all_tenants)
    header = ["ID", "WORKFLOW", "VERSION", "STATUS", "STATE", "UPDATED"]
    rows = [[r.workflow_id, r.workflow, r.version, r.status, r.state or "-",
             _datetime(r.updated_at)] for r in records]
    if args.all_tenants:
        header.insert(0, "TENANT")
        for row, record in zip(rows, records):
            row.insert(0, record.tenant)
    if not rows:
        print("no executions")
        return 0
    _table(header, rows)
    return 0


def _table(header: list[str], rows: list[list[str]]) -> None:
    """Print ``rows`` under ``header`` in left-aligned columns."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


async def _show(args: argparse.Namespace) -> int:
    if args.at is not None:
        return await _show_at(args)
    if args.replay:
        raise CliError("--replay goes with --at WHEN")
    async with _connect(args, redis=False) as client:
        handle = client.get_handle(args.id)
        events = await handle.history(run_id=args.run)
        if not events:
            raise CliError(f"execution {args.id!r} has no run {args.run!r} (the runs are named "
                           "by WorkflowStarted.continued_from and WorkflowContinuedAsNew)")
        if args.json:
            print(encode_history_json(events).decode())
            return 0
        description = await handle.describe()
    for line in _timeline(events):
        print(line)
    print()
    for line in _summary(description):
        print(line)
    return 0


async def _show_at(args: argparse.Namespace) -> int:
    for name in _modules(args):
        _import(name)  # registers the workflow's code, for --replay
    async with _connect(args, redis=False) as client:
        handle = client.get_handle(args.id)
        started = (await handle.describe()).created_at
        try:
            when = _cli_timetravel.moment(args.at, started)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        state = await handle.state_at(when, replay=args.replay, run_id=args.run)
        events = [] if args.json else await handle.history(run_id=state.run_id)
    if args.json:
        print(_cli_timetravel.as_json(state))
        return 0
    for line in _cli_timetravel.render(state, events, _timeline, _clock, _value):
        print(line)
    return 0


# ---- rendering ------------------------------------------------------------------------------


def _datetime(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S.%f")[:-3]


def _value(value: Any, limit: int = 120) -> str:
    text = msgspec.json.encode(value).decode()
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _call(name: str, args: list[Any], kwargs: dict[str, Any]) -> str:
    parts = [_value(a, 60) for a in args] + [f"{k}={_value(v, 60)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


def _timeline(events: list[Event]) -> list[str]:
    """One line per event: seq, local time, type and its salient fields."""
    names: dict[int, str] = {}
    lines = []
    if events:
        lines.append(f"history of {getattr(events[0], 'workflow_id', '?')} "
                     f"(started {_datetime(events[0].time)}, times are local)")
    for event in events:
        if isinstance(event, ActionScheduled):
            names[event.cmd] = event.name
        elif isinstance(event, ChildInitiated):
            names[event.cmd] = event.workflow_id
        detail = _detail(event, names)
        lines.append(f"{event.seq:>4}  {_clock(event.time)}  {type(event).__name__:<17} {detail}".rstrip())
    return lines


def _detail(event: Event, names: dict[int, str]) -> str:
    match event:
        case WorkflowStarted():
            after = "" if event.continued_from is None else f" continues run {event.continued_from}"
            if event.parent is not None:
                after += f" child of {event.parent.workflow_id} (#{event.parent.cmd})"
            return (f"{_call(event.workflow, event.args, event.kwargs)} version={event.version} "
                    f"run={event.run_id}{after}")
        case ChildInitiated():
            return (f"#{event.cmd} {_call(event.workflow, event.args, event.kwargs)} "
                    f"id={event.workflow_id} parent_close={event.parent_close}")
        case ChildStarted():
            return f"#{event.cmd} {names.get(event.cmd, '?')}"
        case ChildStartFailed():
            return f"#{event.cmd} {names.get(event.cmd, '?')}: the workflow id is taken"
        case ChildCompleted():
            return f"#{event.cmd} {names.get(event.cmd, '?')} -> {_value(event.result)}"
        case ChildFailed():
            return (f"#{event.cmd} {names.get(event.cmd, '?')}: {event.error.type}: "
                    f"{event.error.message}")
        case ChildCancelled():
            return f"#{event.cmd} {names.get(event.cmd, '?')}"
        case ChildCancelRequested():
            return f"#{event.cmd} {event.workflow_id} {event.reason}".rstrip()
        case WorkflowContinuedAsNew():
            return f"{_call('next run', event.args, event.kwargs)} run={event.run_id}"
        case Patched():
            return event.patch_id
        case TaskCompleted():
            return "" if event.suspended_at is None else f"waits at {_short(event.suspended_at)}"
        case ActionScheduled():
            return f"#{event.cmd} {_call(event.name, event.args, event.kwargs)}"
        case ActionCompleted():
            return (f"#{event.cmd} {names.get(event.cmd, '?')} -> {_value(event.result)}"
                    f" (attempt {event.attempt})")
        case ActionFailed():
            return (f"#{event.cmd} {names.get(event.cmd, '?')} failed on attempt {event.attempt}: "
                    f"{event.error.type}: {event.error.message}")
        case ActionCancelRequested():
            return f"#{event.cmd} {names.get(event.cmd, '?')}"
        case TimerStarted():
            return f"#{event.cmd} {event.duration:g}s, fires at {_clock(event.fire_at)}"
        case TimerFired() | TimerCancelled():
            return f"#{event.cmd}"
        case EventReceived():
            key = "" if event.key is None else f" key={event.key}"
            return f"{event.name} {_value(event.payload)}{key}"
        case CancelRequested():
            return event.reason
        case UpdateAccepted():
            return f"{_call(event.name, event.args, {})} id={event.id}"
        case UpdateCompleted():
            if event.error is not None:
                return f"{event.name} failed: {event.error.type}: {event.error.message}"
            return f"{event.name} -> {_value(event.result)}"
        case StateChanged():
            return event.state
        case DataChanged():
            return f"del {event.key}" if event.deleted else f"{event.key} = {_value(event.value)}"
        case WorkflowCompleted():
            return _value(event.result)
        case WorkflowFailed():
            return f"{event.error.type}: {event.error.message}"
        case WorkflowCancelled():
            return ""
    return ""


def _short(location: str) -> str:
    """``file.py:line`` of a ``/path/to/file.py:line`` location."""
    return os.path.basename(location)


def _summary(d: durable.Description) -> list[str]:
    """The status block under the timeline: status, state, data, pending work, errors."""
    lines = [f"workflow:  {d.workflow} v{d.version}  id={d.workflow_id}  tenant={d.tenant}",
             f"status:    {d.status}", f"state:     {d.state or '-'}",
             f"data:      {_value(d.data) if d.data else '-'}"]
    if d.suspended_at is not None:
        lines.append(f"waiting:   {d.suspended_at}")
    if d.status == "completed":
        lines.append(f"result:    {_value(d.result, 400)}")
    if d.error is not None:
        lines.append(f"error:     {d.error.type}: {d.error.message}")
    now = time.time()
    for a in d.pending_actions:
        due = f", next attempt in {a.visible_at - now:.1f}s" if a.visible_at > now else ""
        last = f", last error: {a.last_error}" if a.last_error else ""
        lines.append(f"pending action #{a.cmd} {_call(a.name, a.args, a.kwargs)}: "
                     f"attempt {a.attempt}{due}{last}")
    for t in d.pending_timers:
        lines.append(f"pending timer #{t.cmd}: fires at {_clock(t.fire_at)} "
                     f"(in {max(t.fire_at - now, 0):.1f}s)")
    if d.task_error:
        lines.append("task error (the execution is held until this is fixed):")
        lines.extend(f"  {line}" for line in d.task_error.splitlines())
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
