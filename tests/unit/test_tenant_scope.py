"""A client's tenant scope: what ``tenant=`` / ``tenants=`` accept, and that a client bound to
one tenant cannot name another (the paths on every store: tests/integration/test_tenant_scope.py)."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

import durable
from durable.errors import (
    ArgumentTypeError, InputError, InvalidArgumentError, TenantPermissionError, ValidationError,
)


@pytest.mark.parametrize(("tenant", "tenants", "own", "scope"), [
    (None, None, "default", frozenset({"default"})),
    ("A", None, "A", frozenset({"A"})),
    (None, "*", "default", None),
    ("A", "*", "A", None),
    (None, ["B", "A"], "B", frozenset({"A", "B"})),
    (None, ("B", "A"), "B", frozenset({"A", "B"})),
    (None, {"B", "A"}, "A", frozenset({"A", "B"})),  # a set has no first: the smallest
    ("A", ["B", "A"], "A", frozenset({"A", "B"})),
    (None, (t for t in ["C"]), "C", frozenset({"C"})),
])
async def test_tenant_and_tenants_give_the_client_its_tenant_and_scope(
        tenant: Any, tenants: Any, own: str, scope: frozenset[str] | None) -> None:
    async with durable.connect("memory://", tenant=tenant, tenants=tenants) as client:
        assert (client.tenant, client.tenants) == (own, scope)


@pytest.mark.parametrize(("tenant", "tenants", "error", "match"), [
    (None, "A", ArgumentTypeError, r"a list: tenants=\['A'\]"),
    (None, 5, ArgumentTypeError, "not 5"),
    (None, b"*", ArgumentTypeError, "list of tenant names"),
    (None, {"A": 1}, ArgumentTypeError, "list of tenant names"),
    (None, [], InvalidArgumentError, "at least one tenant"),
    (None, ["A", 3], ArgumentTypeError, "tenant"),
    (None, ["A", ""], ValidationError, "tenant"),
    (None, ["A\x00"], ValidationError, "tenant"),
    ("", None, ValidationError, "tenant"),
    ("B", ["A"], TenantPermissionError, "may not act for tenant 'B'"),
])
def test_bad_scopes_are_typed_errors(tenant: Any, tenants: Any, error: type[Exception],
                                     match: str) -> None:
    with pytest.raises(error, match=match):
        durable.connect("memory://", tenant=tenant, tenants=tenants)


def test_the_permission_error_is_an_input_error_that_names_the_tenant_and_pickles() -> None:
    err = TenantPermissionError("no", tenant="B", allowed=["A"])
    copy = pickle.loads(pickle.dumps(err))
    assert isinstance(copy, InputError) and (copy.tenant, copy.allowed) == ("B", ["A"])


async def test_a_client_of_one_tenant_refuses_another_and_every_tenant() -> None:
    async with durable.connect("memory://", tenant="A") as client:
        with pytest.raises(TenantPermissionError, match="tenant 'B'.*connected for tenant 'A'"):
            client.get_handle("w", tenant="B")
        with pytest.raises(TenantPermissionError, match=r"list\(all_tenants=True\) needs"):
            await client.list(all_tenants=True)
        assert client.get_handle("w").tenant == "A" == client.get_handle("w", tenant="A").tenant
        with pytest.raises(AttributeError):
            client.tenant = "B"  # type: ignore[misc]
        with pytest.raises(AttributeError):
            client.get_handle("w").tenant = "B"  # type: ignore[misc]


async def test_a_list_scope_reaches_its_tenants_but_not_every_tenant() -> None:
    async with durable.connect("memory://", tenants=["A", "B"]) as client:
        assert client.get_handle("w", tenant="B").tenant == "B"
        assert await client.list(tenant="B") == []
        with pytest.raises(TenantPermissionError, match="tenant 'C'.*tenants 'A', 'B'"):
            await client.list(tenant="C")
        with pytest.raises(TenantPermissionError, match="tenants='\\*'"):
            await client.list_schedules(all_tenants=True)


async def test_the_admin_scope_reaches_every_tenant() -> None:
    async with durable.connect("memory://", tenants="*") as client:
        assert client.get_handle("w", tenant="anyone").tenant == "anyone"
        assert await client.list(all_tenants=True) == []
        with pytest.raises(InvalidArgumentError, match="not both"):
            await client.list(tenant="A", all_tenants=True)


async def test_the_testing_environment_takes_a_scope() -> None:
    async with durable.testing.Environment(tenant="A") as env:
        with pytest.raises(TenantPermissionError):
            env.client.get_handle("w", tenant="B")
    async with durable.testing.Environment(tenants="*") as env:
        assert env.client.get_handle("w", tenant="B").tenant == "B"
