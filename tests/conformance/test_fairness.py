"""Fairness of claims on every store: due tasks are taken round-robin across tenants, so one
tenant's backlog does not hold another tenant's ready task back."""

from __future__ import annotations

from durable._stores import Store

from .test_store import LEASE, NOW, act, claim, create, started_with


async def test_workflow_claims_take_turns_across_tenants(store: Store) -> None:
    for i in range(20):  # the noisy tenant's backlog, all older
        await create(store, f"noisy-{i}", tenant="noisy", now=NOW - 100 + i)
    await create(store, "quiet-1", tenant="quiet", now=NOW)
    await create(store, "other-1", tenant="other", now=NOW)
    claimed = await claim(store, limit=3, now=NOW + 1)
    assert sorted(t.tenant for t in claimed) == ["noisy", "other", "quiet"]
    assert [t.workflow_id for t in claimed if t.tenant == "noisy"] == ["noisy-0"]  # oldest


async def test_action_claims_take_turns_across_tenants(store: Store) -> None:
    await started_with(store, *(act(cmd) for cmd in range(1, 15)), tenant="noisy")
    await started_with(store, act(1), tenant="quiet", visible_at=NOW + 1)
    claimed = await store.claim_action_tasks(["act"], "a1", lease=LEASE, now=NOW + 2, limit=2)
    assert sorted(t.tenant for t in claimed) == ["noisy", "quiet"]
