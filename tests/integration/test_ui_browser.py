"""The web UI in a real browser (headless Chromium): list, filter, open an execution, drag
the time slider, send an event and watch the timeline change, on PostgreSQL with a worker
running. Screenshots go to /tmp/durable-ui-*.png (for people to look at)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import durable
from durable._history import WorkflowStarted
from durable._ui import UiServer
from examples import invoice, order

from ._browser import browser

SHOTS = "/tmp/durable-ui-{}.png"


@pytest.fixture
async def ui(pg_database: str) -> AsyncIterator[tuple[durable.Client, str]]:
    """A client of every tenant, a worker of examples.invoice and the UI on a free port."""
    async with durable.connect(pg_database, tenants="*") as client, invoice.worker(client):
        server = UiServer(client, port=0)
        serving = asyncio.create_task(server.run())
        await server.wait_started()
        try:
            yield client, server.url
        finally:
            server.shutdown()
            await serving


@pytest.fixture
async def page(ui: tuple[durable.Client, str]) -> AsyncIterator[Any]:
    async with browser() as chromium:
        context = await chromium.new_context(viewport={"width": 1400, "height": 1000})
        yield await context.new_page()
        await context.close()


async def _fill(client: durable.Client) -> durable.WorkflowHandle[str]:
    """Four invoices (inv-1 submitted, waiting for a decision) and one order on acme."""
    for i in range(1, 5):
        await client.start(invoice.invoice_approval, f"inv-{i}", 100 * i, 0.2, id=f"inv-{i}")
    await client.start(order.order_fulfillment, "o-1", 500, ["tea"], id="order-1",
                       tenant="acme")
    handle: durable.WorkflowHandle[str] = client.get_handle("inv-1")
    await handle.send("Submit", {"by": "ann"})
    for _ in range(200):
        if (await handle.describe()).state == "submitted":
            return handle
        await asyncio.sleep(0.05)
    raise AssertionError("inv-1 never reached 'submitted'")


async def test_list_filter_and_open_an_execution(ui: tuple[durable.Client, str],
                                                 page: Any) -> None:
    client, url = ui
    await _fill(client)
    await page.goto(url + "/")
    rows = page.locator("#executions tbody tr")
    assert await rows.count() == 5
    assert "4 running" in re.sub(r"\s+", " ", await page.locator(".counts").inner_text()) or \
        "5 running" in re.sub(r"\s+", " ", await page.locator(".counts").inner_text())
    await page.fill("input[name=workflow]", "InvoiceApproval")
    await page.fill("input[name=id_prefix]", "inv-")
    await page.click("button[type=submit]")
    await page.wait_for_url(re.compile(r"workflow=InvoiceApproval"))
    assert [await c.inner_text() for c in await rows.locator("td:nth-child(2)").all()] == [
        "inv-4", "inv-3", "inv-2", "inv-1"]
    await page.screenshot(path=SHOTS.format("list"), full_page=True)
    await page.goto(url + "/?limit=2&workflow=InvoiceApproval")  # keyset pages
    await page.click("#next-page")
    assert [await c.inner_text() for c in await rows.locator("td:nth-child(2)").all()] == [
        "inv-2", "inv-1"]
    await page.select_option("select[name=status]", "completed")
    await page.click("button[type=submit]")
    await page.wait_for_url(re.compile(r"status=completed"))
    assert await page.locator("td.empty").inner_text() == "no executions"
    await page.goto(url + "/?tenant=acme")
    await page.click("text=order-1")
    await page.wait_for_url(re.compile(r"/executions/acme/order-1$"))
    assert "OrderFulfillment" in await page.locator("dl.facts").inner_text()


async def test_time_travel_then_send_an_event_and_see_the_timeline_change(
        ui: tuple[durable.Client, str], page: Any) -> None:
    client, url = ui
    handle = await _fill(client)
    await page.goto(f"{url}/executions/default/inv-1")
    assert await page.locator("#status").inner_text() == "running"
    assert await page.locator("#state").inner_text() == "submitted"
    assert "invoice.py" in await page.locator("#suspended").inner_text()
    timeline = page.locator("#timeline")
    assert "send_email" in await timeline.inner_text()
    assert "Approve" not in await timeline.inner_text()

    slider = page.locator("#slider")  # drag it to the far left: the first step
    box = await slider.bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    await page.mouse.move(box["x"] + box["width"] - 4, y)
    await page.mouse.down()
    await page.mouse.move(box["x"] + 2, y, steps=8)
    await page.mouse.up()
    await page.wait_for_selector("#at .state-at[data-seq='1']")
    assert (await page.locator("#slider-label").inner_text()).startswith("event 1 of")
    assert await page.locator("#at .at-state").inner_text() == "-"  # not run yet
    for _ in range(3):  # then step by step, with the keyboard, into the first workflow task
        await slider.press("ArrowRight")
    await page.wait_for_selector("#at .state-at[data-seq='4']")
    assert await page.locator("#at .at-state").inner_text() == "draft"
    assert "invoice.py:" in await page.locator("#at .at-line").inner_text()
    await page.screenshot(path=SHOTS.format("time-travel"), full_page=True)

    await page.fill("#send-form input[name=name]", "Approve")
    await page.fill("#send-form input[name=payload]", '{"by": "boss"}')
    await page.click("#send-form button")
    assert "Send event Approve" in await page.locator("p.confirm").inner_text()
    await page.screenshot(path=SHOTS.format("confirm"), full_page=True)
    await page.click("#confirm")
    await page.wait_for_url(re.compile(r"/executions/default/inv-1\?done="))
    assert "sent Approve" in await page.locator(".flash").inner_text()
    # The page follows the execution as the worker runs it (no reload): it completes.
    await page.wait_for_function(
        "document.querySelector('#status').textContent === 'completed'", timeout=30_000)
    text = await timeline.inner_text()
    assert 'Approve {"by":"boss"}' in text and "completed" in text and "timer" in text
    assert await handle.result(timeout=10) == "approved"
    await page.screenshot(path=SHOTS.format("execution"), full_page=True)


async def test_an_open_page_shows_events_as_they_arrive(ui: tuple[durable.Client, str],
                                                        page: Any) -> None:
    client, url = ui
    handle = await _fill(client)
    await page.goto(f"{url}/executions/default/inv-1")
    await handle.send("Nudge", {"n": 1})  # not through the page
    await page.wait_for_selector("#timeline >> text=Nudge", timeout=15_000)


async def test_history_download_and_a_held_execution(ui: tuple[durable.Client, str],
                                                     page: Any) -> None:
    client, url = ui
    await _fill(client)
    async with page.expect_download() as waiting:
        await page.goto(f"{url}/executions/default/inv-1")
        await page.click("text=download JSON")
    download = await waiting.value
    assert download.suggested_filename == "inv-1.history.json"
    text = Path(await download.path()).read_text()
    assert text.startswith('[{"type":"WorkflowStarted","seq":1,') and '"Submit"' in text

    # A workflow task that cannot run (as a worker records a divergence) holds the execution.
    store, now = client.store, time.time()
    started = WorkflowStarted(0, 0.0, "Ghost", "1", "ghost-1", "run-g1", "default", [])
    await store.create_execution(started, now=now)
    [task] = await store.claim_workflow_tasks(["Ghost"], "w", lease=30.0, now=now, limit=1)
    divergence = ("NonDeterminismError: event 3 recorded ActionScheduled(charge), the code now "
                  "issues StartTimer at billing.py:42")
    await store.release_workflow_task(task, "w", delay=3600.0, error=divergence, now=now)
    await page.goto(url + "/?status=held")
    assert [await c.inner_text() for c in await page.locator(
        "#executions td:nth-child(2)").all()] == ["ghost-1"]
    await page.click("text=ghost-1")
    assert await page.locator("#status").inner_text() == "held"
    assert "billing.py:42" in await page.locator("#divergence pre").inner_text()
    await page.screenshot(path=SHOTS.format("held"), full_page=True)
