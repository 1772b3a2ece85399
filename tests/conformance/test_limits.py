"""Claims under an action's limits (``TaskStore.claim_limited``), on every store."""

from __future__ import annotations

from durable._limits import Limit
from durable._stores import Store

from .test_store import LEASE, NOW, act, completion, started_with


async def test_max_concurrent_counts_live_leases(store: Store) -> None:
    await started_with(store, *(act(cmd) for cmd in range(1, 8)))
    limit = Limit(max_concurrent=3)
    first = await store.claim_limited("act", limit, "w1", lease=LEASE, now=NOW, limit_count=10)
    assert len(first) == 3
    assert await store.claim_limited("act", limit, "w2", lease=LEASE, now=NOW + 1,
                                     limit_count=10) == []
    await store.complete_action_task(first[0], completion(first[0]), now=NOW + 2)
    [one] = await store.claim_limited("act", limit, "w2", lease=LEASE, now=NOW + 2, limit_count=10)
    assert one.cmd not in {t.cmd for t in first}
    # the leases of w1 expire: its tasks no longer count (and can be taken over)
    again = await store.claim_limited("act", limit, "w3", lease=LEASE, now=NOW + LEASE + 1,
                                      limit_count=10)
    assert len(again) == 2  # w2's lease is still live: 3 - 1


async def test_rate_hands_out_tokens_as_time_passes(store: Store) -> None:
    await started_with(store, *(act(cmd) for cmd in range(1, 30)))
    limit = Limit(rate=10.0)  # a burst of 1, then one per 0.1 s
    claimed = [await store.claim_limited("act", limit, "w1", lease=LEASE, now=NOW + i * 0.05,
                                         limit_count=5) for i in range(21)]
    assert sum(map(len, claimed)) == 11  # 1 at once, then 10 in the next second
    assert max(map(len, claimed)) == 1


async def test_limit_waits_say_which_limit_holds_tasks_back(store: Store) -> None:
    await started_with(store, *(act(cmd) for cmd in range(1, 5)))
    assert await store.limit_waits(["act"], now=NOW) == {}  # never claimed under a limit
    await store.claim_limited("act", Limit(max_concurrent=2), "w1", lease=LEASE, now=NOW,
                              limit_count=10)
    assert await store.limit_waits(["act", "other"], now=NOW) == {
        "act": "at its limit of 2 running at once"}
    assert await store.limit_waits(["act"], now=NOW + LEASE + 1) == {}  # the leases expired
    await store.claim_limited("act", Limit(rate=1.0), "w1", lease=LEASE, now=NOW + LEASE + 1,
                              limit_count=10)
    assert await store.limit_waits(["act"], now=NOW + LEASE + 1.5) == {
        "act": "at its rate limit of 1 per second"}
