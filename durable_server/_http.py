"""The server's HTTP API on aiohttp: ``GET /healthz`` and ``GET /metrics``.

The API knows only what it serves: a ``health()`` callable (whether the server is healthy,
and the details) and the server's ``Metrics``.

Who sees what: ``/healthz`` always answers 200 or 503 with the status, for probes and
balancers. Its details (the server's identity, each loop's last store and publish error) are
for operators: they are shown to every caller when the server listens on loopback only and
has no token, else only to a request that bears the token (``Authorization: Bearer
<token>``). ``/metrics`` holds counts, never error texts; with a token it needs the token too
(401 otherwise), so that a scraper can be the only reader.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from ._metrics import Metrics

__all__ = ["Health", "is_loopback", "make_app"]

Health = Callable[[], tuple[bool, dict[str, Any]]]


def make_app(health: Health, metrics: Metrics, *, loopback: bool = True,
             token: str | None = None,
             refresh: Callable[[], Awaitable[None]] | None = None) -> web.Application:
    """The aiohttp application that serves ``health()`` and ``metrics``; ``loopback`` says
    whether the server listens on loopback only, ``token`` unlocks the details; ``refresh``
    updates the gauges read from the store before each scrape (best effort)."""
    api = _Api(health, metrics, loopback, token, refresh)
    app = web.Application()
    app.router.add_get("/healthz", api.healthz)
    app.router.add_get("/metrics", api.metrics)
    return app


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an HTTP bind address) is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name, "" or "0.0.0.0"-like wildcard spelled otherwise
        return False


class _Api:
    def __init__(self, health: Health, metrics: Metrics, loopback: bool,
                 token: str | None, refresh: Callable[[], Awaitable[None]] | None) -> None:
        self.health = health
        self._refresh = refresh
        self._metrics = metrics
        self._open = loopback and token is None  # everyone here may see the details
        self._token = token

    def _authorized(self, request: web.Request) -> bool:
        if self._open:
            return True
        if self._token is None:
            return False
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {self._token}".encode())

    async def healthz(self, request: web.Request) -> web.Response:
        """200 while the store answers, 503 otherwise (for probes and balancers); the reason
        and each loop's state for those who may see them."""
        healthy, body = self.health()
        if not self._authorized(request):
            body = {"status": body["status"]}
        return web.json_response(body, status=200 if healthy else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        """The server's own registry in the Prometheus text format."""
        if self._token is not None and not self._authorized(request):
            return web.json_response({"error": "a bearer token is required"}, status=401,
                                     headers={"WWW-Authenticate": "Bearer"})
        if self._refresh is not None:
            await self._refresh()
        return web.Response(body=self._metrics.exposition(),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})
