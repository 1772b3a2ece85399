"""The UI's pages that read: executions (filtered, counted, paged), one execution (its
timeline, state, pending work, run chain, time travel) and its history as JSON.

Every page is whole HTML that works without JavaScript; with htmx, the execution page polls
``/live`` for a newer body (204 while nothing changed) and the time slider fetches ``/at``.
"""

from __future__ import annotations

import time
from typing import Any, Final

from aiohttp import web

from .. import _pages as pages
from .._cli._render import json as to_json
from .._client import Client, Description
from .._history import Event, WorkflowContinuedAsNew, WorkflowStarted
from .._stores._listing import display_status
from ..errors import DurableError, HistoryError, WorkflowNotFoundError
from . import _timeline
from ._render import render
from ._security import allowed, scope_of

__all__ = ["Views"]

_CHAIN: Final = 20  # earlier runs shown at most
_FILTERS: Final = ("tenant", "workflow", "status", "since", "until", "id_prefix")


class Views:
    """GET handlers over one client (connected for every tenant; each request is scoped)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    # ---- executions -------------------------------------------------------------------------

    async def executions(self, request: web.Request) -> web.Response:
        """The executions page: filters, counts per status, one page, the next page's link."""
        q = {k: request.query.get(k, "").strip() for k in _FILTERS}
        context: dict[str, Any] = {"q": q, "statuses": pages.LIST_STATUSES,
                                   "cap": pages.COUNT_CAP, "error": None, "records": [],
                                   "counts": None, "after": None, "status_of": display_status}
        status = 200
        try:
            where = self._where(request, q)
            records, after = await pages.page(self.client, where, limit=_limit(request),
                                              after=request.query.get("after") or None)
            counts = await pages.counts(self.client, where)
            context.update(records=records, after=after, counts=counts)
        except DurableError as exc:
            context["error"], status = str(exc), 400
        context["next_query"] = {k: v for k, v in q.items() if v}
        return render(request, "executions.html", context, status=status)

    def _where(self, request: web.Request, q: dict[str, str]) -> Any:
        scope = scope_of(request)
        tenants = [allowed(request, q["tenant"])] if q["tenant"] else \
            (None if scope is None else sorted(scope))
        now = time.time()
        since, until = (pages.parse_when(q[k], now=now) if q[k] else None
                        for k in ("since", "until"))
        return pages.query(self.client, tenants=tenants, workflow=q["workflow"] or None,
                           status=q["status"] or None, since=since, until=until,
                           id_prefix=q["id_prefix"] or None)

    # ---- one execution ----------------------------------------------------------------------

    async def execution(self, request: web.Request) -> web.Response:
        """One execution's page."""
        context = await self._execution(request)
        at = request.query.get("at")
        if at and at.isdigit():
            context["at"] = await self._state_at(request, int(at))
        return render(request, "execution.html", context)

    async def live(self, request: web.Request) -> web.StreamResponse:
        """The execution's body if it changed since version ``v``; else 204 (htmx keeps it)."""
        context = await self._execution(request)
        if request.query.get("v") == context["version"]:
            return web.Response(status=204)
        return render(request, "_execution_body.html", context)

    async def at(self, request: web.Request) -> web.Response:
        """Time travel: the execution as it was after event ``seq`` (a fragment)."""
        seq = request.query.get("seq") or request.query.get("at", "")  # the slider's name
        if not seq.isdigit():
            raise web.HTTPBadRequest(text="seq is the number of an event (1, 2, 3 ...)")
        return render(request, "_state_at.html", {"at": await self._state_at(request, int(seq))})

    async def history_json(self, request: web.Request) -> web.Response:
        """The run's history as a JSON download (as ``durable show ID --json``)."""
        handle = self._handle(request)
        events = await self._read(handle.history(run_id=request.query.get("run") or None))
        name = f"{handle.workflow_id}.history.json".replace('"', "")
        return web.Response(text=to_json(events), content_type="application/json",
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})

    def _handle(self, request: web.Request) -> Any:
        tenant = allowed(request, request.match_info["tenant"])
        return self.client.get_handle(request.match_info["workflow_id"], tenant=tenant)

    @staticmethod
    async def _read(read: Any) -> Any:
        try:
            return await read
        except WorkflowNotFoundError as exc:
            raise web.HTTPNotFound(text=str(exc)) from None

    async def _state_at(self, request: web.Request, seq: int) -> dict[str, Any]:
        handle = self._handle(request)
        try:
            state = await handle.state_at(seq, run_id=request.query.get("run") or None)
        except DurableError as exc:
            return {"seq": seq, "error": str(exc)}
        return {"seq": seq, "error": None, "state": state, "data": to_json(state.data),
                "pending": [_timeline.woke_by(e, {}) or type(e).__name__ for e in state.pending]}

    async def _execution(self, request: web.Request) -> dict[str, Any]:
        handle = self._handle(request)
        run = request.query.get("run") or None
        d: Description = await self._read(handle.describe())
        damaged: str | None = None
        events: list[Event]
        try:
            events = await handle.history(run_id=run)
        except HistoryError as exc:
            events, damaged = [], str(exc)
        if run is not None and not events:
            raise web.HTTPNotFound(text=f"execution {d.workflow_id!r} has no run {run!r}")
        current = run is None or run == d.run_id
        ended = not current or d.status != "running"
        timeline = _timeline.build(events, now=time.time(), ended=ended,
                                   pending=d.pending_actions if current else ())
        first = events[0] if events and isinstance(events[0], WorkflowStarted) else None
        last = events[-1] if events else None
        return {
            "d": d, "status": "held" if d.status == "running" and d.task_error else d.status,
            "events": events, "timeline": timeline, "current": current, "damaged": damaged,
            "run_id": run or d.run_id, "parent": first.parent if first else None,
            "chain": await self._chain(handle, first),
            "next_run": last.run_id if isinstance(last, WorkflowContinuedAsNew) else None,
            "data": to_json(d.data), "result": to_json(d.result), "last_seq": len(events),
            "version": f"{d.run_id}:{d.history_length}:{d.status}:{bool(d.task_error)}:"
                       f"{len(d.pending_actions)}:{len(d.pending_timers)}",
        }

    async def _chain(self, handle: Any, first: WorkflowStarted | None) -> list[str]:
        """The earlier runs this one continues, oldest first (at most ``_CHAIN``)."""
        runs: list[str] = []
        previous = None if first is None else first.continued_from
        while previous is not None and len(runs) < _CHAIN:
            runs.append(previous)
            head = await self.client.store.read_history(handle.tenant, handle.workflow_id,
                                                        run_id=previous, limit=1)
            previous = head[0].continued_from if head and isinstance(
                head[0], WorkflowStarted) else None
        return runs[::-1]


def _limit(request: web.Request) -> int:
    text = request.query.get("limit", "50")
    return min(int(text), 500) if text.isdigit() and int(text) > 0 else 50
