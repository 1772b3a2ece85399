"""The server's HTTP API on aiohttp: ``GET /healthz`` and ``GET /metrics``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from ._server import Server

__all__ = ["make_app"]


def make_app(server: Server) -> web.Application:
    """The aiohttp application that serves ``server``'s health and metrics."""
    api = _Api(server)
    app = web.Application()
    app.router.add_get("/healthz", api.healthz)
    app.router.add_get("/metrics", api.metrics)
    return app


class _Api:
    def __init__(self, server: Server) -> None:
        self.server = server

    async def healthz(self, request: web.Request) -> web.Response:
        """200 while the store answers, 503 with the reason otherwise (for probes and balancers)."""
        healthy, body = self.server.health()
        return web.json_response(body, status=200 if healthy else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        """The server's own registry in the Prometheus text format."""
        return web.Response(body=self.server.metrics.exposition(),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})
