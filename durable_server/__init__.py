"""The durable server: timers, lease reclaim, schedules, HTTP API and metrics.

``Server(client)`` fires due timers, re-dispatches tasks from the store's outbox (lost hints,
expired leases, due retries) and starts the runs of due schedules, and serves
``GET /healthz`` and ``GET /metrics``. Run it with ``durable server --db URL --redis URL``;
it needs the ``server`` extra (``pip install 'durable[server]'``: aiohttp and
prometheus-client).
"""

from durable._extras import require

for _package in ("aiohttp", "prometheus_client"):
    require(_package, "durable server")  # before the modules that import them

from ._server import Server  # noqa: E402

__all__ = ["Server"]
