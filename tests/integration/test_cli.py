"""The ``durable`` command line and the runnable examples, against a SQLite file.

Short commands run in-process through ``durable._cli.main``; workers and examples run as
subprocesses, as users run them, and are stopped with SIGTERM.
"""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from durable._cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


@pytest.fixture
def cli(db: str, capsys: pytest.CaptureFixture[str]):
    """Run ``durable --db <tmp file> ARGS...`` in-process; return (exit status, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["--db", db, *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _env(db: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "DURABLE_DB": db, "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1"}


def _worker(db: str, target: str, cwd: Path = REPO) -> tuple[subprocess.Popen[str], str]:
    """Start ``durable worker TARGET``; return it once it printed its start line (and that line)."""
    proc = subprocess.Popen([sys.executable, "-m", "durable._cli", "worker", target],
                            cwd=cwd, env=_env(db), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline() if proc.stdout else ""
    assert "started" in first, (first, proc.communicate(timeout=5))
    return proc, first


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGTERM the worker; it must exit 0 promptly (graceful shutdown)."""
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=5)
    assert proc.returncode == 0, err
    assert "stopped" in out
    return out, err


def _history(cli, workflow_id: str) -> list[dict]:
    code, out, err = cli("show", workflow_id, "--json")
    assert code == 0, err
    return json.loads(out)["history"]


def _eventually(cli, args: tuple[str, ...], predicate, timeout: float = 10.0) -> str:
    """Run ``durable ARGS`` until ``predicate(stdout)`` holds; return that stdout."""
    deadline = time.monotonic() + timeout
    while True:
        code, out, err = cli(*args)
        assert code == 0, err
        if predicate(out):
            return out
        assert time.monotonic() < deadline, f"durable {' '.join(args)}: never true:\n{out}"
        time.sleep(0.1)


def _eventually_status(cli, workflow_id: str, status: str) -> str:
    return _eventually(cli, ("list", "--status", status), lambda out: any(
        line.split()[0] == workflow_id for line in out.splitlines()[1:]))


def _start_from(cli, tmp_path: Path, module: str, *args: str) -> None:
    """``durable start ... --module MODULE`` in-process, for a module written into tmp_path."""
    sys.path.insert(0, str(tmp_path))
    writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no stale .pyc
    try:
        code, _, err = cli("start", *args, "--module", module)
        assert code == 0, err
    finally:
        sys.dont_write_bytecode = writes_bytecode
        sys.path.remove(str(tmp_path))
        sys.modules.pop(module, None)


def test_start_send_work_list_show(cli, db: str) -> None:
    code, out, err = cli("start", "InvoiceApproval", '"inv-1"', "500", "0.2",
                         "--id", "inv-1", "--module", "examples.invoice")
    assert (code, out.strip(), err) == (0, "inv-1", "")
    assert cli("send", "inv-1", "Submit", '{"by": "u1"}', "--metadata", '{"user": "ann"}')[0] == 0
    assert cli("send", "inv-1", "Approve", "--key", "approve-1")[0] == 0
    assert cli("send", "inv-1", "Approve", "--key", "approve-1")[0] == 0  # deduplicated

    worker, started = _worker(db, "examples.invoice:worker")
    try:
        listing = _eventually_status(cli, "inv-1", "completed")
    finally:
        _stop(worker)
    assert f"db={db} workflows=InvoiceApproval actions=send_email,log_event" in started
    row = next(line.split() for line in listing.splitlines() if line.startswith("inv-1"))
    assert row[:5] == ["inv-1", "InvoiceApproval", "1", "completed", "approved"]

    code, out, err = cli("show", "inv-1")
    assert code == 0, err
    for expected in ("WorkflowStarted", 'InvoiceApproval("inv-1", 500, 0.2)',
                     '#1 send_email("manager@example.com"', 'log_event(message="inv-1 submitted")',
                     "Submit {\"by\":\"u1\"} metadata={\"user\":\"ann\"}", "key=approve-1",
                     "TimerStarted", "0.2s",
                     'WorkflowCompleted "approved"', "status:    completed", "state:     approved"):
        assert expected in out, expected
    assert out.count("EventReceived") == 2  # the second Approve was deduplicated

    events = _history(cli, "inv-1")
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["type"] == "WorkflowStarted" and events[-1]["type"] == "WorkflowCompleted"


def test_sigterm_lets_the_action_in_flight_finish(cli, db: str, tmp_path: Path) -> None:
    (tmp_path / "slowflow.py").write_text(
        "import asyncio, pathlib, durable\n"
        "@durable.action\n"
        "async def slow(marker: str) -> str:\n"
        "    pathlib.Path(marker).write_text('began')\n"
        "    await asyncio.sleep(0.8)\n"
        "    return 'finished'\n"
        "@durable.workflow(name='Slow')\n"
        "async def slow_flow(ctx: durable.Context, marker: str) -> str:\n"
        "    return await ctx.run(slow, marker)\n"
        "worker = [slow_flow, slow]\n")
    marker = tmp_path / "marker"
    _start_from(cli, tmp_path, "slowflow", "Slow", json.dumps(str(marker)), "--id", "s1")
    worker, _ = _worker(db, "slowflow", cwd=tmp_path)
    deadline = time.monotonic() + 5
    while not marker.exists():
        assert time.monotonic() < deadline and worker.poll() is None
        time.sleep(0.02)
    _stop(worker)  # returns only after `slow` finished and its result was recorded
    completed = [e for e in _history(cli, "s1") if e["type"] == "ActionCompleted"]
    assert len(completed) == 1 and completed[0]["result"] == "finished"


def test_a_worker_process_collects_garbage_as_a_service(cli, db: str, tmp_path: Path) -> None:
    """``durable worker`` raises the collector's thresholds (``service_gc``): its instances are
    freed by reference counting; the default thresholds cost a busy worker ~12 % of its CPU."""
    (tmp_path / "gcflow.py").write_text(
        "import gc, durable\n"
        "@durable.action\n"
        "async def thresholds() -> list[int]:\n"
        "    return list(gc.get_threshold())\n"
        "@durable.workflow(name='Thresholds')\n"
        "async def flow(ctx: durable.Context) -> list[int]:\n"
        "    return await ctx.run(thresholds)\n"
        "worker = [flow, thresholds]\n")
    _start_from(cli, tmp_path, "gcflow", "Thresholds", "--id", "g1")
    worker, _ = _worker(db, "gcflow", cwd=tmp_path)
    try:
        _eventually_status(cli, "g1", "completed")
    finally:
        _stop(worker)
    [ended] = [e for e in _history(cli, "g1") if e["type"] == "WorkflowCompleted"]
    assert ended["result"] == [10_000, 50, 20]


NONDETERMINISTIC = """\
import durable
@durable.action
def first() -> int: return 1
@durable.action
def other() -> int: return 2
@durable.workflow(name="Changing")
async def changing(ctx: durable.Context) -> int:
    await ctx.run(first)
    ctx.set_state("waiting")
    await ctx.wait_for("Go")
    return 1
worker = [changing, first, other]
"""


def test_show_reports_the_non_determinism_that_holds_an_execution(cli, db: str,
                                                                   tmp_path: Path) -> None:
    source = tmp_path / "changing.py"
    source.write_text(NONDETERMINISTIC)
    _start_from(cli, tmp_path, "changing", "Changing", "--id", "c1")
    worker, _ = _worker(db, "changing", cwd=tmp_path)
    try:
        _eventually(cli, ("list",), lambda out: "waiting" in out)
    finally:
        _stop(worker)
    source.write_text(NONDETERMINISTIC.replace("ctx.run(first)", "ctx.run(other)"))  # deploy a change
    assert cli("send", "c1", "Go")[0] == 0
    worker, _ = _worker(db, "changing", cwd=tmp_path)
    try:
        out = _eventually(cli, ("show", "c1"), lambda out: "task error" in out)
    finally:
        _stop(worker)
    assert "status:    running" in out and "diverged" in out
    assert f"{source}:8" in out  # the line that issued the new command
    assert "'first'" in out and "'other'" in out


def test_worker_target_forms(db: str, tmp_path: Path) -> None:
    (tmp_path / "forms.py").write_text(
        "import durable\n"
        "@durable.action\n"
        "def act() -> None: ...\n"
        "@durable.workflow(name='Flow')\n"
        "async def flow(ctx: durable.Context) -> None: ...\n"
        "as_list = [flow, act]\n"
        "as_dict = {'workflows': [flow], 'actions': [act]}\n"
        "def factory(client, **options):\n"
        "    return durable.Worker(client, workflows=[flow], **options)\n")
    for target, shown in [("forms:as_list", "actions=act"), ("forms:as_dict", "actions=act"),
                          ("forms:factory", "actions=-")]:
        worker, started = _worker(db, target, cwd=tmp_path)
        _stop(worker)
        assert "workflows=Flow" in started and shown in started, started


def test_cancel(cli, db: str) -> None:
    assert cli("start", "InvoiceApproval", '"inv-2"', "7", "--id", "inv-2",
               "--module", "examples.invoice")[0] == 0
    code, out, err = cli("cancel", "inv-2")
    assert (code, err) == (0, "") and "inv-2" in out
    worker, _ = _worker(db, "examples.invoice:worker")
    try:
        _eventually_status(cli, "inv-2", "cancelled")
    finally:
        _stop(worker)
    code, _, err = cli("cancel", "inv-2")
    assert code == 1 and err == "error: execution 'inv-2' has already ended (cancelled)\n"


def test_start_with_a_priority_and_a_fairness_key(cli) -> None:
    code, out, err = cli("start", "InvoiceApproval", '"inv-p"', "500", "--id", "inv-p",
                         "--priority", "7", "--fairness-key", "shop-1",
                         "--module", "examples.invoice")
    assert (code, out.strip(), err) == (0, "inv-p", "")
    code, out, err = cli("show", "inv-p")
    assert code == 0 and "priority:  7  fairness key=shop-1" in out, err
    code, _, err = cli("start", "InvoiceApproval", '"inv-q"', "500", "--priority", str(2**31),
                       "--module", "examples.invoice")
    assert code == 1 and "priority" in err


def test_start_on_a_taken_id_follows_the_policies(cli) -> None:
    invoice = ("InvoiceApproval", '"inv-c"', "500")
    assert cli("start", *invoice, "--id", "inv-c", "--module", "examples.invoice")[0] == 0
    code, out, err = cli("start", *invoice, "--id", "inv-c", "--module", "examples.invoice")
    assert (code, out.strip(), err) == (0, "inv-c", "")  # the same start again: its handle
    code, out, err = cli("start", "InvoiceApproval", '"inv-c"', "600", "--id", "inv-c",
                         "--module", "examples.invoice")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "other arguments" in err and "on_conflict=" in err
    code, out, err = cli("start", "InvoiceApproval", '"inv-c"', "600", "--id", "inv-c",
                         "--on-conflict", "terminate_existing", "--module", "examples.invoice")
    assert (code, out.strip(), err) == (0, "inv-c", "")
    code, out, _ = cli("show", "inv-c")
    assert code == 0 and "600" in out
    code, _, err = cli("start", *invoice, "--id", "inv-c", "--on-conflict", "replace",
                       "--module", "examples.invoice")
    assert code == 1 and "on_conflict" in err and "terminate_existing" in err


def test_unknown_workflow_is_a_clear_error_and_writes_nothing(cli, tmp_path: Path) -> None:
    code, out, err = cli("start", "NoSuchFlow", "1", "--id", "x", "--module", "examples.invoice")
    assert code == 1 and out == ""
    assert err.startswith("error: no workflow named 'NoSuchFlow'") and err.count("\n") == 1
    assert "examples.invoice" in err and "--module" in err and "InvoiceApproval" in err
    assert not (tmp_path / "cli.db").exists()


def test_bad_arguments_are_clear_errors(cli, tmp_path: Path) -> None:
    code, _, err = cli("start", "InvoiceApproval", "inv-1", "500", "--module", "examples.invoice")
    assert code == 1 and "argument 1 'inv-1' is not valid JSON" in err and '\'"inv-1"\'' in err
    code, _, err = cli("start", "InvoiceApproval", '"x"', "1", "--module", "no_such_module_here")
    assert code == 1 and "cannot import module 'no_such_module_here'" in err
    assert not (tmp_path / "cli.db").exists()
    code, _, err = cli("start", "InvoiceApproval", '"inv-1"', '"many"', "--module", "examples.invoice")
    assert code == 1 and err.startswith("error: InvoiceApproval(): argument 'amount'")
    code, _, err = cli("send", "missing", "Submit", "{bad")
    assert code == 1 and "payload '{bad' is not valid JSON" in err
    for command in (["send", "missing", "Submit"], ["show", "missing"], ["cancel", "missing"]):
        code, _, err = cli(*command)
        assert code == 1 and err == "error: no execution 'missing' in tenant 'default'\n"
    assert "Traceback" not in err
    code, out, _ = cli("list")
    assert (code, out) == (0, "no executions\n")


def test_tenants_are_separate(cli) -> None:
    assert cli("--tenant", "acme", "start", "InvoiceApproval", '"a"', "1", "--id", "t1",
               "-m", "examples.invoice")[0] == 0
    assert cli("list")[1] == "no executions\n"
    assert "t1" in cli("list", "--tenant", "acme")[1]
    assert cli("--tenants", "*", "list", "--all-tenants")[1].split("\n")[1].split()[:2] == [
        "acme", "t1"]


def test_query_and_update(cli, db: str) -> None:
    code, _, err = cli("start", "ShoppingCart", '"ann"', "--id", "cart-1", "--module",
                       "examples.cart")
    assert code == 0, err
    code, _, err = cli("query", "cart-1", "total", "--timeout", "0.2")  # no worker yet
    assert code == 1 and err.startswith("error: no answer to query 'total'")
    worker, _ = _worker(db, "examples.cart:worker")
    try:
        assert cli("update", "cart-1", "add", '"tea"', "--key", "k-tea") == (0, "4\n", "")
        assert cli("update", "cart-1", "add", '"tea"', "--key", "k-tea") == (0, "4\n", "")  # once
        code, out, err = cli("update", "cart-1", "add", '"caviar"')
        assert (code, out) == (1, "") and "rejected, nothing was recorded" in err
        assert "we do not sell 'caviar'" in err
        assert cli("query", "cart-1", "items") == (0, '["tea"]\n', "")
        code, _, err = cli("query", "cart-1", "discount", "--timeout", "0.3")
        assert code == 1 and "registered a handler for 'discount'" in err  # it waited for one
        code, _, err = cli("update", "cart-1", "add", "tea")  # not JSON
        assert code == 1 and "not valid JSON" in err
    finally:
        _stop(worker)
    code, out, err = cli("show", "cart-1")
    assert code == 0, err
    assert 'UpdateAccepted    add("tea") id=k-tea' in out and "UpdateCompleted   add -> 4" in out
    assert out.count("UpdateAccepted") == 1


def test_show_at_a_past_moment(cli, db: str) -> None:
    from datetime import datetime, timezone

    code, _, err = cli("start", "InvoiceApproval", '"inv-9"', "500", "--id", "inv-9",
                       "--module", "examples.invoice")
    assert code == 0, err
    source = (REPO / "examples" / "invoice.py").read_text().splitlines()
    submit = next(i for i, text in enumerate(source, 1) if 'wait_for("Submit")' in text)
    decide = next(i for i, text in enumerate(source, 1) if 'wait_for("Approve"' in text)
    path = REPO / "examples" / "invoice.py"
    worker, _ = _worker(db, "examples.invoice:worker")
    try:
        _eventually(cli, ("show", "inv-9"), lambda out: f"waiting:   {path}:{submit}" in out)
        assert cli("send", "inv-9", "Submit", '{"by": "u1"}')[0] == 0
        shown = _eventually(cli, ("show", "inv-9"), lambda out: "state:     submitted" in out)
    finally:
        _stop(worker)
    assert f"waiting:   {path}:{decide}" in shown  # describe()
    assert f"waits at invoice.py:{submit}" in shown  # the first TaskCompleted says where

    code, out, err = cli("show", "inv-9", "--at", "2")
    assert code == 0, err
    assert "as of seq 3, " in out and "as recorded" in out and "state:     draft" in out
    assert f"invoice.py:{submit}" in out.split("as of seq")[1]
    assert "later events not shown" in out and "WorkflowCompleted" not in out
    code, replayed, err = cli("show", "inv-9", "--at", "2", "--replay", "-m", "examples.invoice")
    assert code == 0, err
    assert "replayed with today's code" in replayed
    assert replayed.split("as of seq")[1].split("\n")[1:] == out.split("as of seq")[1].split("\n")[1:]

    events = _history(cli, "inv-9")
    code, out, err = cli("show", "inv-9", "--at", "3", "--json")
    assert code == 0, err
    state = json.loads(out)
    assert (state["seq"], state["state"], state["status"]) == (3, "draft", "running")
    ran = [e for e in events if e["type"] == "TaskCompleted"][1]  # the task that ran Submit
    clock = datetime.fromtimestamp(ran["time"] + 1e-6, timezone.utc).strftime("%H:%M:%S.%f")
    code, out, err = cli("show", "inv-9", "--at", clock, "--json")
    assert code == 0, err
    code, by_seq, err = cli("show", "inv-9", "--at", str(ran["seq"]), "--json")
    assert code == 0, err
    assert json.loads(out) == json.loads(by_seq) and json.loads(out)["pending"] == []
    code, out, err = cli("show", "inv-9", "--at", f"@{events[0]['time']}", "--json")
    assert code == 0, err
    assert json.loads(out)["seq"] == 1

    assert cli("show", "inv-9", "--at", "tomorrow")[2].startswith("error: --at 'tomorrow'")
    code, _, err = cli("show", "inv-9", "--at", "999")
    assert code == 1 and "there is no seq 999" in err
    code, _, err = cli("show", "inv-9", "--replay")
    assert code == 1 and "--replay goes with --at" in err


@pytest.mark.parametrize("example, expected", [
    ("examples.invoice", "result: approved"),
    ("examples.order", "result: {'order_id': 'ord-"),
    ("examples.cart", "result: {'customer': 'ann', 'items': ['tea', 'cake'], 'total': 11}"),
])
def test_examples_run_to_completion(tmp_path: Path, example: str, expected: str) -> None:
    proc = subprocess.run([sys.executable, "-m", example], cwd=REPO, capture_output=True,
                          text=True, timeout=30, env=_env(f"sqlite:///{tmp_path / 'demo.db'}"))
    assert proc.returncode == 0, proc.stderr
    assert expected in proc.stdout and "WorkflowCompleted" in proc.stdout
    assert (tmp_path / "demo.db").exists()
    if example == "examples.order":  # failed twice, then succeeded: one recorded completion
        assert "'attempt': 3" in proc.stdout and proc.stdout.count("ActionCompleted") == 3


def test_the_error_strategies_example_runs(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "examples.trip"], cwd=REPO, capture_output=True,
                          text=True, timeout=60, env=_env(f"sqlite:///{tmp_path / 'trip.db'}"))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "alice: booked: {" in out and "'not_confirmed_on': ['sms']" in out  # continue
    assert out.count("on attempt 3") == 2  # retry: both flights, after two timeouts each
    bob = out[out.index("bob: booking"):out.index("carol: booking")]
    undo = ["[flight] cancelled F-trip-bob", "[car] returned C-trip-bob",
            "[hotel] cancelled H-trip-bob"]
    assert [bob.index(line) for line in undo] == sorted(bob.index(line) for line in undo)
    assert "bob: failed: action 'charge' failed after 1 attempt(s): NonRetryable: card of bob " \
        "declined" in bob  # compensate: the original error, after the compensations
    carol = out[out.index("carol: booking"):]
    assert "carol: failed: action 'quote' failed after 1 attempt(s): NonRetryable: cannot " \
        "price" in carol and "[hotel]" not in carol  # stop: nothing was booked


def test_the_concurrency_example_runs(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "examples.concurrency"], cwd=REPO,
                          capture_output=True, text=True, timeout=60,
                          env=_env(f"sqlite:///{tmp_path / 'concurrency.db'}"))
    assert proc.returncode == 0, proc.stderr
    results = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
    # Real time: replies due together may arrive in any order, so compare as sets.
    assert sorted(ast.literal_eval(results["cheapest_quote"])) == [
        ["globex", 142], ["stark", 290], ["umbrella", 216]]  # the others were too slow
    assert sorted(ast.literal_eval(results["quotes_as_they_come"])) == [
        ["acme", 104], ["globex", 141], ["hooli", 252], ["initech", 178], ["stark", 289],
        ["umbrella", 215]]
    booked = ast.literal_eval(results["book_all_or_nothing"])
    assert booked["refused"] == ["acme is out of gears"] and sorted(booked["released"]) == [
        f"{s} released gears" for s in ("hooli", "initech", "stark", "umbrella")]
    assert ast.literal_eval(results["quotes_within"]) == {"quotes": [], "audit": ["acme", 110]}
    assert ast.literal_eval(results["order_pipeline"])["bought"] == 4


def test_bench_measures_replay_next_to_the_floors(cli) -> None:
    code, out, _ = cli("bench", "--shapes", "sequential", "timers", "--events", "30",
                       "--repeat", "1")
    assert code == 0
    rows = [line.split() for line in out.splitlines() if line.startswith(("sequential", "timers"))]
    assert [(r[0], int(r[2])) for r in rows] == [("sequential", 10), ("timers", 10)]
    assert all(float(r[4]) > 0 for r in rows)  # us/step
    assert "asyncio loop iteration" in out


def test_lint_reports_calls_that_would_replay_differently(cli) -> None:
    code, out, _ = cli("lint", "tests.unit._guard_samples")
    assert code == 1
    lines = out.splitlines()
    assert any("_guard_samples.py:" in line and "clock.time() is not deterministic: use "
               "ctx.now()" in line and "'GuardSampleClock'" in line for line in lines)
    assert lines[-1] == "checked 3 workflow(s): 6 call(s) that would replay differently"
    code, out, _ = cli("lint", "examples.order", "examples.concurrency", "--json")
    assert code == 0 and json.loads(out) == {"findings": [], "workflows": 6}


def test_version_prints_the_installed_distributions_version(
        capsys: pytest.CaptureFixture[str]) -> None:
    from importlib import metadata

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"durable {metadata.version('durable')}\n"


@pytest.mark.parametrize("command", [["list"], ["show", "x"], ["schedule", "list"],
                                     ["verify"], ["patches", "--module", "examples.order"]])
def test_read_only_commands_refuse_a_missing_sqlite_file(
        command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "typo.db"
    assert main(["--db", f"sqlite:///{missing}", *command]) == 1
    assert "no SQLite database at" in capsys.readouterr().err
    assert not missing.exists()


@pytest.mark.parametrize("command", [["worker", "examples.invoice:worker"], ["server"]])
def test_a_liveness_timeout_that_is_not_positive_is_refused(
        command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'live.db'}"
    assert main(["--db", db, *command, "--liveness-timeout", "0"]) == 1
    assert "liveness_timeout" in capsys.readouterr().err


def test_worker_queue_limits(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mailer.py").write_text(
        "import durable\n"
        "@durable.action(queue='email')\n"
        "def send() -> None: ...\n"
        "worker = [send]\n")
    proc = subprocess.Popen([sys.executable, "-m", "durable._cli", "worker", "mailer:worker",
                             "--queue-limit", "email=5", "--queue-rate", "email=100/s"],
                            cwd=tmp_path, env=_env(db), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    started = proc.stdout.readline() if proc.stdout else ""
    _stop(proc)
    assert "queue-limits=email:5 at once 100/s" in started, started
    for option, value, says in [("--queue-limit", "email=0", "max_concurrent"),
                                ("--queue-limit", "email=-1", "max_concurrent"),
                                ("--queue-rate", "email=fast", "rate"),
                                ("--queue-limit", "sms=5", "does not serve")]:
        assert main(["--db", db, "worker", "examples.invoice:worker", option, value]) == 1
        assert says in capsys.readouterr().err, (option, value)
    for option, value in [("--queue-limit", "email"), ("--queue-limit", "email=five"),
                          ("--queue-rate", "=5/s")]:
        assert main(["--db", db, "worker", "examples.invoice:worker", option, value]) != 0
        assert option in capsys.readouterr().err, (option, value)
