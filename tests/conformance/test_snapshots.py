"""Snapshots and paged history reads in every store (what time travel is built on)."""

from __future__ import annotations

from durable._history import EventReceived
from durable._stores import Snapshot, Store

from .test_store import NOW, T1, T2, create, history

RUN = "run-wf-1"


def snapshot(seq: int, *, time: float | None = None, wf: str = "wf-1", tenant: str = T1,
             run: str = RUN, state: str = "s") -> Snapshot:
    return Snapshot(tenant, wf, run, seq, NOW + seq if time is None else time, "running",
                    f"{state}{seq}", {"n": seq, "nested": {"list": [1, None]}}, f"flow.py:{seq}")


async def test_the_newest_snapshot_at_or_before_a_seq_or_time(store: Store) -> None:
    for seq in (10, 20, 30):
        await store.save_snapshot(snapshot(seq), keep=5)
    assert await store.find_snapshot(T1, "wf-1", RUN) == snapshot(30)
    assert await store.find_snapshot(T1, "wf-1", RUN, seq=29) == snapshot(20)
    assert await store.find_snapshot(T1, "wf-1", RUN, seq=20) == snapshot(20)
    assert await store.find_snapshot(T1, "wf-1", RUN, seq=9) is None
    assert await store.find_snapshot(T1, "wf-1", RUN, time=NOW + 25) == snapshot(20)
    assert await store.find_snapshot(T1, "wf-1", RUN, seq=30, time=NOW + 10) == snapshot(10)
    assert await store.find_snapshot(T1, "wf-1", RUN, time=NOW) is None


async def test_snapshots_are_per_run_and_tenant(store: Store) -> None:
    await store.save_snapshot(snapshot(10), keep=5)
    await store.save_snapshot(snapshot(11, tenant=T2), keep=5)
    await store.save_snapshot(snapshot(12, run="run-2"), keep=5)
    await store.save_snapshot(snapshot(13, wf="wf-2"), keep=5)
    assert await store.find_snapshot(T1, "wf-1", RUN) == snapshot(10)
    assert await store.find_snapshot(T2, "wf-1", RUN) == snapshot(11, tenant=T2)
    assert await store.find_snapshot(T1, "wf-1", "run-2") == snapshot(12, run="run-2")
    assert await store.find_snapshot(T1, "wf-2", RUN) == snapshot(13, wf="wf-2")
    assert await store.find_snapshot(T2, "wf-2", RUN) is None


async def test_only_the_newest_are_kept(store: Store) -> None:
    for seq in range(10, 70, 10):
        await store.save_snapshot(snapshot(seq), keep=3)
    assert await store.find_snapshot(T1, "wf-1", RUN, seq=39) is None
    assert [s.seq for s in [await store.find_snapshot(T1, "wf-1", RUN, seq=b)
                            for b in (40, 50, 60)]] == [40, 50, 60]
    await store.save_snapshot(snapshot(70), keep=1)
    assert await store.find_snapshot(T1, "wf-1", RUN, seq=69) is None
    await store.save_snapshot(snapshot(5, tenant=T2), keep=1)  # other runs are untouched
    assert await store.find_snapshot(T1, "wf-1", RUN) == snapshot(70)


async def test_a_snapshot_at_the_same_seq_replaces_the_old_one(store: Store) -> None:
    await store.save_snapshot(snapshot(10), keep=3)
    await store.save_snapshot(snapshot(10, state="again"), keep=3)
    assert await store.find_snapshot(T1, "wf-1", RUN) == snapshot(10, state="again")
    await store.save_snapshot(snapshot(20), keep=2)
    assert await store.find_snapshot(T1, "wf-1", RUN, seq=10) == snapshot(10, state="again")


async def test_a_snapshot_round_trips_unset_fields(store: Store) -> None:
    bare = Snapshot(T1, "wf-1", RUN, 3, NOW, "running", None, {}, None)
    await store.save_snapshot(bare, keep=1)
    assert await store.find_snapshot(T1, "wf-1", RUN) == bare


async def test_history_is_read_a_page_at_a_time(store: Store) -> None:
    await create(store)
    for i in range(6):
        await store.append_input(T1, "wf-1", EventReceived(0, 0.0, f"e{i}"), now=NOW + i)
    everything = await history(store)
    assert len(everything) == 7
    assert await store.read_history(T1, "wf-1", after_seq=2, limit=3) == everything[2:5]
    assert await store.read_history(T1, "wf-1", run_id=RUN, after_seq=5, limit=10) == \
        everything[5:]
    assert await store.read_history(T1, "wf-1", after_seq=7, limit=3) == []
    assert await store.read_history(T1, "wf-1", after_seq=0, limit=0) == []
