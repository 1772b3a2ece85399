"""Upgrades in place: a store written by each earlier version of durable, with executions in
flight (waiting for an event, a timer, an action; one finished, one whose event had arrived),
is migrated by today's code, reads intact, and every execution completes with its result.

The stores are the committed fixtures in ``fixtures/`` (``make_fixtures.py`` made them with the
code of each commit in ``fixtures/fixtures.json``: one per schema state main has had, the
versions numbered before the renumbering of 2026-12-02 included); nothing here needs git.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any, Final

import asyncpg
import pytest

import durable
from durable._cli import main as cli
from durable._stores import migrate_store
from durable._stores._integrity import verify_store
from durable._stores._migrations import migration_files

from . import flows

FIXTURES: Final = Path(__file__).resolve().parent / "fixtures"
MANIFEST: Final[dict[str, Any]] = json.loads((FIXTURES / "fixtures.json").read_text())
LATEST: Final = {"sqlite": migration_files("durable._stores.sqlite")[-1][0],
                 "postgres": migration_files("durable._stores.postgres")[-1][0]}


@pytest.fixture(params=sorted(MANIFEST))
def fixture(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(the fixture's file name, the URL of a store to load it into)."""
    name: str = request.param
    if name.startswith("sqlite-"):
        shutil.copy(FIXTURES / name, tmp_path / "store.db")
        return name, f"sqlite:///{tmp_path / 'store.db'}"
    return name, request.getfixturevalue("pg_database")


async def test_the_fixtures_cover_every_schema_main_has_had() -> None:
    states = {(name.split("-")[0], tuple(info["schema"])) for name, info in MANIFEST.items()}
    assert ("sqlite", (1,)) in states and ("postgres", (1,)) in states
    assert ("sqlite", (1, 2, 3, 4, 5)) in states and ("postgres", (1, 2, 3, 4, 5, 6, 7)) in states
    assert all((FIXTURES / name).is_file() for name in MANIFEST)


async def test_an_earlier_store_upgrades_in_place_and_its_executions_complete(
        fixture: tuple[str, str]) -> None:
    name, url = fixture
    kind = name.split("-")[0]
    if kind == "postgres":
        conn = await asyncpg.connect(url)
        try:
            await conn.execute((FIXTURES / name).read_text())
        finally:
            await conn.close()
    assert await migrate_store(url) == LATEST[kind], MANIFEST[name]
    async with durable.connect(url, tenants="*") as client:
        before = [check async for check in verify_store(client.store)]
        assert [c.error for c in before] == [None] * len(flows.EXECUTIONS)
        assert all(c.unchecked == c.events > 0 for c in before)  # rows from before checksums
        worker = durable.Worker(client, workflows=flows.WORKFLOWS,
                                actions=[flows.double, flows.triple])
        await worker.run_until_idle()  # the timer is long due, the action is hosted now
        for tenant, workflow_id, _, _, _, event, _ in flows.EXECUTIONS:
            if event is not None:
                await client.get_handle(workflow_id, tenant=tenant).send("Go", event)
        await worker.run_until_idle()
        replayer = durable.Replayer(flows.WORKFLOWS, [flows.double, flows.triple])
        for tenant, workflow_id, _, _, _, _, result in flows.EXECUTIONS:
            handle = client.get_handle(workflow_id, tenant=tenant)
            assert await handle.result(timeout=10) == result, (name, workflow_id)
            assert replayer.replay(await handle.history()).done  # today's engine, as recorded
        after = [check async for check in verify_store(client.store)]
        assert [c.error for c in after] == [None] * len(flows.EXECUTIONS)
        assert sum(c.events - c.unchecked for c in after) > 0  # the new rows are chained
    assert await asyncio.to_thread(cli, ["verify", "--db", url, "--tenants", "*", "--all-tenants"]) == 0
