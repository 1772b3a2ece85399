"""``durable worker``, ``durable server`` and ``durable ui``: services that run until a signal.

The first SIGINT or SIGTERM shuts a service down gracefully (a worker stops claiming work and
finishes the tasks in flight); a second one cancels what is left. The "started" line is
printed only once signals are handled, so a supervisor that waits for it may signal at once.
A service started before its PostgreSQL answers waits for it (``_targets.connect``).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Protocol

from .._retention import DEFAULT_RETENTION, GC_EVERY
from .._limits import QueueLimit
from .._telemetry._logs import FORMATS, LEVELS, configure_logging
from .._urls import redact
from ..errors import ServerStoppedError, UsageError
from ._options import Commands, parse_duration
from . import _render
from ._targets import build_worker, connect, load_target, redis_url, store_url, wants_json
from ._ui import add_ui_command, add_ui_options, everyone, ui_server, ui_started, with_ui

if TYPE_CHECKING:
    from durable_server import Server

__all__ = ["add_commands"]

WORKER_HELP: Final = """\
TARGET is MODULE:ATTR (MODULE alone means MODULE:worker); the current directory is on
sys.path. ATTR may be:
  - a function taking a durable.Client and returning a durable.Worker, e.g.
        def worker(client, **options):
            return durable.Worker(client, workflows=[invoice_approval],
                                  actions=[send_email], **options)
    --concurrency / --lease / --queue / --queue-limit / --queue-rate / --metrics-port /
    --metrics-host, when given, are passed to it as keyword arguments (--queue as
    queues=[...], --queue-limit and --queue-rate as queue_limits={NAME:
    durable.QueueLimit(...)}, --metrics-port as metrics_port=PORT);
  - an object or dict with `workflows` and `actions` lists;
  - a list of @durable.workflow and @durable.action functions.
SIGTERM or SIGINT stops claiming work and exits once the tasks in flight have finished
(a second signal aborts them). A worker serves every tenant of the store. Started before
its PostgreSQL answers, it waits for it (a warning every few seconds).

example: durable worker examples.invoice:worker
"""

_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)


def add_commands(commands: Commands) -> None:
    """Register ``worker``, ``server`` and ``ui``."""
    _add_logging(_add_worker(commands))
    _add_logging(_add_server(commands))
    add_ui_command(commands, _ui)


def _add_logging(p: argparse.ArgumentParser) -> None:
    p.add_argument("--log-level", default="INFO", type=str.upper, choices=LEVELS,
                   help="the least severe level logged (default INFO)")
    p.add_argument("--log-format", default="text", choices=FORMATS,
                   help="text lines, or one JSON object per line; inside a workflow task or "
                   "an action both carry workflow_id, run_id, tenant and trace_id")


def _add_worker(commands: Commands) -> argparse.ArgumentParser:
    p = commands.add("worker", _worker, "run workflows and actions until SIGTERM/SIGINT",
                     epilog=WORKER_HELP, raw=True)
    p.add_argument("target", metavar="TARGET", help="MODULE:ATTR (see below)")
    p.add_argument("--concurrency", type=int, metavar="N",
                   help="tasks run at once (Worker default 100)")
    p.add_argument("--lease", type=float, metavar="SECONDS",
                   help="how soon a hung worker's tasks are picked up again (default 30; a "
                   "worker whose process died is noticed at once)")
    p.add_argument("--liveness-timeout", type=float, metavar="SECONDS",
                   help="a worker with no heartbeat this long (its host vanished) is taken "
                   "for dead and its tasks released (default 5)")
    p.add_argument("--queue", action="append", dest="queues", metavar="NAME",
                   help="serve this task queue (repeat for more; default: each workflow's and "
                        "action's own queue)")
    p.add_argument("--queue-limit", action="append", dest="queue_limits", metavar="NAME=N",
                   help="at most N action attempts on queue NAME run at once, across every "
                        "worker that declares it (repeat for more queues)")
    p.add_argument("--queue-rate", action="append", dest="queue_rates", metavar="NAME=RATE",
                   help="at most RATE action attempts on queue NAME start per second, minute "
                        "or hour (RATE like 100/s, 20/m, 5/h), across every worker that "
                        "declares it (repeat for more queues)")
    p.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="serve Prometheus metrics on http://HOST:PORT/metrics (0 picks a port, "
                   "shown in the started line; default: none)")
    p.add_argument("--metrics-host", metavar="HOST",
                   help="the address of --metrics-port (default 127.0.0.1: this machine only)")
    return p


def _add_server(commands: Commands) -> argparse.ArgumentParser:
    p = commands.add("server", _server, "fire timers, start due schedules, re-dispatch lost or "
                     "expired tasks, serve /healthz and /metrics until SIGTERM/SIGINT")
    p.add_argument("--host", default="127.0.0.1", help="HTTP address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080; 0 picks one)")
    p.add_argument("--interval", type=float, default=0.1, metavar="SECONDS",
                   help="how long an idle loop sleeps (default 0.1)")
    p.add_argument("--redispatch-after", type=float, default=2.0, metavar="SECONDS",
                   help="announce a claimable task again after this long (default 2), then "
                        "after as long as it has waited, at most a minute")
    p.add_argument("--liveness-timeout", type=float, default=5.0, metavar="SECONDS",
                   help="release the tasks of a worker with no heartbeat this long (default 5)")
    p.add_argument("--metrics-token", metavar="TOKEN", default=None,
                   help="a secret: /healthz shows its details, and /metrics answers, only to "
                   "requests with 'Authorization: Bearer TOKEN' (env DURABLE_METRICS_TOKEN; "
                   "without one, details are shown on a loopback --host only)")
    p.add_argument("--retention", type=parse_duration, default=DEFAULT_RETENTION,
                   metavar="DURATION", help="delete closed executions this long after they "
                   "closed, unless their workflow or tenant says otherwise (default 30d)")
    p.add_argument("--gc-every", type=float, default=GC_EVERY, metavar="SECONDS",
                   help="how often to look for expired executions (default 60)")
    add_ui_options(p)
    return p


def _logging(command: Callable[[argparse.Namespace], Coroutine[Any, Any, int]],
             ) -> Callable[[argparse.Namespace], Coroutine[Any, Any, int]]:
    """``command`` with its logs on stderr as ``--log-level``/``--log-format`` say, while it
    runs (the handler goes when it returns: ``main()`` may run in a longer-lived process)."""
    @functools.wraps(command)
    async def logged(args: argparse.Namespace) -> int:
        handler = configure_logging(args.log_level, args.log_format)
        try:
            return await command(args)
        finally:
            logging.getLogger().removeHandler(handler)
    return logged


# ---- worker ---------------------------------------------------------------------------------


@_logging
async def _worker(args: argparse.Namespace) -> int:
    name, target = load_target(args.target)
    options = {k: v for k in ("concurrency", "lease", "queues", "liveness_timeout",
                              "metrics_port", "metrics_host")
               if (v := getattr(args, k)) is not None}
    queue_limits = _queue_limits(args.queue_limits or [], args.queue_rates or [])
    if queue_limits:
        options["queue_limits"] = queue_limits
    async with connect(args, service="worker") as client:
        try:
            worker = await build_worker(name, target, client, options)
        except TypeError as exc:  # the target does not take these options
            raise UsageError(f"cannot build the worker from {name}: {exc}") from None
        def started_line() -> str:  # run() binds the metrics port before it awaits
            port = worker.metrics_port
            metrics = None if port is None else \
                f"http://{args.metrics_host or '127.0.0.1'}:{port}/metrics"
            return _said(args, (
                f"durable worker {worker.identity} started: db={store_url(args)} "
                f"workflows={','.join(worker.workflows) or '-'} "
                f"actions={','.join(worker.actions) or '-'} "
                f"queues={','.join(sorted(worker.queues or ())) or 'own'} "
                f"queue-limits={_shown(worker.queue_limits)} "
                f"concurrency={worker.concurrency} lease={worker.lease:g}s"
                + ("" if metrics is None else f" metrics={metrics}")),
                event="started", service="worker", identity=worker.identity,
                db=redact(store_url(args)), workflows=sorted(worker.workflows),
                actions=sorted(worker.actions), queues=sorted(worker.queues or ()) or None,
                queue_limits=worker.queue_limits, concurrency=worker.concurrency,
                lease=worker.lease, metrics=metrics)

        async def started() -> str:
            await asyncio.sleep(0)
            return started_line()

        await _run_until_signalled(worker, started)
        print(_said(args, f"durable worker {worker.identity} stopped", event="stopped",
                    service="worker", identity=worker.identity), flush=True)
    return 0


def _said(args: argparse.Namespace, text: str, **fields: Any) -> str:
    """A service's line: ``text``, or with ``--json`` the ``fields`` as one JSON object."""
    return _render.json(fields) if wants_json(args) else text


def _shown(limits: dict[str, Any]) -> str:
    """A worker's queue limits, as its start line shows them."""
    shown: list[str] = []
    for queue, limit in sorted(limits.items()):
        rate = "" if limit.rate is None else f" {limit.rate:g}/s"
        running = "" if limit.max_concurrent is None else f" {limit.max_concurrent} at once"
        shown.append(f"{queue}:{running}{rate}".replace(": ", ":"))
    return ",".join(shown) or "-"


def _queue_limits(limits: list[str], rates: list[str]) -> dict[str, QueueLimit]:
    """--queue-limit NAME=N and --queue-rate NAME=RATE, as ``Worker(queue_limits=...)``."""
    found: dict[str, dict[str, Any]] = {}
    for option, values in (("--queue-limit", limits), ("--queue-rate", rates)):
        for value in values:
            queue, sep, limit = value.partition("=")
            if not sep or not queue:
                raise UsageError(f"{option} takes NAME=VALUE, like {option} email="
                                 f"{'5' if option == '--queue-limit' else '100/s'}; not {value!r}")
            kind = "max_concurrent" if option == "--queue-limit" else "rate"
            if kind == "max_concurrent":
                try:
                    found.setdefault(queue, {})[kind] = int(limit)
                except ValueError:
                    raise UsageError(f"{option} {value!r}: the limit is a whole number of "
                                     "attempts, like email=5") from None
            else:
                found.setdefault(queue, {})[kind] = limit
    return {queue: QueueLimit(**limits) for queue, limits in found.items()}


# ---- server ---------------------------------------------------------------------------------


@_logging
async def _server(args: argparse.Namespace) -> int:
    server_class = _server_class()
    if args.ui:
        everyone(args)
    async with connect(args, service="server") as client:
        token = args.metrics_token or os.environ.get("DURABLE_METRICS_TOKEN") or None
        server = server_class(client, host=args.host, port=args.port, interval=args.interval,
                              redispatch_after=args.redispatch_after, metrics_token=token,
                              liveness_timeout=args.liveness_timeout,
                              retention=args.retention, gc_every=args.gc_every)
        ui = ui_server(client, args.ui_host, args.ui_port, args.ui_token, args) \
            if args.ui else None

        async def started() -> str:
            await server.wait_started()
            if ui is None:
                return _server_started(server, args)
            await ui.wait_started()
            return _server_started(server, args, ui.url)

        try:
            await _run_until_signalled(server if ui is None else with_ui(server, ui), started,
                                       "durable server stopping")
        except OSError as exc:  # the HTTP port is taken or the address is wrong
            raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc}") from None
        print(_said(args, f"durable server {server.identity} stopped", event="stopped",
                    service="server", identity=server.identity), flush=True)
    return 0


def _server_class() -> type[Server]:
    from durable_server import Server  # here: aiohttp is an extra (MissingExtraError), and slow

    return Server


def _server_started(server: Server, args: argparse.Namespace, ui: str | None = None) -> str:
    redis = redis_url(args)
    return _said(args, (
        f"durable server {server.identity} started: db={redact(store_url(args))} "
        f"redis={redact(redis) if redis else '-'} http={server.url} "
        f"interval={server.interval:g}s redispatch_after={server.redispatch_after:g}s"
        + (f" ui={ui}" if ui else "")),
        event="started", service="server", identity=server.identity,
        db=redact(store_url(args)), redis=redact(redis) if redis else None, http=server.url,
        interval=server.interval, redispatch_after=server.redispatch_after, ui=ui)


async def _ui(args: argparse.Namespace) -> int:
    everyone(args)
    async with connect(args, read_only=True, service="ui") as client:
        ui = ui_server(client, args.host, args.port, args.token, args)

        async def started() -> str:
            await ui.wait_started()
            return ui_started(ui, args)

        await _run_until_signalled(ui, started, "durable ui stopping")
    return 0


# ---- running until a signal -----------------------------------------------------------------


class _Service(Protocol):
    """What :func:`_run_until_signalled` runs: a ``durable.Worker`` or a durable server."""

    def run(self) -> Coroutine[Any, Any, None]:
        """Run until shut down."""
        ...

    def shutdown(self) -> None:
        """Finish what is in flight, then make ``run()`` return."""
        ...


def service_gc() -> None:
    """Collect cyclic garbage less often in a service process of durable's own (``durable
    worker``, ``server``, ``ui``): what a worker makes and drops is freed by reference
    counting, and Python's default thresholds (a young collection every 700 allocations, a
    full one every hundred of those) spent ~12 % of a busy worker's CPU scanning objects
    that live on (bench/RESULTS.md, "The default path without waste")."""
    gc.set_threshold(10_000, 50, 20)


async def _run_until_signalled(service: _Service, started: str | Callable[[], Awaitable[str]],
                               stopping: str = "durable worker stopping: finishing tasks in "
                               "flight") -> None:
    """Run ``service``; the first SIGINT/SIGTERM shuts it down gracefully, the second aborts.

    ``started`` is the line to print once signals are handled (or a coroutine function that
    returns it once the service has started); ``stopping`` is printed on the first signal.
    """
    service_gc()
    run = asyncio.ensure_future(service.run())
    with _Signals(service, run, stopping) as signals:
        try:
            print(await _started_line(started, run), flush=True)
            await run
        except asyncio.CancelledError:
            if not signals.aborted:
                raise


async def _started_line(started: str | Callable[[], Awaitable[str]],
                        run: asyncio.Future[None]) -> str:
    if isinstance(started, str):
        return started
    try:
        return await started()
    except ServerStoppedError:
        await run  # it failed to start: raise why
        raise


class _Signals:
    """Within the block, SIGINT and SIGTERM shut the service down, then abort its run."""

    def __init__(self, service: _Service, run: asyncio.Future[None], stopping: str) -> None:
        self.service = service
        self.run = run
        self.stopping = stopping
        self.received = 0
        self.loop = asyncio.get_running_loop()

    @property
    def aborted(self) -> bool:
        """Whether a second signal cancelled the run."""
        return self.received >= 2

    def __enter__(self) -> _Signals:
        for sig in _SIGNALS:
            self.loop.add_signal_handler(sig, self._on_signal)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for sig in _SIGNALS:
            self.loop.remove_signal_handler(sig)

    def _on_signal(self) -> None:
        self.received += 1
        if self.received == 1:
            print(f"{self.stopping} (signal again to abort)", file=sys.stderr, flush=True)
            self.service.shutdown()
        else:
            self.run.cancel()
