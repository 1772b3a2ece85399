"""``durable ui`` and ``durable server --ui``: their options, the UI service on a client, and
a service made of the server and the UI. ``_workers`` runs them until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import TYPE_CHECKING, Any, Protocol

from .._urls import redact
from ..errors import UsageError
from ._options import Commands, Handler, add_module_option
from ._targets import import_modules, store_url

if TYPE_CHECKING:
    from .._client import Client
    from .._ui import UiServer

__all__ = ["add_ui_command", "add_ui_options", "everyone", "ui_server", "ui_started", "with_ui"]

_TOKEN_HELP = ("a secret that unlocks the UI (repeatable): TOKEN allows every tenant, "
               "TOKEN:acme,globex only those (env DURABLE_UI_TOKENS, space-separated); "
               "required unless the UI binds to loopback")


def add_ui_command(commands: Commands, handler: Handler) -> None:
    """Register ``ui`` (``_workers`` runs it, as it runs the worker and the server)."""
    p = commands.add("ui", handler, "serve the web UI: executions, timelines, time travel, "
                     "operations, schedules and patches",
                     epilog="example: durable ui --db postgresql://... --module billing "
                     "(then open http://127.0.0.1:8233)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; "
                   "any other needs --token)")
    p.add_argument("--port", type=int, default=8233, help="port (default 8233; 0 picks one)")
    p.add_argument("--token", action="append", default=[], metavar="TOKEN[:TENANTS]",
                   help=_TOKEN_HELP)
    add_module_option(p, "the workflows (for the patches page)")


def add_ui_options(p: argparse.ArgumentParser) -> None:
    """``--ui`` and its address and tokens, for ``durable server``."""
    p.add_argument("--ui", action="store_true", help="serve the web UI too (see durable ui)")
    p.add_argument("--ui-host", default="127.0.0.1", help="the UI's address (default 127.0.0.1)")
    p.add_argument("--ui-port", type=int, default=8233, help="the UI's port (default 8233)")
    p.add_argument("--ui-token", action="append", default=[], metavar="TOKEN[:TENANTS]",
                   help=_TOKEN_HELP)


def ui_server(client: Client, host: str, port: int, tokens: list[str],
              args: argparse.Namespace) -> UiServer:
    """The UI on ``client``, with tokens from the options and ``DURABLE_UI_TOKENS``."""
    try:  # imported here: aiohttp and jinja2 come with the server extra
        from .._ui import UiServer, parse_tokens
    except ImportError as exc:
        raise UsageError(f"the web UI needs the server extra (pip install 'durable[server]'): "
                         f"{exc}") from None
    specs = [*tokens, *os.environ.get("DURABLE_UI_TOKENS", "").split()]
    modules = import_modules(args) if getattr(args, "module", None) is not None else []
    return UiServer(client, host=host, port=port, tokens=parse_tokens(specs), modules=modules)


def everyone(args: argparse.Namespace) -> None:
    """The UI's client acts for every tenant unless ``--tenants`` narrows it (tokens scope
    each request)."""
    if not (getattr(args, "tenants", None) or os.environ.get("DURABLE_TENANTS")):
        args.tenants = "*"


def ui_started(ui: UiServer, args: argparse.Namespace) -> str:
    """The line ``durable ui`` prints once it listens."""
    return f"durable ui listening on {ui.url} db={redact(store_url(args))}"


class _Service(Protocol):
    async def run(self) -> None: ...

    def shutdown(self) -> None: ...


class with_ui:  # noqa: N801 - a service made of two
    """``service`` and the UI as one service: both run, both shut down; if either stops, so
    does the other."""

    def __init__(self, service: Any, ui: UiServer) -> None:
        self.service = service
        self.ui = ui

    async def run(self) -> None:
        """Run both until both return."""
        async def one(service: _Service, other: _Service) -> None:
            try:
                await service.run()
            finally:
                other.shutdown()

        async with asyncio.TaskGroup() as group:
            group.create_task(one(self.service, self.ui))
            group.create_task(one(self.ui, self.service))

    def shutdown(self) -> None:
        """Shut both down."""
        self.service.shutdown()
        self.ui.shutdown()
