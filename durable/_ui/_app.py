"""The UI's aiohttp application and the service that serves it (``durable ui``, and
``durable server --ui`` beside the server's loops).

Routes (all behind ``_security.Access.middleware``):

    GET  /                                         executions: filters, counts, a page
    GET  /executions/{tenant}/{id}                 one execution (?run=RUN, ?at=SEQ)
    GET  /executions/{tenant}/{id}/live?v=VERSION  its body if it changed (htmx polling)
    GET  /executions/{tenant}/{id}/at?seq=N        time travel (a fragment)
    GET  /executions/{tenant}/{id}/history.json    the run's history, to download
    POST /executions/{tenant}/{id}/{send|cancel|query}
    GET  /schedules;  POST /schedules/{tenant}/{id}/{pause|unpause|trigger}
    GET  /patches
    GET, POST /login;  POST /logout;  GET /static/...
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Final
from urllib.parse import urlsplit

from aiohttp import web

from .._client import Client
from .._scope import Scope
from ..errors import ServerStoppedError
from ._operate import Operate
from ._render import render
from ._security import SESSION_COOKIE, Access, ui_access
from ._views import Views

__all__ = ["UiServer", "make_app"]

logger = logging.getLogger("durable.ui")
_STATIC: Final = Path(str(resources.files("durable._ui").joinpath("static")))


def make_app(client: Client, access: Access, modules: Sequence[ModuleType] = ()) -> web.Application:
    """The UI on ``client`` (connected for every tenant: requests are scoped by ``access``);
    ``modules`` hold the workflows, for the patches page."""
    views, operate = Views(client), Operate(client, modules)
    app = web.Application(middlewares=[access.middleware])
    login = _Login(access)
    app.router.add_get("/", views.executions)
    base = "/executions/{tenant}/{workflow_id}"
    app.router.add_get(base, views.execution)
    app.router.add_get(base + "/live", views.live)
    app.router.add_get(base + "/at", views.at)
    app.router.add_get(base + "/history.json", views.history_json)
    app.router.add_post(base + "/{op}", operate.execution_op)
    app.router.add_get("/schedules", operate.schedules)
    app.router.add_post("/schedules/{tenant}/{schedule_id}/{op}", operate.schedule_op)
    app.router.add_get("/patches", operate.patches)
    app.router.add_get("/login", login.form)
    app.router.add_post("/login", login.submit)
    app.router.add_post("/logout", login.logout)
    app.router.add_static("/static/", _STATIC, append_version=False)
    return app


class _Login:
    def __init__(self, access: Access) -> None:
        self.access = access

    async def form(self, request: web.Request) -> web.Response:
        return render(request, "login.html", {"error": None, "next": _local(request)})

    async def submit(self, request: web.Request) -> web.Response:
        form = await request.post()
        session = self.access.session_for(str(form.get("token", "")))
        if session is None:
            return render(request, "login.html", {"error": "that is not a token of this UI",
                                                  "next": _local(request)}, status=401)
        response = web.HTTPSeeOther(_local(request, str(form.get("next", "/"))))
        response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="Strict", path="/")
        raise response

    async def logout(self, request: web.Request) -> web.Response:
        response = web.HTTPSeeOther("/login")
        response.del_cookie(SESSION_COOKIE, path="/")
        raise response


def _local(request: web.Request, target: str | None = None) -> str:
    """A path on this site to go to after logging in (never another site)."""
    target = request.query.get("next", "/") if target is None else target
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc and target.startswith("/") else "/"


class UiServer:
    """The web UI as a service: ``run()`` until ``shutdown()``; binds ``host`` (default
    loopback: open; elsewhere ``tokens`` are required, see ``_security``)."""

    def __init__(self, client: Client, *, host: str = "127.0.0.1", port: int = 8233,
                 tokens: dict[str, Scope] | None = None,
                 modules: Sequence[ModuleType] = ()) -> None:
        self.client = client
        self.host = host
        self.port = port
        self.access = ui_access(host, tokens or {}, client.tenants)
        self.modules = modules
        self._stop = asyncio.Event()
        self._started = asyncio.Event()
        self._failed: BaseException | None = None

    @property
    def url(self) -> str:
        """Where the UI listens, e.g. ``http://127.0.0.1:8233``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def run(self) -> None:
        """Serve until :meth:`shutdown` or cancellation."""
        runner = web.AppRunner(make_app(self.client, self.access, self.modules),
                               access_log=None, shutdown_timeout=2.0)
        try:
            await runner.setup()
            await web.TCPSite(runner, self.host, self.port).start()
            self.port = runner.addresses[0][1]
            logger.info("durable ui listening on %s", self.url)
            self._started.set()
            await self._stop.wait()
        except BaseException as exc:
            self._failed = exc
            self._started.set()
            raise
        finally:
            await asyncio.shield(runner.cleanup())

    async def wait_started(self) -> None:
        """Return once the UI listens (``ServerStoppedError`` if it could not)."""
        await self._started.wait()
        if self._failed is not None:
            raise ServerStoppedError(f"the UI could not listen on {self.host}:{self.port}: "
                                     f"{self._failed}")

    def shutdown(self) -> None:
        """Stop serving (``run()`` returns)."""
        self._stop.set()
