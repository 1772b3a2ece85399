"""The server's HTTP API on aiohttp: ``GET /healthz`` and ``GET /metrics``.

The API knows only what it serves: a ``health()`` callable (whether the server is healthy,
and the details) and the server's ``Metrics``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from ._metrics import Metrics

__all__ = ["Health", "make_app"]

Health = Callable[[], tuple[bool, dict[str, Any]]]


def make_app(health: Health, metrics: Metrics) -> web.Application:
    """The aiohttp application that serves ``health()`` and ``metrics``."""
    api = _Api(health, metrics)
    app = web.Application()
    app.router.add_get("/healthz", api.healthz)
    app.router.add_get("/metrics", api.metrics)
    return app


class _Api:
    def __init__(self, health: Health, metrics: Metrics) -> None:
        self.health = health
        self._metrics = metrics

    async def healthz(self, request: web.Request) -> web.Response:
        """200 while the store answers, 503 with the reason otherwise (for probes and balancers)."""
        healthy, body = self.health()
        return web.json_response(body, status=200 if healthy else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        """The server's own registry in the Prometheus text format."""
        return web.Response(body=self._metrics.exposition(),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})
