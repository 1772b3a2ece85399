"""``_fair.Turns``: the Redis dispatcher's takes from a worker's backlog, round-robin across
tenants (the fairness key), the least recently served first."""

from __future__ import annotations

from durable._dispatch._fair import Hint, Turns
from durable._dispatch._keys import partition
from durable._stores import TaskRef, workflow_ref


def hints(tenant: str, count: int, stream: str = "s") -> list[Hint]:
    return [Hint(stream, f"{tenant}-{i}".encode(), workflow_ref(tenant, f"{tenant}-{i}"))
            for i in range(count)]


def tenants(taken: dict[tuple[object, ...], list[Hint]]) -> list[str]:
    return [str(key[1]) for key in taken]


def test_each_round_takes_one_task_of_every_tenant_present() -> None:
    backlog = hints("noisy", 100) + hints("a", 2) + hints("b", 1)
    taken, junk, rest = Turns().take(backlog, 6)
    assert tenants(taken) == ["noisy", "a", "b", "noisy", "a", "noisy"]
    assert junk == [] and len(rest) == 97
    assert rest == backlog[3:100]  # what is left keeps its order


def test_a_tenant_served_longest_ago_goes_first_so_small_limits_do_not_starve_it() -> None:
    turns = Turns()
    backlog = hints("noisy", 100) + hints("quiet", 1)
    taken, _, backlog = turns.take(backlog, 1)
    assert tenants(taken) == ["noisy"]  # neither served yet: in the order they were read
    taken, _, backlog = turns.take(backlog, 1)
    assert tenants(taken) == ["quiet"]
    backlog += hints("late", 1)
    assert tenants(turns.take(backlog, 2)[0]) == ["late", "noisy"]


def test_duplicate_hints_travel_together_and_unreadable_ones_are_junk() -> None:
    ref = workflow_ref("t", "w")
    backlog = [Hint("s1", b"1", ref), Hint("s1", b"2", None), Hint("s2", b"3", ref),
               *hints("u", 2)]
    taken, junk, rest = Turns().take(backlog, 2)
    assert [[h.entry for h in hs] for hs in taken.values()] == [[b"1", b"3"], [b"u-0"]]
    assert [h.entry for h in junk] == [b"2"] and [h.entry for h in rest] == [b"u-1"]


def test_a_tenants_hints_share_one_partition_and_tenants_spread() -> None:
    assert partition("acme", 16) == partition("acme", 16)
    assert partition("acme", 16, "k1") != partition("acme", 16) or \
        partition("acme", 16, "k2") != partition("acme", 16)  # a fairness key can spread one
    assert len({partition(f"tenant-{i}", 16) for i in range(200)}) == 16


def test_kinds_cap_each_kind_and_leave_the_rest_in_order() -> None:
    actions = [Hint("a", f"a-{i}".encode(), TaskRef("a", "t", f"w{i}", "step", "run", 1))
               for i in range(3)]
    backlog = [actions[0], *hints("t", 3), *actions[1:]]
    taken, junk, rest = Turns().take(backlog, 10, {"w": 2})  # no action tasks at all
    assert [k[0] for k in taken] == ["w", "w"] and junk == []
    assert rest == [actions[0], backlog[3], *actions[1:]]
    taken, _, rest = Turns().take(backlog, 4, {"w": 1, "a": 5})  # the limit still holds
    assert sorted(k[0] for k in taken) == ["a", "a", "a", "w"] and len(rest) == 2
