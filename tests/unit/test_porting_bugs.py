"""Regressions found while porting Temporal's samples: methods as actions, a history path
given as a ``str``, unions msgspec cannot tell apart (refused at decoration)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import msgspec
import pytest

import durable
from durable.errors import HistoryError, ValidationError
from durable.testing import Environment, save_history


class Payments:
    """An object holding what its actions need (a client, a pool): here, a fee."""

    def __init__(self, fee: int) -> None:
        self.fee = fee
        self.refunds: list[int] = []

    async def charge(self, amount: int) -> int:
        return amount + self.fee

    def refund(self, amount: int) -> int:
        self.refunds.append(amount)
        return -amount


PAYMENTS = Payments(5)
charge = durable.action(PAYMENTS.charge)
refund = durable.action(name="PortingRefund")(PAYMENTS.refund)


@durable.workflow(name="PortingPay")
async def pay(ctx: durable.Context, amount: int) -> list[int]:
    return [await ctx.run(charge, amount), await ctx.run(refund, amount)]


async def test_bound_methods_are_actions_with_their_object() -> None:
    async with Environment(workflows=[pay], actions=[charge, refund]) as env:
        handle = await env.client.start(pay, 10)
        assert await handle.result() == [15, -10]
    assert PAYMENTS.refunds == [10]
    assert charge.__name__ == "charge" and charge.__doc__ == Payments.charge.__doc__


def test_a_method_decorated_in_its_class_is_refused_with_the_way_to_do_it() -> None:
    with pytest.raises(ValidationError, match=r"durable.action\(Payments\(pool\).charge\)") as exc:
        class Bad:
            @durable.action
            def send(self, to: str) -> None:
                """Would receive its first argument as ``self``."""
    assert exc.value.parameter == "self"


@dataclasses.dataclass
class Card:
    number: str


@dataclasses.dataclass
class Wire:
    iban: str


def test_an_untagged_union_of_dataclasses_is_refused_at_decoration() -> None:
    with pytest.raises(ValidationError, match="tag=True") as exc:
        @durable.workflow(name="PortingUntagged")
        async def untagged(ctx: durable.Context, method: Card | Wire) -> None:
            """msgspec cannot tell a Card from a Wire."""
    assert exc.value.parameter == "method"


class TaggedCard(msgspec.Struct, tag=True):
    number: str


class TaggedWire(msgspec.Struct, tag=True):
    iban: str


@durable.workflow(name="PortingTagged")
async def tagged(ctx: durable.Context, method: TaggedCard | TaggedWire) -> str:
    return type(method).__name__


async def test_a_tagged_union_works_end_to_end() -> None:
    async with Environment(workflows=[tagged]) as env:
        handle = await env.client.start(tagged, TaggedWire("DE00"))
        assert await handle.result() == "TaggedWire"


async def test_replayer_reads_a_history_path_given_as_str(tmp_path: Path) -> None:
    async with Environment(workflows=[pay], actions=[charge, refund]) as env:
        handle = await env.client.start(pay, 1)
        await handle.result()
        path = tmp_path / "pay.json"
        save_history(await handle.history(), path)
    replayer = durable.Replayer(workflows=[pay], actions=[charge, refund])
    assert replayer.replay(str(path)).done
    with pytest.raises(HistoryError, match="cannot read the history file"):
        replayer.replay(str(tmp_path / "missing.json"))
