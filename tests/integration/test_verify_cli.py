"""``durable verify`` (and ``show``, ``replay``, ``bench --verify``) on SQLite and PostgreSQL
stores whose history rows were damaged behind durable's back."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import asyncpg
import pytest

import durable
from durable._cli import main


@durable.workflow(name="VerifyFlow")
async def verify_flow(ctx: durable.Context, n: int) -> int:
    got = await ctx.wait_for("Go")
    return n + (got.payload if got is not None else 0)


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'verify.db'}"
    return str(request.getfixturevalue("pg_database"))


async def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(args))  # main runs an event loop of its own
    out, err = capsys.readouterr()
    return code, out, err


async def damage(url: str, statement: str) -> None:
    if url.startswith("sqlite:"):
        with sqlite3.connect(url[len("sqlite:///"):]) as conn:
            conn.execute(statement)
        conn.close()
        return
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def three_executions(url: str) -> None:
    async with durable.connect(url) as client:
        for n in (1, 2, 3):
            await client.start(verify_flow, n, id=f"v{n}")
        await durable.Worker(client, workflows=[verify_flow]).run_until_idle()
        await client.get_handle("v3").send("Go", 10)
        await durable.Worker(client, workflows=[verify_flow]).run_until_idle()


async def test_verify_names_each_damaged_history_and_exits_1(
        url: str, capsys: pytest.CaptureFixture[str]) -> None:
    await three_executions(url)
    assert await cli(capsys, "verify", "--db", url) == (
        0, "verified 3 executions (3 runs, 9 events): 0 damaged\n", "")
    await damage(url, "DELETE FROM events WHERE workflow_id = 'v1' AND seq = 2")
    await damage(url, "UPDATE events SET seq = seq + 10 WHERE workflow_id = 'v3' AND seq >= 3")
    code, out, _ = await cli(capsys, "verify", "--db", url)
    assert code == 1
    damaged = [line for line in out.splitlines() if line.startswith("DAMAGED")]
    assert len(damaged) == 2
    assert damaged[0].startswith("DAMAGED  default/v1 run ") and "seq 2 " in damaged[0]
    assert damaged[0].endswith("[truncated]")
    assert "default/v3" in damaged[1] and "seq 3 " in damaged[1] and damaged[1].endswith("[gap]")
    assert out.splitlines()[-1] == "verified 3 executions (3 runs, 8 events): 2 damaged"

    code, out, _ = await cli(capsys, "verify", "--db", url, "--json")
    report = json.loads(out)
    assert code == 1 and (report["executions"], report["events"]) == (3, 8)
    assert [(d["workflow_id"], d["seq"], d["damage"]) for d in report["damaged"]] == [
        ("v1", 2, "truncated"), ("v3", 3, "gap")]
    assert await cli(capsys, "verify", "--db", url, "--tenant", "nobody") == (
        0, "verified 0 executions (0 runs, 0 events): 0 damaged\n", "")


async def test_show_and_replay_report_a_damaged_history_instead_of_a_traceback(
        url: str, capsys: pytest.CaptureFixture[str]) -> None:
    await three_executions(url)
    flip = ("UPDATE events SET body = overlay(body placing '\\x00'::bytea from 3 for 1) "
            if url.startswith("postgres") else
            "UPDATE events SET body = substr(body, 1, 2) || x'00' || substr(body, 4) ")
    await damage(url, flip + "WHERE workflow_id = 'v2' AND seq = 2")
    code, out, err = await cli(capsys, "show", "v2", "--db", url)
    assert code == 1 and "status:    running" in out and "task error" in out
    assert err.startswith("error: damaged history of workflow 'v2'") and "seq 2" in err
    assert "Traceback" not in err
    code, out, _ = await cli(capsys, "replay", "--db", url, "--module", __name__)
    assert code == 1 and "FAILED   default/v2: HistoryError: damaged history" in out
    assert out.splitlines()[-1] == "replayed 3 executions: 2 ok, 0 diverged, 1 failed"


async def test_bench_measures_replay_with_checksums_checked(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await cli(capsys, "bench", "--shapes", "sequential", "--events", "30",
                             "--repeat", "1", "--verify")
    assert code == 0
    [row] = [line.split() for line in out.splitlines()[-3:] if line.startswith("sequential")]
    assert float(row[2]) > 0 and float(row[3]) > 0 and row[4].endswith("%")
    assert "checking costs at most" in out
