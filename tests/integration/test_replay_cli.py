"""``durable replay``: recorded histories, from files or a store, against today's code."""

from __future__ import annotations

import asyncio
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

import durable
from durable import _definitions
from durable._cli import main
from durable._cli._replay import parse_since
from durable.errors import UsageError
from examples import invoice, order

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "replay" / "histories"

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(autouse=True)
def registry() -> Iterator[None]:
    """Changed workflow modules register names too: put the registry back afterwards."""
    workflows, actions = dict(_definitions._workflows), dict(_definitions._actions)
    yield
    _definitions._workflows.clear()
    _definitions._workflows.update(workflows)
    _definitions._actions.clear()
    _definitions._actions.update(actions)


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return request.getfixturevalue("pg_database")
    return f"sqlite:///{tmp_path / 'replay.db'}"


def changed_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, body: str) -> str:
    """A module ``name`` in tmp_path with today's (changed) OrderFulfillment."""
    name = f"{name}_{uuid.uuid4().hex[:8]}"  # a new module each time, not the cached one
    (tmp_path / f"{name}.py").write_text(textwrap.dedent('''\
        import durable
        from examples.order import charge_card, notify, ship

        @durable.workflow(name="OrderFulfillment", version="1")
        async def order_fulfillment(ctx: durable.Context, order_id: str, amount_cents: int,
                                    items: list[str], pickup_delay: float = 1.0) -> dict:
        ''') + textwrap.indent(textwrap.dedent(body), "    "))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


async def record(db: str) -> None:
    """Two finished orders (one in tenant "other") and an invoice waiting for a decision."""
    for tenant, ids in (("default", ["ord-1"]), ("other", ["ord-2"])):
        async with durable.connect(db, tenant=tenant) as client, order.worker(client):
            for order_id in ids:
                handle = await client.start(order.order_fulfillment, order_id, 100, ["pen"], 0.0,
                                            id=order_id)
                await handle.result(timeout=30)
    async with durable.connect(db) as client, invoice.worker(client):
        handle = await client.start(invoice.invoice_approval, "inv-1", 500, id="inv-1")
        await handle.send("Submit", {"by": "u1"})
        while (await handle.describe()).state != "submitted":
            await client.store.wakeup.wait(0.05)


def test_the_golden_corpus_replays(cli: Cli) -> None:
    code, out, err = cli("replay", str(GOLDEN), "-m", "examples.order", "-m", "examples.invoice",
                         "-m", "examples.trip", "-m", "examples.subscriptions",
                         "-m", "examples.concurrency", "-v")
    assert code == 0, out + err
    count = len(list(GOLDEN.glob("*.json")))
    assert count >= 7 and f"replayed {count} histories: {count} ok, 0 diverged, 0 failed" in out
    assert "trip-compensated.json (TripBooking, 29 events)" in out
    assert "order-v0.nondeterministic.json (OrderFulfillment, 9 events): diverged, as its " \
        "name says it must" in out
    assert "invoice-waiting.json (InvoiceApproval, 12 events): waits at " in out


def test_a_store_replays_and_filters(cli: Cli, db: str) -> None:
    asyncio.run(record(db))
    modules = ("-m", "examples.order", "-m", "examples.invoice")
    code, out, _ = cli("--db", db, "replay", *modules, "-v")
    assert code == 0 and "replayed 2 executions: 2 ok" in out
    assert "ok       default/ord-1 (OrderFulfillment, " in out
    assert "ok       default/inv-1 (InvoiceApproval, " in out and "waits at" in out
    code, out, _ = cli("--db", db, "--tenants", "*", "replay", *modules, "--all-tenants")
    assert code == 0 and "replayed 3 executions: 3 ok" in out
    code, out, _ = cli("--db", db, "--tenants", "*", "replay", *modules, "--all-tenants", "--workflow",
                       "OrderFulfillment")
    assert "replayed 2 executions" in out
    code, out, _ = cli("--db", db, "replay", *modules, "--status", "running")
    assert "replayed 1 executions" in out
    code, out, _ = cli("--db", db, "replay", *modules, "--since", "1h")
    assert "replayed 2 executions" in out
    code, out, _ = cli("--db", db, "replay", *modules, "--since", "2999-01-01")
    assert code == 0 and "no executions matched" in out
    code, out, _ = cli("--db", db, "--tenant", "nobody", "replay", *modules)
    assert code == 0 and "no executions matched" in out


def test_a_changed_workflow_diverges_with_its_source_line(
        cli: Cli, db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asyncio.run(record(db))
    module = changed_module(tmp_path, monkeypatch, "ships_first", '''\
        ctx.set_state("charging")
        tracking = await ctx.run(ship, order_id, items)  # moved before the charge
        charge_id = await ctx.run(charge_card, order_id, amount_cents)
        return {"order_id": order_id, "charge_id": charge_id, "tracking": tracking}
        ''')
    code, out, err = cli("--db", db, "--tenants", "*", "replay", "--all-tenants", "-m", module, "-m",
                         "examples.invoice", "--progress", "0")
    assert code == 1
    assert out.count("DIVERGED") == 2  # both orders: every divergence, not just the first
    assert "DIVERGED default/ord-1 (OrderFulfillment, " in out
    assert "recorded: ActionScheduled (seq 4) 'charge_card'" in out
    assert f"now:      ScheduleAction 'ship' at {tmp_path / module}.py:8" in out
    assert "replayed 3 executions: 1 ok, 2 diverged, 0 failed" in out
    assert err.count("replay: ") == 3 and "replay: 3 replayed, 2 diverged, 0 failed" in err


def test_changed_arguments_are_reported_and_fail_in_strict_mode(
        cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = f"sqlite:///{tmp_path / 'replay.db'}"
    asyncio.run(record(db))
    module = changed_module(tmp_path, monkeypatch, "charges_more", '''\
        ctx.set_state("charging")
        charge_id = await ctx.run(charge_card, order_id, amount_cents + 1)  # another amount
        ctx.data["charge_id"] = charge_id
        ctx.set_state("awaiting_pickup")
        await ctx.sleep(pickup_delay)
        ctx.set_state("shipping")
        tracking = await ctx.run(ship, order_id, items)
        await ctx.run(notify, order_id, f"shipped, tracking {tracking}")
        ctx.set_state("shipped")
        return {"order_id": order_id, "charge_id": charge_id, "tracking": tracking}
        ''')
    code, out, _ = cli("--db", db, "replay", "-m", module, "--workflow", "OrderFulfillment")
    assert code == 0, out
    assert "CHANGED  default/ord-1 (OrderFulfillment, " in out
    assert "the arguments of action 'charge_card' changed" in out
    assert "1 with changed arguments" in out
    code, out, _ = cli("--db", db, "replay", "-m", module, "--workflow", "OrderFulfillment",
                       "--strict")
    assert code == 1 and "DIVERGED default/ord-1" in out


def test_bad_histories_and_bad_command_lines(cli: Cli, tmp_path: Path) -> None:
    canary = tmp_path / "fine.nondeterministic.json"
    canary.write_bytes((GOLDEN / "order-fulfilled.json").read_bytes())
    (tmp_path / "broken.json").write_text("[1, 2")
    (tmp_path / "unknown.json").write_bytes(  # a workflow that no longer exists anywhere
        (GOLDEN / "invoice-approved.json").read_bytes().replace(b"InvoiceApproval", b"Gone"))
    code, out, _ = cli("replay", str(tmp_path), "-m", "examples.order")
    assert code == 1
    assert "FAILED   " in out and "broken.json: HistoryError: not a durable history in JSON" in out
    assert "fine.nondeterministic.json (OrderFulfillment, 20 events): AssertionError: this " \
        "history is named *.nondeterministic.json, so it must raise NonDeterminismError" in out
    assert "unknown.json (Gone, 28 events): HistoryError: the history is of workflow 'Gone'" in out
    assert "replayed 3 histories: 0 ok, 0 diverged, 3 failed" in out
    for args, message in [
        ((str(tmp_path / "nope.json"), "-m", "examples.order"), "no such file or folder"),
        ((str(GOLDEN),), "no workflows to replay with: pass the modules"),
        ((str(GOLDEN), "-m", "examples.order", "--since", "7d"), "--since selects executions"),
        ((str(GOLDEN), "-m", "examples.order", "--all-tenants"), "--all-tenants selects"),
        (("-m", "no_such_module_xyz"), "cannot import module 'no_such_module_xyz'"),
    ]:
        code, out, err = cli("replay", *args)
        assert code == 1 and message in err, (args, err)
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = cli("replay", str(empty), "-m", "examples.order")
    assert code == 1 and "no *.json history files" in err
    code, _, err = cli("--db", f"sqlite:///{tmp_path / 'x.db'}", "replay", "-m",
                       "examples.order", "--since", "last tuesday")
    assert code == 1 and "--since 'last tuesday' is neither a date/time" in err


def test_since_takes_dates_times_and_ages() -> None:
    now = 1_000_000.0
    assert parse_since("90s", now) == now - 90
    assert parse_since("30m", now) == now - 1800
    assert parse_since("12h", now) == now - 12 * 3600
    assert parse_since("7d", now) == now - 7 * 86400
    assert parse_since("2w", now) == now - 14 * 86400
    assert parse_since("1.5h", now) == now - 5400
    assert parse_since("2026-01-05") == datetime(2026, 1, 5, tzinfo=timezone.utc).timestamp()
    assert parse_since("2026-01-05", local=True) == datetime(2026, 1, 5).timestamp()
    assert parse_since("2026-01-05T10:00+00:00") == 1767607200.0
    assert abs(parse_since("0s") - time.time()) < 60
    with pytest.raises(UsageError):
        parse_since("yesterday")
