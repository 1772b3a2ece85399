"""The durable server: timers, lease reclaim, HTTP API and metrics (see issue 3).

``Server(client)`` fires due timers and re-dispatches tasks from the store's outbox (lost
hints, expired leases, due retries), and serves ``GET /healthz`` and ``GET /metrics``. Run it
with ``durable server --db URL --redis URL``; it needs the ``server`` extra
(``pip install 'durable[server]'``: aiohttp and prometheus-client).
"""

from ._server import Server

__all__ = ["Server"]
