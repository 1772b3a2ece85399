"""What live workers host (``HostStore``), on every store: registrations replace each other,
expire by time and are removed when a worker stops."""

from __future__ import annotations

from durable._queues import route
from durable._stores import Store

NOW = 1_000_000.0
PAY = route("Pay", "payments")


async def test_registrations_tell_what_no_live_worker_hosts(store: Store) -> None:
    wanted = [("w", "Flow"), ("a", PAY), ("a", "Mail")]
    assert await store.unhosted(wanted, since=NOW - 15) == set(wanted)
    await store.register_hosts("w1", [("w", "Flow"), ("a", "Mail")], now=NOW)
    await store.register_hosts("w2", [("a", PAY)], now=NOW)
    assert await store.unhosted(wanted, since=NOW - 15) == set()
    assert await store.unhosted([("a", "Pay"), ("w", PAY)], since=NOW - 15) == {
        ("a", "Pay"), ("w", PAY)}  # a route names a kind, a name and a queue
    await store.register_hosts("w1", [("w", "Flow")], now=NOW + 10)  # replaces its rows
    assert await store.unhosted(wanted, since=NOW - 15) == {("a", "Mail")}
    assert await store.unhosted(wanted, since=NOW + 5) == {("a", "Mail"), ("a", PAY)}  # w2 old
    await store.unregister_hosts("w1")
    assert await store.unhosted(wanted, since=NOW - 15) == {("w", "Flow"), ("a", "Mail")}
    assert await store.unhosted([], since=NOW) == set()
