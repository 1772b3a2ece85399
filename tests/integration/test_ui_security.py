"""The web UI's security: loopback unless tokens, tenant-scoped tokens, login, CSRF (over
HTTP, on PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

import durable
from durable._ui import UiServer, parse_tokens
from durable._ui._security import ui_access
from durable.errors import UsageError
from examples import invoice

ACME = "acme-token-0123456789"
ADMIN = "admin-token-0123456789"


@pytest.fixture
async def ui(pg_database: str) -> AsyncIterator[str]:
    async with durable.connect(pg_database, tenants="*") as client:
        for tenant in ("acme", "globex"):
            await client.start(invoice.invoice_approval, "i", 1, id=f"{tenant}-1", tenant=tenant)
        server = UiServer(client, port=0, tokens=parse_tokens([f"{ACME}:acme", ADMIN]))
        serving = asyncio.create_task(server.run())
        await server.wait_started()
        try:
            yield server.url
        finally:
            server.shutdown()
            await serving


def test_binding_beyond_loopback_needs_a_token() -> None:
    with pytest.raises(UsageError, match="not loopback: give it a token"):
        ui_access("0.0.0.0", {})
    assert not ui_access("0.0.0.0", parse_tokens([ADMIN])).open
    assert ui_access("127.0.0.1", {}).open
    with pytest.raises(UsageError, match="at least 16 characters"):
        parse_tokens(["short"])
    with pytest.raises(UsageError, match="name its tenants"):
        parse_tokens([ADMIN + ":"])


async def test_tokens_scope_every_request_to_their_tenants(ui: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(ui + "/", allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"].startswith("/login")
        acme = {"Authorization": f"Bearer {ACME}"}
        async with http.get(ui + "/", headers=acme) as r:
            page = await r.text()
            assert r.status == 200 and "acme-1" in page and "globex-1" not in page
        async with http.get(ui + "/executions/globex/globex-1", headers=acme) as r:
            assert r.status == 403
        async with http.get(ui + "/?tenant=globex", headers=acme) as r:
            assert r.status == 403
        async with http.get(ui + "/executions/acme/acme-1", headers=acme) as r:
            assert r.status == 200
        async with http.get(ui + "/", headers={"Authorization": f"Bearer {ADMIN}"}) as r:
            page = await r.text()
            assert "acme-1" in page and "globex-1" in page


async def test_login_sets_a_session_and_posts_need_the_csrf_token(ui: str) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(ui + "/login") as r:
            assert r.status == 200
        csrf = next(c.value for c in http.cookie_jar if c.key == "durable_csrf")
        async with http.post(ui + "/login", data={"token": "wrong", "csrf": csrf}) as r:
            assert r.status == 401
        async with http.post(ui + "/login", data={"token": ACME, "csrf": csrf,
                                                  "next": "https://evil.example/"}) as r:
            assert r.status == 200 and str(r.url) == ui + "/"  # never to another site
            assert "acme-1" in await r.text()
        send = ui + "/executions/acme/acme-1/send"
        async with http.post(send, data={"name": "Submit"}) as r:
            assert r.status == 403 and "CSRF" in await r.text()
        async with http.post(send, data={"name": "Submit", "csrf": csrf},
                             headers={"Origin": "https://evil.example"}) as r:
            assert r.status == 403
        async with http.post(send, data={"name": "Submit", "csrf": csrf}) as r:
            assert r.status == 200 and "Confirm" in await r.text()  # the confirmation step
        async with http.post(send, data={"name": "Submit", "csrf": csrf, "confirm": "yes",
                                         "payload": '{"by": "ann"}'}) as r:
            assert r.status == 200 and "sent Submit" in await r.text()
        async with http.post(ui + "/executions/globex/globex-1/cancel",
                             data={"csrf": csrf, "confirm": "yes"}) as r:
            assert r.status == 403
        async with http.get(ui + "/executions/acme/acme-1/history.json") as r:
            assert '"Submit"' in await r.text()
