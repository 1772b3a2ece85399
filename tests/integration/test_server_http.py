"""``/healthz`` and ``/metrics`` of a server bound beyond loopback name no internal details to
unauthenticated callers; ``metrics_token`` (``--metrics-token``, ``DURABLE_METRICS_TOKEN``)
unlocks them. (Loopback without a token shows everything: tests/integration/test_server.py.)
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import durable
from _support import eventually
from durable._stores.memory import MemoryStore
from durable.errors import InvalidArgumentError
from durable_server import Server

from .test_server import REPO, FlakyStore, RecordingDispatcher

TOKEN = "s3cret-token"


async def _get(http: aiohttp.ClientSession, url: str,
               token: str | None = None) -> tuple[int, Any, str]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with http.get(url, headers=headers) as response:
        text = await response.text()
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, body, text


async def _down_server(**options: Any) -> tuple[Server, FlakyStore]:
    """A server on every interface whose store is down (so /healthz has an error to tell)."""
    flaky = FlakyStore(MemoryStore())
    client = durable.Client(flaky, dispatcher=RecordingDispatcher())  # type: ignore[arg-type]
    server = Server(client, host="0.0.0.0", port=0, interval=0.01, **options)
    flaky.down = True
    return server, flaky


async def test_beyond_loopback_healthz_tells_the_status_only() -> None:
    server, _ = await _down_server()
    async with server, aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{server.port}"
        status, body, text = await eventually(
            lambda: _status_is(http, f"{url}/healthz", 503), what="/healthz 503")
        assert body == {"status": "unavailable"}
        assert "database is down" not in text and server.identity not in text
        status, _, text = await _get(http, f"{url}/healthz", token="guess")
        assert status == 503 and "database is down" not in text  # no token configured: none works
        status, _, text = await _get(http, f"{url}/metrics")
        assert status == 200 and "durable_server_up 0.0" in text and "database" not in text
        assert "down" in server.health()[1]["reason"]  # the details exist, for the operator


async def test_the_token_unlocks_the_details_and_guards_metrics() -> None:
    server, _ = await _down_server(metrics_token=TOKEN)
    async with server, aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{server.port}"
        await eventually(lambda: _status_is(http, f"{url}/healthz", 503), what="/healthz 503")
        for token in (None, "wrong", TOKEN + "x"):
            status, body, _ = await _get(http, f"{url}/healthz", token=token)
            assert (status, body) == (503, {"status": "unavailable"})
            status, _, text = await _get(http, f"{url}/metrics", token=token)
            assert status == 401 and "durable_" not in text
        status, body, _ = await _get(http, f"{url}/healthz", token=TOKEN)
        assert status == 503 and "database is down" in body["reason"]
        assert body["identity"] == server.identity
        status, _, text = await _get(http, f"{url}/metrics", token=TOKEN)
        assert status == 200 and "durable_server_up 0.0" in text


async def test_on_loopback_a_token_is_needed_too_once_there_is_one() -> None:
    flaky = FlakyStore(MemoryStore())
    client = durable.Client(flaky, dispatcher=RecordingDispatcher())  # type: ignore[arg-type]
    async with Server(client, port=0, interval=0.01, metrics_token=TOKEN) as server, \
            aiohttp.ClientSession() as http:
        _, body, _ = await eventually(lambda: _status_is(http, f"{server.url}/healthz", 200),
                                      what="/healthz 200")
        assert body == {"status": "ok"}
        _, body, _ = await _get(http, f"{server.url}/healthz", token=TOKEN)
        assert body["status"] == "ok"
        assert set(body["loops"]) == {"timers", "outbox", "schedules", "workers", "retention"}


@pytest.mark.parametrize("token", ["", 5, b"x"])
def test_a_bad_token_is_refused(token: Any) -> None:
    client = durable.Client(MemoryStore())
    with pytest.raises(InvalidArgumentError, match="metrics_token"):
        Server(client, metrics_token=token)


async def _status_is(http: aiohttp.ClientSession, url: str,
                     expected: int) -> tuple[int, Any, str] | None:
    got = await _get(http, url)
    return got if got[0] == expected else None


async def test_durable_server_takes_the_token_from_the_environment(tmp_path: Path) -> None:
    env = {**os.environ, "DURABLE_DB": f"sqlite:///{tmp_path / 'http.db'}",
           "DURABLE_METRICS_TOKEN": TOKEN,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("DURABLE_REDIS", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "durable._cli", "server", "--host", "0.0.0.0", "--port", "0",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        first = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        url = first.split("http=")[1].split()[0].replace("0.0.0.0", "127.0.0.1")
        async with aiohttp.ClientSession() as http:
            _, body, _ = await eventually(lambda: _status_is(http, f"{url}/healthz", 200),
                                          what="/healthz 200")
            assert body == {"status": "ok"}
            assert (await _get(http, f"{url}/metrics"))[0] == 401
            status, body, _ = await _get(http, f"{url}/healthz", token=TOKEN)
            assert status == 200 and "loops" in body
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), 5)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.communicate()
    assert proc.returncode == 0
