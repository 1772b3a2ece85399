"""``durable replay``: recorded histories (files or a store) against today's code.

Each history is replayed by the same engine a worker runs. A divergence is printed with the
source line that no longer matches, as it is found; progress goes to stderr; the summary line
comes last and the exit status is 1 if any history diverged or could not be replayed.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import warnings
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Final

from .._corpus import Outcome, expects_divergence, history_files, replay_one, replayer_for
from .._history import Event
from .._replay import NonDeterminismWarning
from .._replay._replayer import Replayer, load_history
from ..errors import HistoryError, UsageError
from . import _render
from ._options import UNITS, Commands, add_module_option
from ._targets import connect, import_modules, iso_moment, local_times, wants_json

__all__ = ["REPLAY_HELP", "add_commands", "parse_since"]

REPLAY_HELP: Final = """\
With FILE arguments (JSON histories from `durable show ID --json`, or folders of them),
replays those; without, replays the executions in the store (--db), oldest first, filtered
by --workflow, --status, --since and --all-tenants. A history named *.nondeterministic.json
must diverge. Each divergence is printed with the source line that no longer matches; the
exit status is 1 if any history diverged or could not be replayed.

examples:
  durable replay --db postgresql://app@db/app --module myapp.workflows --since 7d
  durable replay tests/replay/histories --module myapp.workflows
"""

_AGE: Final = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_STORE_OPTIONS: Final = ("workflow", "status", "since", "all_tenants")

Replayed = tuple[Outcome, list[str]]  # the outcome, and the warnings about changed arguments


def add_commands(commands: Commands) -> None:
    """Register ``replay``."""
    p = commands.add("replay", _replay, "replay recorded histories against today's code; exit "
                     "1 on any divergence", epilog=REPLAY_HELP, raw=True)
    p.add_argument("files", metavar="FILE", nargs="*",
                   help="history JSON files or folders of them (default: the store's executions)")
    add_module_option(p, "the workflows")
    p.add_argument("--workflow", metavar="NAME", help="only executions of this workflow")
    p.add_argument("--status", choices=["running", "completed", "failed", "cancelled"],
                   help="only executions with this status")
    p.add_argument("--since", metavar="TIME", help="only executions started at or after TIME: "
                   "an ISO 8601 date/time (2026-01-05, 2026-01-05T10:00Z; UTC without a zone, "
                   "or local with --local) or an age (30m, 12h, 7d)")
    p.add_argument("--all-tenants", action="store_true", help="executions of every tenant")
    p.add_argument("--strict", action="store_true",
                   help="changed arguments or timer durations are divergences too")
    p.add_argument("--progress", type=float, default=2.0, metavar="SECONDS",
                   help="a progress line on stderr at most this often (default 2; 0: each one)")
    p.add_argument("--verbose", "-v", action="store_true", help="also list the histories that pass")


def parse_since(text: str, now: float | None = None, *, local: bool = False) -> float:
    """``--since``: an ISO 8601 date/time (UTC without a zone, unless ``local``), or an age
    such as ``7d``; epoch seconds."""
    age = _AGE.match(text.strip())
    if age:
        return (time.time() if now is None else now) - float(age[1]) * UNITS[age[2]]
    when = iso_moment(text, local)
    if when is None:
        raise UsageError(f"--since {text!r} is neither a date/time (2026-01-05, "
                         "2026-01-05T10:00Z) nor an age (30m, 12h, 7d)")
    return when.timestamp()


async def _replay(args: argparse.Namespace) -> int:
    modules = import_modules(args)
    replayer = replayer_for(modules, strict=args.strict)
    if not modules or not replayer.workflows:
        raise UsageError("no workflows to replay with: pass the modules that define them with "
                         "--module MOD or DURABLE_MODULES=mod1,mod2")
    report = _Report(args.progress, args.verbose, as_json=wants_json(args))
    if args.files:
        _replay_files(args, replayer, report)
    else:
        async for source, events in _store_histories(args):
            if isinstance(events, HistoryError):  # damaged: it cannot be replayed
                report.add(source, (Outcome("failed", None, events), []), None)
            else:
                report.add(source, _replay_one(replayer, events, False), events)
    return report.finish("histories" if args.files else "executions")


def _replay_files(args: argparse.Namespace, replayer: Replayer, report: _Report) -> None:
    for path in _history_files(args):
        try:
            events: Any = load_history(path)
        except Exception as exc:  # unreadable, or not a history
            report.add(str(path), (Outcome("failed", None, exc), []), None)
            continue
        report.add(str(path), _replay_one(replayer, events, expects_divergence(path)), events)


def _history_files(args: argparse.Namespace) -> list[Path]:
    for option in _STORE_OPTIONS:
        if getattr(args, option):
            flag = "--" + option.replace("_", "-")
            what = "to files" if option == "all_tenants" else "to history files"
            raise UsageError(f"{flag} selects executions in a store; it does not apply {what}")
    try:
        files = history_files(args.files)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    if not files:
        raise UsageError(f"no *.json history files in {', '.join(args.files)}")
    return files


async def _store_histories(args: argparse.Namespace,
                           ) -> AsyncIterator[tuple[str, list[Event] | HistoryError]]:
    """Each execution's history, or the damage that keeps it from being read."""
    since = None if args.since is None else parse_since(args.since, local=local_times(args))
    async with connect(args, redis=False, read_only=True) as client:
        async for record in client.iter_executions(
                workflow=args.workflow, status=args.status, since=since,
                all_tenants=args.all_tenants):
            handle = client.get_handle(record.workflow_id, tenant=record.tenant)
            try:
                history: list[Event] | HistoryError = await handle.history()
            except HistoryError as exc:
                history = exc
            yield f"{record.tenant}/{record.workflow_id}", history


def _replay_one(replayer: Replayer, history: Any, expect: bool) -> Replayed:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NonDeterminismWarning)
        outcome = replay_one(replayer, history, expect_divergence=expect)
    changed = [str(w.message) for w in caught if issubclass(w.category, NonDeterminismWarning)]
    return outcome, changed


class _Report:
    """Prints each problem as it is found, progress on stderr, and the summary; with
    ``as_json``, one document at the end instead (the counts and the histories listed)."""

    def __init__(self, progress: float, verbose: bool, *, as_json: bool = False) -> None:
        self.verbose = verbose
        self.as_json = as_json
        self.counts: Counter[str] = Counter()
        self.listed: list[dict[str, Any]] = []  # for --json: problems (verbose: every one)
        self._progress = _render.Progress(progress)

    def add(self, source: str, replayed: Replayed, events: Sequence[Event] | None) -> None:
        """Count one history and print what went wrong with it (or, verbose, that it passed)."""
        outcome, changed = replayed
        self.counts[outcome.status] += 1
        self.counts["changed"] += bool(changed)
        if self.as_json:
            if outcome.status != "ok" or changed or self.verbose:
                self.listed.append(_entry(source, outcome, changed, events))
            self._tick()
            return
        label = _label(source, events)
        if outcome.status == "diverged":
            print(f"DIVERGED {label}\n{_indent(str(outcome.error))}", flush=True)
        elif outcome.status == "failed":
            error = outcome.error
            print(f"FAILED   {label}: {type(error).__name__}: {error}", flush=True)
        elif self.verbose:
            print(f"ok       {label}{_how(outcome)}", flush=True)
        for message in changed:
            print(f"CHANGED  {label}: {message}", flush=True)
        self._tick()

    def _tick(self) -> None:
        done = sum(self.counts[s] for s in ("ok", "diverged", "failed"))
        rate = self._progress.rate(done)
        if rate is None:
            return
        print(f"replay: {done} replayed, {self.counts['diverged']} diverged, "
              f"{self.counts['failed']} failed ({rate:.0f}/s)", file=sys.stderr, flush=True)

    def finish(self, what: str) -> int:
        """Print the summary; return the exit status."""
        ok, diverged, failed = (self.counts[s] for s in ("ok", "diverged", "failed"))
        total = ok + diverged + failed
        if self.as_json:
            print(_render.json({"replayed": total, "what": what, "ok": ok, "diverged": diverged,
                                "failed": failed, "changed": self.counts["changed"],
                                "histories": self.listed}))
            return 1 if diverged or failed else 0
        if total == 0:
            print(f"no {what} matched: nothing to replay")
            return 0
        n_changed = self.counts["changed"]
        changed = f", {n_changed} with changed arguments" if n_changed else ""
        print(f"replayed {total} {what}: {ok} ok, {diverged} diverged, {failed} failed{changed}")
        return 1 if diverged or failed else 0


def _entry(source: str, outcome: Outcome, changed: list[str],
           events: Sequence[Event] | None) -> dict[str, Any]:
    """One history in ``--json``'s ``histories``."""
    error = outcome.error
    result = outcome.result
    return {"source": source, "workflow": getattr(events[0], "workflow", None) if events else None,
            "events": len(events) if events else 0, "status": outcome.status,
            "error_type": None if error is None else type(error).__name__,
            "error": None if error is None else str(error), "changed": changed,
            "suspended_at": None if result is None or result.done else result.suspended_at}


def _label(source: str, events: Sequence[Event] | None) -> str:
    if not events:
        return source
    workflow = getattr(events[0], "workflow", "?")
    return f"{source} ({workflow}, {len(events)} events)"


def _how(outcome: Outcome) -> str:
    if outcome.error is not None:
        return ": diverged, as its name says it must"
    result = outcome.result
    if result is None or result.done:
        return ""
    return f": waits at {result.suspended_at or 'its end'}"


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())
