"""Tenants are a boundary for clients: on every store, tenant A's client (API and command line)
refuses every path to tenant B, writes nothing there, and goes on working for A.

(What a tenant's PostgreSQL role can reach with raw SQL: tests/conformance/test_tenant_roles.py.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import durable
from durable._cli import main
from durable.errors import TenantPermissionError

from _support import eventually

from ._env import Env, env, env_spec  # noqa: F401 - fixtures

B = "tenant-b"


@durable.workflow(name="ScopeWaiter")
async def scope_waiter(ctx: durable.Context) -> str:
    event = await ctx.wait_for("Go")
    return f"went {event.payload}"


async def _tenant_b(env: Env) -> durable.Client:
    """An admin client; tenant B has an execution ``b1`` that waits for "Go" (once a worker
    ran it) and a paused schedule ``sb``."""
    admin = await env.client(tenants="*")
    b1 = await admin.start(scope_waiter, id="b1", tenant=B)
    await admin.schedule(scope_waiter, id="sb", every=3600, paused=True, tenant=B)
    await eventually(lambda: _waits(b1), what="b1 to wait for its event")
    return admin


async def _waits(handle: durable.WorkflowHandle[Any]) -> bool:
    return any(type(e).__name__ == "TaskCompleted" for e in await handle.history())


async def _snapshot(admin: durable.Client) -> Any:
    """Everything tenant B holds, as seen by the admin."""
    return ([(r.workflow_id, r.status, r.last_seq) for r in await admin.list(tenant=B)],
            [(s.schedule_id, s.paused) for s in await admin.list_schedules(tenant=B)],
            [type(e).__name__ for e in await admin.get_handle("b1", tenant=B).history()])


def _api_paths(client: durable.Client) -> dict[str, Callable[[], Any]]:
    """Every client call that names a tenant, or all of them, aimed at tenant B."""

    async def scan(**options: Any) -> None:
        [r async for r in client.iter_executions(**options)]

    return {
        "start": lambda: client.start(scope_waiter, id="new", tenant=B),
        "get_handle": lambda: client.get_handle("b1", tenant=B),
        "WorkflowHandle": lambda: durable.WorkflowHandle(client, "b1", B),
        "schedule": lambda: client.schedule(scope_waiter, id="s2", every=3600, tenant=B),
        "get_schedule": lambda: client.get_schedule("sb", tenant=B),
        "ScheduleHandle": lambda: durable.ScheduleHandle(client, "sb", B),
        "list": lambda: client.list(tenant=B),
        "list all": lambda: client.list(all_tenants=True),
        "list_schedules": lambda: client.list_schedules(tenant=B),
        "list_schedules all": lambda: client.list_schedules(all_tenants=True),
        "iter_executions": lambda: scan(tenant=B),
        "iter_executions all": lambda: scan(all_tenants=True),
    }


async def _refused(call: Callable[[], Any]) -> TenantPermissionError | None:
    try:
        result = call()
        if isinstance(result, Awaitable):
            await result
    except TenantPermissionError as exc:
        return exc
    return None


async def test_a_client_for_tenant_a_refuses_every_path_to_tenant_b(env: Env) -> None:
    client = await env.start([scope_waiter], [])  # connected with tenant=A only
    admin = await _tenant_b(env)
    before = await _snapshot(admin)
    for scoped in (client, await env.client(tenants=[env.tenant, "tenant-c"])):
        refused = {name: await _refused(call) for name, call in _api_paths(scoped).items()}
        assert [name for name, error in refused.items() if error is None] == []
        assert all(e is not None and e.tenant in (B, "*") for e in refused.values())
    assert await _snapshot(admin) == before
    handle = await client.start(scope_waiter, id="a1")  # A's own work goes on
    await handle.send("Go", 1)
    assert await handle.result(timeout=20) == "went 1"
    assert [r.workflow_id for r in await client.list()] == ["a1"]


async def test_a_list_scope_reaches_its_tenants_only(env: Env) -> None:
    await env.start([scope_waiter], [])
    admin = await _tenant_b(env)
    both = await env.client(tenants=[env.tenant, B])
    handle = both.get_handle("b1", tenant=B)
    await handle.send("Go", "from a scope of two")
    assert await handle.result(timeout=20) == "went from a scope of two"
    assert (await both.get_schedule("sb", tenant=B).describe()).paused
    assert await _refused(lambda: both.list(all_tenants=True)) is not None
    assert [r.workflow_id for r in await admin.list(all_tenants=True)] == ["b1"]


# ---- the command line -----------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'scope.db'}"
    return str(request.getfixturevalue("pg_database"))


CLI_PATHS = [
    ["start", "ScopeWaiter", "--id", "new"],
    ["send", "b1", "Go", "1"],
    ["query", "b1", "anything"],
    ["update", "b1", "anything"],
    ["cancel", "b1"],
    ["list"],
    ["show", "b1"],
    ["show", "b1", "--at", "1"],
    ["replay", "-m", "integration.test_tenant_scope"],
    ["patches", "-m", "integration.test_tenant_scope"],
    ["verify"],
    ["schedule", "create", "s2", "ScopeWaiter", "--every", "1h"],
    ["schedule", "list"],
    ["schedule", "show", "sb"],
    ["schedule", "pause", "sb"],
    ["schedule", "unpause", "sb"],
    ["schedule", "trigger", "sb"],
    ["schedule", "backfill", "sb", "--start", "2026-01-01", "--end", "2026-01-02"],
    ["schedule", "delete", "sb"],
]
ALL_TENANTS_PATHS = [["list"], ["replay", "-m", "integration.test_tenant_scope"],
                     ["patches", "-m", "integration.test_tenant_scope"], ["verify"],
                     ["schedule", "list"]]


def test_the_command_line_follows_the_same_rule(db: str, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    async def prepare() -> Any:
        async with durable.connect(db, tenants="*") as admin:
            await admin.start(scope_waiter, id="b1", tenant=B)
            await admin.schedule(scope_waiter, id="sb", every=3600, paused=True, tenant=B)
            return await _snapshot(admin)

    async def snapshot() -> Any:
        async with durable.connect(db, tenants="*") as admin:
            return await _snapshot(admin)

    def cli(*args: str) -> tuple[int, str]:
        code = main(["--db", db, *args])
        return code, capsys.readouterr().err

    before = asyncio.run(prepare())
    for path in CLI_PATHS:  # a scope of A (from the environment), and B named
        monkeypatch.setenv("DURABLE_TENANTS", "tenant-a")
        assert cli(*path, "--tenant", B) == (
            1, f"error: this client may not act for tenant {B!r}: it was connected for tenant "
            "'tenant-a'; connect with tenants=[...] naming it (or tenants='*')\n"), path
        monkeypatch.delenv("DURABLE_TENANTS")
        assert cli(*path, "--tenants", "tenant-a,tenant-c", "--tenant", B)[0] == 1, path
    for path in ALL_TENANTS_PATHS:  # --all-tenants: without a scope, or with a list
        for scope in ([], ["--tenants", "tenant-a,tenant-c"], ["--tenant", B]):
            code, err = cli(*path, "--all-tenants", *scope)
            assert code == 1 and "needs a client connected with tenants='*'" in err, (path, err)
    assert asyncio.run(snapshot()) == before
    assert cli("list", "--tenants", "*", "--all-tenants") == (0, "")
    assert cli("schedule", "show", "sb", "--tenants", f"tenant-a,{B}", "--tenant", B)[0] == 0
