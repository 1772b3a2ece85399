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


async def test_a_tenant_with_tasks_running_yields_to_one_without(store: Store) -> None:
    for i in range(5):  # the noisy tenant: two running, three queued, all older than quiet's
        await create(store, f"noisy-{i}", tenant="noisy", now=NOW - 100 + i)
    running = await claim(store, limit=2, now=NOW)
    assert [t.workflow_id for t in running] == ["noisy-0", "noisy-1"]
    await create(store, "quiet-1", tenant="quiet", now=NOW)
    # one free slot: quiet's task, though noisy's queued ones are older
    assert [t.workflow_id for t in await claim(store, limit=1, now=NOW + 1)] == ["quiet-1"]
    assert [t.workflow_id for t in await claim(store, limit=1, now=NOW + 1)] == ["noisy-2"]


async def test_action_claims_count_running_actions_against_their_tenant(store: Store) -> None:
    await started_with(store, *(act(cmd) for cmd in range(1, 4)), tenant="noisy")
    first = await store.claim_action_tasks(["act"], "a1", lease=LEASE, now=NOW + 2, limit=1)
    assert [t.tenant for t in first] == ["noisy"]
    await started_with(store, act(1), tenant="quiet", visible_at=NOW + 1)
    claimed = await store.claim_action_tasks(["act"], "a1", lease=LEASE, now=NOW + 2, limit=1)
    assert [t.tenant for t in claimed] == ["quiet"]
