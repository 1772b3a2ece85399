"""Who deletes expired executions: the ``durable server`` loop (with its metric), an embedded
worker's dispatcher when no server runs, and ``durable gc`` by hand."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _support import eventually

import durable
from durable._cli import main
from durable._dispatch import LocalDispatcher
from durable._stores import open_store
from durable.errors import InvalidArgumentError, ValidationError
from durable_server import Server

KEEP = 0.3  # seconds RTIShort's executions are kept


@durable.action(name="rti_step")
def step(n: int) -> int:
    return n + 1


@durable.workflow(name="RTIShort", retention=KEEP)
async def short(ctx: durable.Context, n: int) -> int:
    return await ctx.run(step, n)


@durable.workflow(name="RTIWaits", retention=KEEP)
async def waits(ctx: durable.Context) -> None:
    await ctx.wait_for("never")


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/rt.db"
    return str(request.getfixturevalue("pg_database"))


@pytest.fixture
async def client(url: str) -> AsyncIterator[durable.Client]:
    """A client whose workers do not sweep (nor fire timers): as with a server."""
    store = await open_store(url)
    client = durable.Client(store, dispatcher=LocalDispatcher(store, fire_timers=False),
                            poll_interval=0.02)
    yield client
    await client.close()


async def finished(client: durable.Client, *ids: str) -> None:
    for wf in ids:
        await client.start(short, 1, id=wf)
    await client.start(waits, id="running")
    async with durable.Worker(client, [short, waits], [step], poll_interval=0.02):
        for wf in ids:
            assert await client.get_handle(wf).result(timeout=10) == 2


async def present(client: durable.Client, wf: str) -> bool:
    return await client.store.get_execution("default", wf) is not None


async def test_the_server_deletes_expired_executions_and_counts_them(
        client: durable.Client) -> None:
    await finished(client, "a", "b")
    async with Server(client, port=0, gc_every=0.05) as server:
        await eventually(lambda: _none_of(client, "a", "b"), what="the sweep")
        assert await present(client, "running")  # running: kept
        text = server.metrics.exposition().decode()
        assert "durable_executions_deleted_total 2.0" in text
        assert server.health()[0], server.health()[1]


async def test_an_embedded_worker_deletes_them_when_no_server_runs(url: str) -> None:
    async with durable.connect(url) as client:
        client.dispatcher = LocalDispatcher(client.store, gc_every=0.05)
        await client.start(short, 1, id="done")
        await client.start(waits, id="running")
        async with durable.Worker(client, [short, waits], [step], poll_interval=0.02):
            assert await client.get_handle("done").result(timeout=10) == 2
            await eventually(lambda: _none_of(client, "done"), what="the worker's sweep")
            assert await present(client, "running")


async def test_durable_gc_by_hand(client: durable.Client, url: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    await finished(client, "a", "b")
    assert await cli("--db", url, "gc", "--older-than", "1h") == 0  # none closed that long ago
    assert "deleted 0 closed execution(s)" in capsys.readouterr().out
    assert await cli("--db", url, "gc", "--older-than", "0", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "default\ta\n" in out and "default\tb\n" in out and "would delete 2" in out
    assert await present(client, "a") and await present(client, "b")
    assert await cli("--db", url, "gc", "--older-than", "0", "--tenant", "other") == 0
    assert await present(client, "a")  # another tenant's pass
    capsys.readouterr()
    assert await cli("--db", url, "gc", "--older-than", "0") == 0
    assert "deleted 2 closed execution(s)" in capsys.readouterr().out
    assert await _none_of(client, "a", "b") and await present(client, "running")


async def test_durable_tenant_retention_sets_and_clears(client: durable.Client, url: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert await cli("--db", url, "tenant", "retention", "acme", "2d") == 0
    assert (await client.store.retention_settings()).tenants == {"acme": 172800.0}
    assert await cli("--db", url, "tenant", "retention") == 0
    assert "tenant  acme  2d" in capsys.readouterr().out
    assert await cli("--db", url, "tenant", "retention", "acme", "--clear") == 0
    assert (await client.store.retention_settings()).tenants == {}


def test_bad_cli_input_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/none.db"
    with pytest.raises(SystemExit) as exited:
        main(["--db", url, "gc", "--older-than=-1d"])
    assert exited.value.code == 2 and "not a duration" in capsys.readouterr().err
    assert main(["--db", url, "tenant", "retention", "acme", "1d", "--clear"]) == 1
    assert "not both" in capsys.readouterr().err


async def test_bad_server_settings_are_typed_errors(client: durable.Client) -> None:
    with pytest.raises(InvalidArgumentError, match="gc_every > 0"):
        Server(client, gc_every=0)
    with pytest.raises(ValidationError, match="0 seconds or more"):
        Server(client, retention=-1)


async def cli(*args: str) -> int:
    """``durable ARGS`` (it runs an event loop of its own: in a thread)."""
    return await asyncio.to_thread(main, list(args))


async def _none_of(client: durable.Client, *ids: str) -> bool:
    return not [wf for wf in ids if await present(client, wf)]
