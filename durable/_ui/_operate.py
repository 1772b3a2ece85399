"""The UI's pages that act: send an event, cancel, run a query; schedules (pause, unpause,
trigger); patches (which open executions still need each patch's old path).

Every action is two POSTs: the first shows what will happen (a confirmation page with the
same fields and ``confirm=yes``), the second does it and goes back to the page it came from
(303). Both are CSRF-checked (``_security``); every tenant named is checked against the
request's scope.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from types import ModuleType
from typing import Any, Final
from urllib.parse import quote, urlencode

from aiohttp import web

from .._cli._render import json as to_json
from .._client import Client
from .._patches import PatchReport, patch_ids_in, patch_report
from ..errors import DurableError
from ._render import render
from ._security import allowed, scope_of

__all__ = ["Operate"]

_OPS: Final = {"send": "Send event", "cancel": "Cancel", "query": "Run query"}
_SCHEDULE_OPS: Final = {"pause": "Pause", "unpause": "Unpause", "trigger": "Trigger now"}


async def _asked(request: web.Request, ops: dict[str, str], what: str,
                 ) -> tuple[str, str, Any]:
    """An operation's POST: its name (one of ``ops``, else 404), its tenant (in the request's
    scope) and its form."""
    op = request.match_info["op"]
    if op not in ops:
        raise web.HTTPNotFound(text=f"no operation {op!r}: {what}")
    return op, allowed(request, request.match_info["tenant"]), await request.post()


def _confirmed(request: web.Request, form: Any, context: dict[str, Any]) -> web.Response | None:
    """The confirmation page, unless the form says the operation was confirmed."""
    return None if form.get("confirm") == "yes" else render(request, "confirm.html", context)


def _failed(request: web.Request, context: dict[str, Any], exc: DurableError) -> web.Response:
    context["error"] = f"{type(exc).__name__}: {exc}"
    return render(request, "confirm.html", context, status=409)


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text) if text.strip() else None
    except json.JSONDecodeError as exc:
        raise web.HTTPBadRequest(text=f"{what} is not valid JSON: {exc.msg} (a string needs "
                                 "quotes: \"text\")") from None


class Operate:
    """POST handlers, schedules and patches over one client."""

    def __init__(self, client: Client, modules: Sequence[ModuleType] = ()) -> None:
        self.client = client
        self.modules = list(modules)

    # ---- one execution ----------------------------------------------------------------------

    async def execution_op(self, request: web.Request) -> web.StreamResponse:
        """send | cancel | query, after a confirmation."""
        op, tenant, form = await _asked(request, _OPS, "send, cancel or query")
        workflow_id = request.match_info["workflow_id"]
        fields = {k: str(form.get(k, "")) for k in ("name", "payload", "args")}
        page = f"/executions/{quote(tenant)}/{quote(workflow_id)}"
        payload = _json(fields["payload"], "the payload")
        args = _json(fields["args"] or "[]", "the arguments")
        if op == "query" and not isinstance(args, list):
            raise web.HTTPBadRequest(text="the query's arguments are a JSON array: [1, \"a\"]")
        if op != "cancel" and not fields["name"]:
            raise web.HTTPBadRequest(text=f"{_OPS[op].lower()} needs a name")
        context: dict[str, Any] = {
            "title": f"{_OPS[op]}: {workflow_id}", "action": request.path, "back": page,
            "fields": fields, "op": op, "tenant": tenant, "workflow_id": workflow_id,
            "payload": to_json(payload), "answer": None, "error": None}
        if (confirm := _confirmed(request, form, context)) is not None:
            return confirm
        handle = self.client.get_handle(workflow_id, tenant=tenant)
        try:
            if op == "send":
                await handle.send(fields["name"], payload)
                done = f"sent {fields['name']}"
            elif op == "cancel":
                await handle.cancel()
                done = "cancel requested"
            else:
                context["answer"] = to_json(await handle.query(fields["name"], *args,
                                                               timeout=10.0))
                return render(request, "confirm.html", context)
        except DurableError as exc:
            return _failed(request, context, exc)
        raise web.HTTPSeeOther(f"{page}?{urlencode({'done': done})}")

    # ---- schedules --------------------------------------------------------------------------

    async def schedules(self, request: web.Request) -> web.Response:
        """Schedules of the tenants the request may see."""
        scope = scope_of(request)
        if scope is None:
            found = await self.client.list_schedules(all_tenants=True, limit=1000)
        else:
            found = [s for t in sorted(scope)
                     for s in await self.client.list_schedules(tenant=t, limit=1000)]
        return render(request, "schedules.html", {"schedules": found,
                                                  "ops": _SCHEDULE_OPS})

    async def schedule_op(self, request: web.Request) -> web.StreamResponse:
        """pause | unpause | trigger a schedule, after a confirmation."""
        op, tenant, form = await _asked(request, _SCHEDULE_OPS, "pause, unpause or trigger")
        schedule_id = request.match_info["schedule_id"]
        context: dict[str, Any] = {
            "title": f"{_SCHEDULE_OPS[op]}: schedule {schedule_id}", "op": op,
            "action": request.path, "back": "/schedules", "fields": {}, "tenant": tenant,
            "workflow_id": schedule_id, "payload": "null", "answer": None, "error": None}
        if (confirm := _confirmed(request, form, context)) is not None:
            return confirm
        handle = self.client.get_schedule(schedule_id, tenant=tenant)
        try:
            await (handle.trigger() if op == "trigger" else getattr(handle, op)())
        except DurableError as exc:
            return _failed(request, context, exc)
        raise web.HTTPSeeOther(f"/schedules?{urlencode({'done': f'{op} {schedule_id}'})}")

    # ---- patches ----------------------------------------------------------------------------

    async def patches(self, request: web.Request) -> web.Response:
        """Per patch id, the open executions still on its old path (needs ``--module``)."""
        context: dict[str, Any] = {"report": None, "modules": [m.__name__ for m in self.modules]}
        if self.modules:
            workflows = [v for m in self.modules for v in vars(m).values()
                         if hasattr(v, "__durable_workflow__")]
            known = patch_ids_in(self.modules)
            scope = scope_of(request)
            if scope is None:
                context["report"] = await patch_report(self.client, workflows, known_ids=known,
                                                       all_tenants=True)
            else:
                reports = [await patch_report(self._client_for(t), workflows, known_ids=known)
                           for t in sorted(scope)]
                context["report"] = _merge(reports)
        return render(request, "patches.html", context)

    def _client_for(self, tenant: str) -> Client:
        """A client on the same store that acts for ``tenant`` only (never closed: the store
        is the UI's)."""
        return Client(self.client.store, dispatcher=self.client.dispatcher, tenant=tenant)


def _merge(reports: Sequence[PatchReport]) -> PatchReport:
    """One report of several tenants' reports."""
    uses: dict[str, Any] = {}
    for report in reports:
        for use in report.patches:
            got = uses.get(use.patch_id)
            uses[use.patch_id] = use if got is None else type(use)(
                use.patch_id, [*got.old_path, *use.old_path], got.new_path + use.new_path)
    return PatchReport(sum(r.checked for r in reports), [uses[k] for k in sorted(uses)],
                       [u for r in reports for u in r.unchecked])
