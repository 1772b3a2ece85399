"""Which tenants a client may act for: its scope.

``durable.connect(url, tenant="A")`` gives a client that acts for tenant A only. A client that
names other tenants, or all of them, is connected with an explicit scope: ``tenants=["A",
"B"]`` (those tenants; ``tenant`` defaults to the first) or ``tenants="*"`` (every tenant). A
client with no tenant arguments acts for the tenant ``"default"`` only.

Invariant: every client call that names a tenant, or asks for all of them, goes through
:func:`permit` or :func:`permit_all` before anything is read or written. The scope is the
library's guard against a caller reaching the wrong tenant by mistake; on PostgreSQL the
database enforces the same boundary for a tenant's role (row-level security, ``durable tenant
create``).
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import Any, Final

from ._validate import check_tenant, show
from .errors import ArgumentTypeError, InvalidArgumentError, TenantPermissionError

__all__ = ["ALL_TENANTS", "DEFAULT_TENANT", "Scope", "describe", "permit", "permit_all", "scope"]

DEFAULT_TENANT: Final = "default"
ALL_TENANTS: Final = "*"

Scope = frozenset[str] | None
"""The tenants a client may act for; None means every tenant."""


def scope(tenant: Any, tenants: Any) -> tuple[str, Scope]:
    """The client's own tenant and its scope, from ``connect(tenant=, tenants=)``."""
    if tenants is None or type(tenants) is str and tenants == ALL_TENANTS:
        own = check_tenant(DEFAULT_TENANT if tenant is None else tenant)
        return own, (None if tenants is not None else frozenset({own}))
    names = [check_tenant(t) for t in _names(tenants)]
    if not names:
        raise InvalidArgumentError("tenants= names at least one tenant (or '*' for every one)",
                                   parameter="tenants")
    own = check_tenant(min(names) if tenant is None and isinstance(tenants, Set) else
                       names[0] if tenant is None else tenant)
    allowed = frozenset(names)
    return permit(allowed, own), allowed


def _names(tenants: Any) -> list[Any]:
    """The items of a collection of tenant names; ``ArgumentTypeError`` for anything else."""
    if not isinstance(tenants, (str, bytes, Mapping)):
        try:
            return list(tenants)
        except TypeError:
            pass
    hint = f" (a list: tenants=[{tenants!r}])" if isinstance(tenants, str) else ""
    raise ArgumentTypeError(f"tenants= is '*' or a list of tenant names, not "
                            f"{show(tenants)}{hint}", parameter="tenants")


def permit(allowed: Scope, tenant: Any) -> str:
    """``tenant`` if the scope lets the client act for it; else ``TenantPermissionError``."""
    name = check_tenant(tenant)
    if allowed is not None and name not in allowed:
        raise TenantPermissionError(
            f"this client may not act for tenant {name!r}: it was connected for "
            f"{describe(allowed)}; connect with tenants=[...] naming it (or tenants='*')",
            tenant=name, allowed=sorted(allowed))
    return name


def permit_all(allowed: Scope, what: str) -> None:
    """Refuse ``what`` (a call over every tenant) unless the scope is every tenant."""
    if allowed is not None:
        raise TenantPermissionError(
            f"{what} needs a client connected with tenants='*'; this one was connected for "
            f"{describe(allowed)}", tenant=ALL_TENANTS, allowed=sorted(allowed))


def describe(allowed: Scope) -> str:
    """The scope in words: "every tenant", "tenant 'A'", "tenants 'A', 'B'"."""
    if allowed is None:
        return "every tenant"
    names = ", ".join(repr(t) for t in sorted(allowed))
    return f"tenant {names}" if len(allowed) == 1 else f"tenants {names}"
