"""``durable tenant create|list|drop``: one PostgreSQL role per tenant (row-level security).

Run as the owner of the store's tables with CREATEROLE (the role that runs ``durable
migrate``). ``create`` prints the role, how to give it a password, its URL and the SQL it ran.
"""

from __future__ import annotations

import argparse
from typing import Final

from .._urls import redact
from .._validate import check_tenant
from ..errors import UsageError
from ._options import Commands
from . import _render
from ._retention import add_tenant_retention
from ._targets import refused_urls, store_url, wants_json

__all__ = ["add_commands"]

_EPILOG: Final = """\
A tenant's role reads and writes its tenant's rows only: PostgreSQL's row-level security
(migration 0010) hides every other tenant's rows from it, even from hand-written SQL. Give it
a password, then connect its clients and workers with its credentials:

  durable tenant create acme --db postgresql://owner@db/app
  psql postgresql://owner@db/app -c "ALTER ROLE durable_tenant_acme PASSWORD '...'"
  DURABLE_DB=postgresql://durable_tenant_acme:...@db/app durable --tenant acme worker app:worker

Workers and servers that serve every tenant connect as the owner (or a role with BYPASSRLS).
`drop` revokes and drops the role; the tenant's rows stay.
"""


def add_commands(commands: Commands) -> None:
    """Register ``tenant create``, ``tenant list``, ``tenant drop`` and ``tenant retention``."""
    group = commands.group("tenant", "PostgreSQL roles that can reach one tenant only: create, "
                           "list, drop; and any store's retention by tenant", _EPILOG,
                           dest="tenant_action")
    p = group.add("create", _create, "create (or complete) a tenant's role and print its grants",
                  epilog=_EPILOG, raw=True)
    p.add_argument("name", metavar="NAME", help="the tenant")
    group.add("list", _list, "the tenants' roles")
    p = group.add("drop", _drop, "revoke and drop a tenant's role (its rows stay)")
    p.add_argument("name", metavar="NAME", help="the tenant")
    add_tenant_retention(group)


def _postgres_url(args: argparse.Namespace) -> str:
    url = store_url(args)
    if url.split(":", 1)[0].lower() not in ("postgresql", "postgres"):
        raise UsageError(f"durable tenant manages PostgreSQL roles; {redact(url)!r} is not a "
                         "PostgreSQL store (pass --db postgresql://...)")
    return url


async def _create(args: argparse.Namespace) -> int:
    from .._stores.postgres._roles import create_tenant_role, tenant_url  # asyncpg: lazily

    url, tenant = _postgres_url(args), check_tenant(args.name)
    with refused_urls():
        made = await create_tenant_role(url, tenant)
    if wants_json(args):
        print(_render.json({"tenant": tenant, "role": made.role, "url": tenant_url(url, made.role),
                            "statements": made.statements}))
        return 0
    print(f"role:     {made.role}  (tenant {tenant!r})")
    print(f"password: ALTER ROLE \"{made.role}\" PASSWORD '...';  (or \\password "
          f"{made.role} in psql)")
    print(f"url:      {tenant_url(url, made.role)}")
    print("granted:")
    print("\n".join(f"  {statement};" for statement in made.statements))
    return 0


async def _list(args: argparse.Namespace) -> int:
    from .._stores.postgres._roles import list_tenant_roles

    with refused_urls():
        roles = await list_tenant_roles(_postgres_url(args))
    if wants_json(args):
        for line in _render.ndjson([{"tenant": tenant, "role": role, "exists": exists}
                                    for role, tenant, exists in roles]):
            print(line)
        return 0
    if not roles:
        print("no tenant roles")
    for role, tenant, exists in roles:
        print(f"{tenant}\t{role}{'' if exists else '  (role missing)'}")
    return 0


async def _drop(args: argparse.Namespace) -> int:
    from .._stores.postgres._roles import drop_tenant_role

    url, tenant = _postgres_url(args), check_tenant(args.name)
    with refused_urls():
        dropped = await drop_tenant_role(url, tenant)
    if not dropped:
        raise UsageError(f"tenant {tenant!r} has no role in {redact(url)!r}")
    if wants_json(args):
        print(_render.json({"tenant": tenant, "dropped": [
            {"role": made.role, "statements": made.statements} for made in dropped]}))
        return 0
    for made in dropped:
        print(f"dropped {made.role}:")
        print("\n".join(f"  {statement};" for statement in made.statements))
    return 0
