"""Claims under an action's limits (``TaskStore.claim_limited``), on every store."""

from __future__ import annotations

from durable._history import ScheduleAction
from durable._limits import Hold, Limit, queue_bucket
from durable._queues import route
from durable._stores import Store

from .test_store import LEASE, NOW, act, completion, started_with

EMAIL_A, EMAIL_B = route("a", "email"), route("b", "email")


def on(queue: str, name: str, cmd: int) -> ScheduleAction:
    return ScheduleAction(cmd, name, [cmd], {}, queue=queue)


async def emails(store: Store, each: int) -> None:
    """``each`` tasks of actions a and b on queue email, and of act on the default queue."""
    await started_with(store, *(on("email", "a", i) for i in range(1, each + 1)),
                       *(on("email", "b", i) for i in range(each + 1, 2 * each + 1)),
                       *(act(i) for i in range(2 * each + 1, 3 * each + 1)))


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
        "act": "waits: at its limit of 2 running at once"}
    assert await store.limit_waits(["act"], now=NOW + LEASE + 1) == {}  # the leases expired
    await store.claim_limited("act", Limit(rate=1.0), "w1", lease=LEASE, now=NOW + LEASE + 1,
                              limit_count=10)
    assert await store.limit_waits(["act"], now=NOW + LEASE + 1.5) == {
        "act": "waits: at its rate limit of 1 per second"}


async def test_a_queue_limit_bounds_every_action_on_the_queue(store: Store) -> None:
    await emails(store, 5)
    queue = Limit(max_concurrent=3)
    first = await store.claim_limited(EMAIL_A, None, "w1", lease=LEASE, now=NOW, limit_count=10,
                                      queue_limit=queue)
    assert len(first) == 3 and {t.name for t in first} == {"a"}
    assert await store.claim_limited(EMAIL_B, None, "w2", lease=LEASE, now=NOW,
                                     limit_count=10, queue_limit=queue) == []
    # another queue (the default one) is not bound by it
    assert len(await store.claim_action_tasks(["act"], "w2", lease=LEASE, now=NOW,
                                              limit=10)) == 5
    await store.complete_action_task(first[0], completion(first[0]), now=NOW + 1)
    [one] = await store.claim_limited(EMAIL_B, None, "w2", lease=LEASE, now=NOW + 1,
                                      limit_count=10, queue_limit=queue)
    assert one.name == "b" and one.queue == "email"
    assert await store.limit_waits([EMAIL_B, queue_bucket("email")], now=NOW + 1) == {
        queue_bucket("email"): "waits for queue 'email''s limit of 3 running at once"}


async def test_the_queue_and_the_action_limit_must_both_allow_a_claim(store: Store) -> None:
    await emails(store, 5)
    queue = Limit(max_concurrent=3)
    got = await store.claim_limited(EMAIL_A, Limit(max_concurrent=1), "w1", lease=LEASE,
                                    now=NOW, limit_count=10, queue_limit=queue)
    assert len(got) == 1  # the action's own limit
    got = await store.claim_limited(EMAIL_B, Limit(max_concurrent=5), "w1", lease=LEASE,
                                    now=NOW, limit_count=10, queue_limit=queue)
    assert len(got) == 2  # the queue's: 3 in all


async def test_a_queue_rate_is_shared_by_its_actions(store: Store) -> None:
    await emails(store, 20)
    queue = Limit(rate=10.0)  # a burst of 1, then one per 0.1 s, for a and b together
    claimed = [await store.claim_limited(EMAIL_A if i // 2 % 2 else EMAIL_B, None, "w1", lease=LEASE,
                                         now=NOW + i * 0.05, limit_count=5, queue_limit=queue)
               for i in range(21)]
    assert sum(map(len, claimed)) == 11
    assert {t.name for batch in claimed for t in batch} == {"a", "b"}


async def test_a_limit_on_the_default_queue_counts_only_its_tasks(store: Store) -> None:
    await emails(store, 3)
    assert len(await store.claim_action_tasks([EMAIL_A], "w1", lease=LEASE, now=NOW,
                                              limit=10)) == 3
    got = await store.claim_limited("act", None, "w1", lease=LEASE, now=NOW, limit_count=10,
                                    queue_limit=Limit(max_concurrent=2))
    assert len(got) == 2


async def test_held_slots_count_as_running(store: Store) -> None:
    await started_with(store, *(act(cmd) for cmd in range(1, 8)))
    limit = Limit(max_concurrent=4)
    assert await store.hold_limited([Hold("act", limit, 0, 3, 0)], "w1", lease=LEASE,
                                    now=NOW) == [(3, 0)]
    assert len(await store.claim_limited("act", limit, "w2", lease=LEASE, now=NOW,
                                         limit_count=10)) == 1
    # w2 wants 2 more: none left; its hold is empty
    assert await store.hold_limited([Hold("act", limit, 0, 2, 0)], "w2", lease=LEASE,
                                    now=NOW) == [(0, 0)]
    # w1 gives its slots back (a hold of none): they are free for claims
    assert await store.hold_limited([Hold("act", limit, 0, 0, 0)], "w1", lease=LEASE,
                                    now=NOW + 1) == [(0, 0)]
    assert len(await store.claim_limited("act", limit, "w2", lease=LEASE, now=NOW + 1,
                                         limit_count=10)) == 3


async def test_held_slots_lapse_with_their_lease_and_their_worker(store: Store) -> None:
    await started_with(store, *(act(cmd) for cmd in range(1, 8)))
    limit = Limit(max_concurrent=2)
    await store.hold_limited([Hold("act", limit, 0, 2, 0)], "w1", lease=LEASE, now=NOW)
    assert await store.claim_limited("act", limit, "w2", lease=1.0, now=NOW,
                                     limit_count=10) == []
    assert len(await store.claim_limited("act", limit, "w2", lease=1.0,
                                         now=NOW + LEASE + 1, limit_count=10)) == 2
    await store.hold_limited([Hold("act", limit, 0, 2, 0)], "w3", lease=LEASE,
                             now=NOW + LEASE + 3)
    await store.unregister_worker("w3", now=NOW + LEASE + 3)  # it stopped: its slots are free
    assert len(await store.claim_limited("act", limit, "w2", lease=1.0,
                                         now=NOW + LEASE + 3, limit_count=10)) == 2


async def test_holds_take_ahead_only_half_of_the_room_left(store: Store) -> None:
    limit = Limit(max_concurrent=10, rate=100.0)  # a burst of 10 tokens
    assert await store.hold_limited([Hold("act", limit, 0, 2, 8)], "w1", lease=LEASE,
                                    now=NOW) == [(6, 6)]  # 2 + 8 // 2 of each
    # the same worker, with 1 of its 6 slots in use: its hold is rewritten, not added to
    assert await store.hold_limited([Hold("act", limit, 1, 1, 0)], "w1", lease=LEASE,
                                    now=NOW) == [(2, 1)]
    assert await store.hold_limited([Hold("act", limit, 0, 9, 0)], "w2", lease=LEASE,
                                    now=NOW) == [(8, 3)]  # 10 - 2 slots; 4 - 1 tokens left
