"""The ``durable`` command line for scripts and for workflows that wait for days.

Times are ISO 8601 with the date (UTC unless ``--local``) with how far they are from now;
``--at`` reads a date; ``--json`` prints objects with named fields on every command (NDJSON
for lists); read-only commands refuse a SQLite path that does not exist. Commands run
in-process through ``durable._cli.main``; the workflows run on an in-process worker.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import durable
from durable._cli import main
from durable._cli._render import Times, relative, span

from .test_cli import cli, db  # noqa: F401 - fixtures: `durable --db <tmp file>` in-process

ISO_UTC = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z"
AGO = r"\d(\.\d)?s ago"  # a moment of this test, seconds ago


@durable.action
def stamp(text: str) -> str:
    return f"stamped {text}"


@durable.workflow(name="Slowpoke")
async def slowpoke(ctx: durable.Context, text: str) -> str:
    ctx.set_state("stamping")
    stamped = await ctx.run(stamp, text)
    ctx.set_state("waiting")
    await ctx.sleep(timedelta(days=2))
    return stamped


async def _started(db: str, *ids: str) -> None:
    """Start a Slowpoke per id and run it until it sleeps (two days)."""
    async with durable.connect(db) as client:
        for workflow_id in ids:
            await client.start(slowpoke, workflow_id, id=workflow_id)
        await durable.Worker(client, workflows=[slowpoke], actions=[stamp]).run_until_idle()


def test_spans_and_relative_times_read_in_days() -> None:
    assert [span(s) for s in (0.25, 45, 61, 3 * 3600 + 125, 2 * 86400 - 60, 86400, 9 * 86400)] \
        == ["0.2s", "45s", "1m 1s", "3h 2m", "1d 23h", "1d", "9d"]
    assert relative(2 * 86400 - 90) == "in 1d 23h" and relative(-(3 * 3600 + 150)) == "3h 2m ago"
    times = Times(now=1767603600.0)  # 2026-01-05T09:00:00Z
    assert times.when(1767603600.0 + 2 * 86400 - 60) == "2026-01-07T08:59:00Z (in 1d 23h)"
    assert times.at(1767603600.25, ms=True) == "2026-01-05T09:00:00.250Z"
    local = Times(local=True).at(1767603600.0)
    assert local == datetime.fromtimestamp(1767603600.0).astimezone().isoformat()


def test_show_prints_dates_and_how_far_a_timer_days_away_is(cli, db: str) -> None:
    asyncio.run(_started(db, "s1"))
    code, out, err = cli("show", "s1")
    assert code == 0, err
    lines = out.splitlines()
    assert re.search(rf"\(started {ISO_UTC} \({AGO}\); times are UTC\)", lines[0]), lines[0]
    assert all(re.match(rf"\s+\d+  {ISO_UTC}  ", line) for line in lines[1:lines.index("")])
    timer = next(line for line in lines if "TimerStarted" in line)
    assert re.search(rf"#\d+ 2d, fires at {ISO_UTC} \(in 1d 23h\)", timer), timer
    pending = next(line for line in lines if line.startswith("pending timer"))
    assert re.fullmatch(rf"pending timer #\d+: fires at {ISO_UTC} \(in 1d 23h\)", pending), pending
    fire_at = datetime.fromisoformat(pending.split("fires at ")[1].split(" ")[0])
    assert abs(fire_at.timestamp() - (time.time() + 2 * 86400)) < 60
    assert re.search(rf"started:   {ISO_UTC} \(", out) and "status:    running" in out

    code, out, err = cli("show", "s1", "--local")
    assert code == 0, err
    assert "times are local time" in out and not re.search(ISO_UTC, out)
    offset = datetime.now().astimezone().isoformat()[-6:]
    assert f"{offset} (in 1d 23h)" in out

    code, out, err = cli("list")
    assert code == 0, err
    assert re.search(rf"^s1\s+Slowpoke\s+1\s+running\s+waiting\s+{ISO_UTC} \({AGO}\)$",
                     out.splitlines()[1]), out


def test_at_takes_a_date_and_a_time_in_utc_or_local(cli, db: str) -> None:
    asyncio.run(_started(db, "s2"))
    events = json.loads(cli("show", "s2", "--json")[1])["history"]
    first_task = next(e for e in events if e["type"] == "TaskCompleted")
    moment = datetime.fromtimestamp(first_task["time"] + 1e-6, timezone.utc)
    by_seq = json.loads(cli("show", "s2", "--at", str(first_task["seq"]), "--json")[1])
    assert by_seq["state"] == "stamping"
    for when, options in [(moment.isoformat(), ()),                                # offset
                          (moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), ()),           # Z
                          (moment.replace(tzinfo=None).isoformat(), ()),           # UTC
                          (moment.astimezone().replace(tzinfo=None).isoformat(), ("--local",))]:
        code, out, err = cli("show", "s2", "--at", when, "--json", *options)
        assert code == 0, (when, err)
        assert json.loads(out) == by_seq, when
    code, out, err = cli("show", "s2", "--at", moment.strftime("%H:%M:%S.%f"))
    assert code == 0, err
    assert re.search(rf"as of seq {by_seq['seq']}, {ISO_UTC} \({AGO}\), as recorded:",
                     out), out
    code, _, err = cli("show", "s2", "--at", "2026-13-45")
    assert code == 1 and "is not a moment" in err and "ISO 8601" in err


def test_json_has_named_fields_and_lists_are_ndjson(cli, db: str, tmp_path: Path) -> None:
    asyncio.run(_started(db, "j1", "j2"))
    code, out, err = cli("list", "--json")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert sorted(r["workflow_id"] for r in rows) == ["j1", "j2"]
    assert {(r["workflow"], r["status"], r["state"], r["tenant"]) for r in rows} == {
        ("Slowpoke", "running", "waiting", "default")}
    assert all(isinstance(r["created_at"], float) and r["updated_at"] >= r["created_at"]
               for r in rows)

    code, out, err = cli("show", "j1", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert (shown["workflow_id"], shown["status"], shown["state"]) == ("j1", "running", "waiting")
    timer = next(e for e in shown["history"] if e["type"] == "TimerStarted")
    (pending,) = shown["pending_timers"]
    assert pending["cmd"] == timer["cmd"] and abs(pending["fire_at"] - timer["fire_at"]) < 1
    assert timer["duration"] == 2 * 86400
    kinds = [e["type"] for e in shown["history"]]
    assert kinds[:2] == ["WorkflowStarted", "TaskCompleted"] and "TimerStarted" in kinds
    started = shown["history"][0]
    assert (started["seq"], started["workflow"], started["args"]) == (1, "Slowpoke", ["j1"])
    done = next(e for e in shown["history"] if e["type"] == "ActionCompleted")
    assert (done["result"], done["attempt"]) == ("stamped j1", 1)

    for command, expected in [
            (["send", "j1", "Poke", '{"n": 1}', "--key", "k1"],
             {"workflow_id": "j1", "tenant": "default", "event": "Poke", "key": "k1"}),
            (["cancel", "j2"], {"workflow_id": "j2", "tenant": "default",
                                "cancel_requested": True}),
            (["migrate"], {"url": db, "schema_version": None})]:
        code, out, err = cli(*command, "--json")
        assert code == 0, err
        document = json.loads(out)
        if command == ["migrate"]:
            assert isinstance(document.pop("schema_version"), int)
            expected.pop("schema_version")
        assert document == expected, command

    code, out, err = cli("start", "Slowpoke", '"j3"', "--id", "j3", "--json",
                         "--module", __name__)
    assert code == 0 and json.loads(out) == {"workflow_id": "j3", "tenant": "default"}, err


def test_replay_reads_the_history_show_json_prints(cli, db: str, tmp_path: Path) -> None:
    asyncio.run(_started(db, "r1"))
    code, out, err = cli("show", "r1", "--json")
    assert code == 0, err
    (tmp_path / "r1.json").write_text(out)
    events = json.loads(out)["history"]
    (tmp_path / "list.json").write_text(json.dumps(events))  # the history alone
    code, out, err = cli("replay", str(tmp_path / "r1.json"), str(tmp_path / "list.json"),
                         "--module", __name__, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert {k: report[k] for k in ("replayed", "ok", "diverged", "failed")} == {
        "replayed": 2, "ok": 2, "diverged": 0, "failed": 0}
    next(e for e in events if "cmd" in e).pop("cmd")  # a required field missing: a clear error
    (tmp_path / "list.json").write_text(json.dumps(events))
    code, out, err = cli("replay", str(tmp_path / "list.json"), "--module", __name__, "--json")
    report = json.loads(out)
    assert code == 1 and report["failed"] == 1
    assert report["histories"][0]["error_type"] == "HistoryError"
    assert "has no 'cmd'" in report["histories"][0]["error"]


def test_schedules_print_dates_and_json(cli, db: str) -> None:
    code, out, err = cli("schedule", "create", "daily", "Slowpoke", '"d"', "--every", "1d",
                         "--module", __name__)
    assert code == 0, err
    assert re.fullmatch(rf"schedule daily: next run {ISO_UTC} \(in [0-9hms. ]+\)\n", out), out
    code, out, err = cli("schedule", "list", "--json")
    assert code == 0, err
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert (row["schedule_id"], row["workflow"], row["every"], row["paused"]) == (
        "daily", "Slowpoke", 86400.0, False)
    assert datetime.fromisoformat(row["next_runs"][0]).tzinfo is not None
    code, out, err = cli("schedule", "show", "daily")
    assert code == 0 and "status:    active" in out, err
    assert re.search(rf"next runs:\n  {ISO_UTC} \(in ", out), out
    code, out, err = cli("schedule", "pause", "daily", "--json")
    assert (code, json.loads(out)) == (0, {"schedule_id": "daily", "action": "paused"}), err


@pytest.mark.parametrize("command", [
    ["list"], ["show", "x"], ["show", "x", "--at", "1"], ["query", "x", "q"],
    ["schedule", "list"], ["schedule", "show", "s"], ["verify"], ["replay", "-m", __name__],
    ["patches", "--module", __name__]])
def test_read_only_commands_name_the_missing_path_and_how_to_create_it(
        command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "typo.db"
    url = f"sqlite:///{missing}"
    assert main(["--db", url, *command, "--json"]) == 1
    err = capsys.readouterr().err
    assert err == (f"error: no SQLite database at {str(missing)!r} (from --db or DURABLE_DB "
                   f"{url!r}): this command only reads, so it creates none. Check the path; to "
                   f"create the database, run: durable --db {url} migrate\n")
    assert not missing.exists()


def test_service_lines_are_json_with_json(db: str, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "DURABLE_DB": db, "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, "-m", "durable._cli", "worker",
                             "examples.invoice:worker", "--json"], cwd=repo, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    started = json.loads(proc.stdout.readline())
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert (started["event"], started["service"], started["db"]) == ("started", "worker", db)
    assert started["workflows"] == ["InvoiceApproval"] and started["concurrency"] > 0
    assert json.loads(out) == {"event": "stopped", "service": "worker",
                               "identity": started["identity"]}
