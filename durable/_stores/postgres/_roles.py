"""Tenant roles on PostgreSQL (``durable tenant create|list|drop``).

A tenant's role may read and write the store's tables, and row-level security (migration
0010) shows it its tenant's rows only: ``durable_roles`` maps the role to its tenant, and only
the tables' owner writes that mapping. These functions run as the owner (or a role with
CREATEROLE that owns the tables); each returns the SQL it ran, so that a DBA can read, repeat
or review it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Final, NamedTuple
from urllib.parse import urlsplit

import asyncpg

from ..._urls import redact
from ...errors import InvalidArgumentError, StoreConfigurationError
from ._connection import migrate
from ._schema import parse_url, typed_error

__all__ = ["TenantRole", "create_tenant_role", "drop_tenant_role", "list_tenant_roles",
           "role_name", "tenant_url"]

_PLAIN: Final = re.compile(r"^[a-z0-9_]{1,40}$")
_PREFIX: Final = "durable_tenant_"
_TABLES: Final = ("SELECT p.polrelid::regclass::text FROM pg_policy p JOIN pg_class c "
                  "ON c.oid = p.polrelid WHERE p.polname = 'durable_tenant' "
                  "AND c.relnamespace = current_schema()::regnamespace ORDER BY 1")


class TenantRole(NamedTuple):
    """A tenant's role, and the SQL that set it up (or took it down)."""

    role: str
    tenant: str
    statements: list[str]


def role_name(tenant: str) -> str:
    """``durable_tenant_<tenant>``; a tenant that is not a short lower-case identifier gets
    a readable part and a hash (PostgreSQL role names are at most 63 bytes)."""
    if _PLAIN.match(tenant):
        return _PREFIX + tenant
    readable = re.sub(r"[^a-z0-9_]", "_", tenant.lower())[:24]
    return f"{_PREFIX}{readable}_{hashlib.sha256(tenant.encode()).hexdigest()[:8]}"


async def create_tenant_role(url: str, tenant: str) -> TenantRole:
    """Create (or complete) ``tenant``'s role: LOGIN, no password, mapped and granted."""
    role = role_name(tenant)
    async with _connection(url) as conn:
        mapped = await conn.fetchval("SELECT tenant FROM durable_roles WHERE role_name = $1", role)
        if mapped is not None and mapped != tenant:
            raise InvalidArgumentError(f"role {role!r} is the role of tenant {mapped!r}")
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
        statements: list[str] = [] if exists else [f"CREATE ROLE {_quote(role)} LOGIN"]
        statements.append("SELECT durable_protect_tenant_tables()")
        await _run(conn, statements)
        tables = [row[0] for row in await conn.fetch(_TABLES)]
        grants = _grants(role, await conn.fetchval("SELECT current_database()"),
                         await conn.fetchval("SELECT current_schema()"), tables)
        await _run(conn, grants)
        await conn.execute("INSERT INTO durable_roles (role_name, tenant) VALUES ($1, $2) "
                           "ON CONFLICT (role_name) DO NOTHING", role, tenant)
        statements += [*grants, f"INSERT INTO durable_roles (role_name, tenant) VALUES "
                       f"({_literal(role)}, {_literal(tenant)})"]
    return TenantRole(role, tenant, statements)


async def list_tenant_roles(url: str) -> list[tuple[str, str, bool]]:
    """(role, tenant, whether the role still exists), by tenant."""
    async with _connection(url) as conn:
        rows = await conn.fetch("SELECT d.role_name::text, d.tenant, r.rolname IS NOT NULL "
                                "FROM durable_roles d LEFT JOIN pg_roles r "
                                "ON r.rolname = d.role_name ORDER BY d.tenant, d.role_name")
    return [(row[0], row[1], row[2]) for row in rows]


async def drop_tenant_role(url: str, tenant: str) -> list[TenantRole]:
    """Revoke and drop the roles of ``tenant`` (its rows stay); what was dropped."""
    dropped: list[TenantRole] = []
    async with _connection(url) as conn:
        schema = await conn.fetchval("SELECT current_schema()")
        database = await conn.fetchval("SELECT current_database()")
        for row in await conn.fetch("SELECT role_name::text FROM durable_roles "
                                    "WHERE tenant = $1 ORDER BY 1", tenant):
            role = _quote(row[0])
            statements = [f"REVOKE ALL ON ALL TABLES IN SCHEMA {_quote(schema)} FROM {role}",
                          f"REVOKE ALL ON SCHEMA {_quote(schema)} FROM {role}",
                          f"REVOKE ALL ON DATABASE {_quote(database)} FROM {role}",
                          f"DELETE FROM durable_roles WHERE role_name = {_literal(row[0])}"]
            if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", row[0]):
                statements.append(f"DROP ROLE {role}")
            else:
                statements = statements[-1:]
            await _run(conn, statements)
            dropped.append(TenantRole(row[0], tenant, statements))
    return dropped


def tenant_url(url: str, role: str) -> str:
    """``url`` with ``role`` as its user and a placeholder password."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{role}:PASSWORD@{host}").geturl()


def _grants(role: str, database: str, schema: str, tables: list[str]) -> list[str]:
    who = _quote(role)
    return [f"GRANT CONNECT ON DATABASE {_quote(database)} TO {who}",
            f"GRANT USAGE ON SCHEMA {_quote(schema)} TO {who}",
            f"GRANT SELECT ON schema_version, durable_roles TO {who}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(tables)} TO {who}",
            # Shared by every tenant, no tenant rows: what live workers host (0011: a tenant's
            # worker registers, its describe() reads), the buckets of limited actions (0011: a
            # tenant's worker claims under them) and the live workers (0012: a tenant's worker
            # registers and heartbeats, and releases the tasks of dead ones), and the slots
            # workers hold for inline attempts of limited actions (0014), and the retention
            # workflows' code declares (0019: a tenant's worker records its workflows').
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON worker_hosts, flow_buckets, workers, "
            f"flow_holds, workflow_retention TO {who}"]


async def _run(conn: Any, statements: list[str]) -> None:
    async with conn.transaction():
        for statement in statements:
            await conn.execute(statement)


class _connection:  # noqa: N801 - used like a function: `async with _connection(url) as conn`
    """A connection to the migrated store at ``url`` (driver errors become typed ones)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: Any = None

    async def __aenter__(self) -> Any:
        await migrate(self.url)
        target = parse_url(self.url)
        try:
            self.conn = await asyncpg.connect(target.dsn, server_settings=target.server_settings)
        except Exception as exc:
            raise (typed_error(self.url, exc) or exc) from exc
        return self.conn

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: Any) -> None:
        await self.conn.close()
        if isinstance(exc, asyncpg.PostgresError):
            mapped = typed_error(self.url, exc)
            raise (mapped or _refused(self.url, exc)) from exc


def _refused(url: str, exc: asyncpg.PostgresError) -> StoreConfigurationError:
    return StoreConfigurationError(
        f"the PostgreSQL store {redact(url)!r} refused to manage tenant roles "
        f"({type(exc).__name__} [{exc.sqlstate}]: {exc}): run it as the tables' owner with "
        "CREATEROLE (or a superuser)", url=redact(url), sqlstate=exc.sqlstate)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
