"""PostgreSQL enforces tenants itself: with tenant A's role (``durable tenant create``),
hand-written SQL can neither see nor change tenant B's rows in any table, cannot remap itself
to B, and a durable client and worker connected with A's credentials run A's workflows.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from _support import as_role

import durable
from durable._cli import main
from durable._stores.postgres._roles import (
    create_tenant_role, drop_tenant_role, list_tenant_roles, role_name,
)
from durable.errors import StoreConfigurationError

# Every table that holds tenant rows (migration 0010 protects each; a new one must join).
TABLES = ["action_results", "action_tasks", "events", "executions", "requests", "schedules",
          "snapshots", "tenant_retention", "timers", "workflow_tasks"]


@durable.action(transaction=True)
async def role_write(conn: asyncpg.Connection, n: int) -> int:
    return int(await conn.fetchval("SELECT $1::int + 1", n))


@durable.action
async def role_unhosted(n: int) -> int:
    return n


@durable.workflow(name="RoleFlow")
async def role_flow(ctx: durable.Context, n: int) -> int:
    done = await ctx.run(role_write, n)  # action_results
    ctx.set_state("sleeping")
    await ctx.sleep(3600)  # timers
    return done


@durable.workflow(name="RoleWaiter")
async def role_waiter(ctx: durable.Context) -> int:
    return await ctx.run(role_unhosted, 1)  # action_tasks: nobody hosts it here


@pytest.fixture
async def tenants(pg_database: str) -> AsyncIterator[tuple[str, str]]:
    """Tenants A and B (unique: roles are global to the server), each with a role."""
    a, b = (f"t{uuid.uuid4().hex[:10]}" for _ in range(2))
    for tenant in (a, b):
        await create_tenant_role(pg_database, tenant)
    try:
        yield a, b
    finally:
        for tenant in (a, b):
            await drop_tenant_role(pg_database, tenant)


async def _rows_in_every_table(url: str, *tenants: str) -> None:
    """As the owner: rows of each tenant in every table, through durable itself."""
    async with durable.connect(url, tenants="*") as client:
        for tenant in tenants:
            await client.start(role_flow, 1, id="flow", tenant=tenant)
            await client.start(role_waiter, id="waits", tenant=tenant)
            await client.schedule(role_flow, 2, id="hourly", every=3600, paused=True,
                                  tenant=tenant)
            await client.set_retention(7 * 86400, tenant=tenant)
        await durable.Worker(client, [role_flow, role_waiter], [role_write],
                             snapshot_every=1).run_until_idle()
        for tenant in tenants:
            await client.start(role_waiter, id="queued", tenant=tenant)  # not run yet
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(
                "INSERT INTO requests SELECT tenant, workflow_id, 'probe', 'query', 'state', "
                "'\\x90'::bytea, 0, 'pending' FROM executions WHERE workflow_id = 'flow'")
        finally:
            await conn.close()


async def _copy_into(conn: Any, table: str) -> str:
    """SQL that copies one row of ``table`` into tenant $1 (generated columns left out)."""
    columns = [row[0] for row in await conn.fetch(
        "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 "
        "AND NOT attisdropped AND attgenerated = '' ORDER BY attnum", table)]
    values = ", ".join("$1" if c == "tenant" else c for c in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) SELECT {values} FROM {table} LIMIT 1"


async def _counts(conn: Any, tenant: str) -> dict[str, int]:
    return {t: await conn.fetchval(f"SELECT count(*) FROM {t} WHERE tenant = $1", tenant)
            for t in TABLES}


async def test_a_tenant_role_cannot_see_or_change_another_tenants_rows(
        pg_database: str, tenants: tuple[str, str]) -> None:
    a, b = tenants
    await _rows_in_every_table(pg_database, a, b)
    owner = await asyncpg.connect(pg_database)
    as_a = await asyncpg.connect(as_role(pg_database, role_name(a)))
    try:
        assert [tuple(row) for row in await owner.fetch(
            "SELECT c.relname::text, c.relrowsecurity FROM pg_class c JOIN pg_attribute a ON "
            "a.attrelid = c.oid AND a.attname = 'tenant' WHERE c.relkind = 'r' AND "
            "c.relnamespace = current_schema()::regnamespace AND c.relname <> 'durable_roles' "
            "ORDER BY 1")] == [(t, True) for t in TABLES]  # every tenant table, protected
        before = await _counts(owner, b)
        assert all(before.values()), before  # B has rows everywhere: the test can fail
        assert all((await _counts(as_a, a)).values())  # A sees its own
        assert await _counts(as_a, b) == dict.fromkeys(TABLES, 0)
        for table in TABLES:
            assert await as_a.fetchval(f"SELECT count(*) FROM {table} WHERE tenant <> $1", a) == 0
            assert await as_a.execute(f"UPDATE {table} SET tenant = tenant WHERE tenant = $1",
                                      b) == "UPDATE 0"
            assert await as_a.execute(f"DELETE FROM {table} WHERE tenant = $1", b) == "DELETE 0"
            # Copy one of A's rows into B: refused by the policy's check.
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
                await as_a.execute(await _copy_into(owner, table), b)
            # Move one of A's rows to B: refused too.
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
                await as_a.execute(f"UPDATE {table} SET tenant = $1", b)
        # The mapping is the owner's: A cannot remap itself, nor switch off the policies.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await as_a.execute("UPDATE durable_roles SET tenant = $1", b)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await as_a.execute("INSERT INTO durable_roles VALUES (current_user, $1)", b)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await as_a.execute("ALTER TABLE events DISABLE ROW LEVEL SECURITY")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await as_a.execute("SET row_security = off; SELECT count(*) FROM events")
        assert await _counts(owner, b) == before
    finally:
        await as_a.close()
        await owner.close()


async def test_a_client_and_worker_with_a_tenants_credentials_work_for_it(
        pg_database: str, tenants: tuple[str, str]) -> None:
    a, b = tenants
    await _rows_in_every_table(pg_database, b)
    async with durable.connect(as_role(pg_database, role_name(a)), tenant=a) as client:
        worker = durable.Worker(client, [role_flow, role_waiter], [role_write, role_unhosted])
        handle = await client.start(role_waiter, id="mine")
        await worker.run_until_idle()
        assert await handle.result(timeout=10) == 1
        assert [r.workflow_id for r in await client.list()] == ["mine"]
        # Even a client with the admin scope sees A's rows only through A's role.
    async with durable.connect(as_role(pg_database, role_name(a)), tenants="*") as admin:
        assert {r.tenant for r in await admin.list(all_tenants=True)} == {a}
        assert await admin.list(tenant=b) == []
        assert [s async for s in admin.iter_executions(tenant=b)] == []
        # B's execution that waits on an action stays untouched by A's worker.
        await durable.Worker(admin, [role_flow, role_waiter], [role_unhosted]).run_until_idle()
    async with durable.connect(pg_database, tenant=b) as owner:
        assert (await owner.get_handle("waits").describe()).status == "running"


def test_the_tenant_commands(pg_database: str, capsys: pytest.CaptureFixture[str]) -> None:
    tenant = f"Cli {uuid.uuid4().hex[:8]}"  # not an identifier: the role name gets a hash
    role = role_name(tenant)
    assert main(["tenant", "create", tenant, "--db", pg_database]) == 0
    out = capsys.readouterr().out
    assert f"role:     {role}  (tenant {tenant!r})" in out
    assert f"ALTER ROLE \"{role}\" PASSWORD" in out and "GRANT SELECT, INSERT, UPDATE, DELETE ON " \
        f"{', '.join(TABLES)} TO \"{role}\"" in out
    assert main(["tenant", "create", tenant, "--db", pg_database]) == 0  # again: completes it
    assert main(["tenant", "list", "--db", pg_database]) == 0
    assert f"{tenant}\t{role}\n" in capsys.readouterr().out
    assert main(["tenant", "drop", tenant, "--db", pg_database]) == 0
    assert f"DROP ROLE \"{role}\"" in capsys.readouterr().out
    assert main(["tenant", "drop", tenant, "--db", pg_database]) == 1
    assert "has no role" in capsys.readouterr().err
    assert main(["tenant", "list", "--db", "sqlite:///x.db"]) == 1
    assert "not a PostgreSQL store" in capsys.readouterr().err


async def test_managing_roles_needs_the_owner(pg_database: str,
                                              tenants: tuple[str, str]) -> None:
    a, _ = tenants
    with pytest.raises(StoreConfigurationError, match="CREATEROLE"):
        await create_tenant_role(as_role(pg_database, role_name(a)), "intruder")
    assert [t for _, t, _ in await list_tenant_roles(pg_database)] == sorted(tenants)
