"""Telemetry of a live worker and server: Prometheus metrics scraped over HTTP, log lines that
name their execution, and spans (the SDK's in-memory exporter) that make one trace of an
execution with its timer, its child and its requests."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

import durable
from _support import eventually
from _tracing_support import hex_trace, recorded_spans
from durable._history import WorkflowStarted
from durable_server import Server

DIVERGE = {"on": False}


@durable.action(name="tel_step", inline=False)
async def tel_step(n: int) -> int:
    logging.getLogger("tests.app").info("step %d", n)
    return n + 1


@durable.action(name="tel_quick", timeout=1.0, retry=durable.Retry(attempts=2, initial=0.01))
async def tel_quick(n: int) -> int:
    if n < 0:
        raise ValueError("negative")
    return n * 2


@durable.workflow(name="TelChild")
async def tel_child(ctx: durable.Context, n: int) -> int:
    return await ctx.run(tel_quick, n)


@durable.workflow(name="TelFlow")
async def tel_flow(ctx: durable.Context, n: int) -> int:
    ctx.logger.info("flow begins")
    value = await ctx.run(tel_step, n)
    await ctx.sleep(0.01)
    with_child = await ctx.start_child(tel_child, value, id=f"{ctx.info.workflow_id}-child")
    total = value + await with_child
    ctx.on_update("add", lambda k: k + total)
    await ctx.wait_for("done")
    try:
        await ctx.run(tel_quick, -1)
    except durable.errors.ActionFailedError:
        pass
    return total


@durable.workflow(name="TelDiverges")
async def tel_diverges(ctx: durable.Context) -> str:
    if DIVERGE["on"]:
        await ctx.sleep(1)
    else:
        await ctx.run(tel_quick, 1)
    await ctx.wait_for("go")
    return "done"


CLI_TARGET = [tel_flow, tel_child, tel_step, tel_quick]  # durable worker MODULE:CLI_TARGET


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200
        return _samples(await response.text())


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[durable.Client]:
    async with durable.connect(f"sqlite:///{tmp_path}/t.db") as opened:
        yield opened


async def test_a_live_worker_serves_its_metrics(client: durable.Client) -> None:
    async with durable.Worker(client, [tel_flow, tel_child, tel_diverges], [tel_step, tel_quick],
                              metrics_port=0, max_cached=0) as worker:
        await eventually(lambda: worker.metrics_port, what="the metrics port")
        url = f"http://127.0.0.1:{worker.metrics_port}/metrics"
        handle = await client.start(tel_flow, 1, id="m")
        await eventually(lambda: _has_input(handle, "ChildCompleted"), what="the child's end")
        await handle.send("done")
        assert await handle.result(timeout=10) == 2 + 4
        DIVERGE["on"] = False
        held = await client.start(tel_diverges, id="held")
        await eventually(lambda: _has_input(held, "ActionCompleted"), what="its action")
        DIVERGE["on"] = True  # its code changed: the next task no longer matches the history
        await held.send("go")
        got = await eventually(lambda: _held(url), what="the held execution in the metrics")
    assert got[("durable_action_attempts_total", (("action", "tel_quick"), ("how", "inline")))] >= 2
    assert got[("durable_action_attempts_total", (("action", "tel_step"), ("how", "eager")))] == 1
    failed = ("durable_action_failures_total", (("action", "tel_quick"),))
    assert got[failed] == 2  # -1 fails on each of its 2 attempts (the 2nd claimed, retried)
    assert got[("durable_workflow_cache_lookups_total", (("result", "miss"),))] >= 5  # no cache
    assert got[("durable_replay_duration_seconds_count", (("workflow", "TelFlow"),))] >= 5
    assert got[("durable_workflow_tasks_total", (("outcome", "committed"),
                                                 ("workflow", "TelFlow")))] >= 5
    assert got[("durable_workflow_task_duration_seconds_count", (("workflow", "TelChild"),))] >= 1
    assert got[("durable_schedule_to_start_seconds_count", (("kind", "action"),))] >= 3
    assert got[("durable_workflow_cache_size", ())] == 0
    assert got[("durable_held_executions", ())] == 1


async def _held(url: str) -> dict[Any, float] | None:
    got = await _scrape(url)
    return got if got.get(("durable_held_executions", ())) == 1 else None


async def _has_input(handle: durable.WorkflowHandle[Any], kind: str) -> bool:
    return any(type(e).__name__ == kind for e in await handle.history())


async def test_metrics_need_a_valid_port(client: durable.Client) -> None:
    with pytest.raises(durable.errors.ValidationError, match="metrics_port"):
        durable.Worker(client, [tel_flow], metrics_port=70000)
    with pytest.raises(durable.errors.ArgumentTypeError, match="metrics_port"):
        durable.Worker(client, [tel_flow], metrics_port="9100")  # type: ignore[arg-type]


async def test_every_line_of_a_workflow_task_or_action_names_its_execution(
        tmp_path: Path) -> None:
    async with durable.connect(f"sqlite:///{tmp_path}/t.db", tenant="acme") as client:
        await _logged(client)


async def _logged(client: durable.Client) -> None:
    out = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    durable.configure_logging("info", "json", stream=out)
    try:
        with recorded_spans() as exporter:
            async with durable.Worker(client, [tel_flow, tel_child], [tel_step, tel_quick]):
                handle = await client.start(tel_flow, 1, id="logged")
                await eventually(lambda: _has_input(handle, "ChildCompleted"), what="the child")
                await handle.send("done")
                await handle.result(timeout=10)
            trace_id = hex_trace(next(s for s in exporter.get_finished_spans()
                                      if s.name == "durable.start TelFlow"))
        logging.getLogger("tests.app").info("outside")
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    by_message = {line["message"]: line for line in lines}
    run_id = (await handle.history())[0].run_id  # type: ignore[attr-defined]
    for message in ("flow begins", "step 1"):  # the workflow's logger, an action's own
        line = by_message[message]
        assert (line["workflow_id"], line["run_id"], line["tenant"], line["trace_id"]) == (
            "logged", run_id, "acme", trace_id), line
    assert by_message["action tel_quick attempt 1 failed (ValueError: negative); retrying in "
                      "0.0s"]["workflow_id"] == "logged"
    assert [by_message["outside"][k] for k in ("workflow_id", "run_id", "tenant", "trace_id")] \
        == [None, None, None, None]
    with pytest.raises(durable.errors.InvalidArgumentError, match="log format"):
        durable.configure_logging("INFO", "xml")
    with pytest.raises(durable.errors.InvalidArgumentError, match="log level"):
        durable.configure_logging("LOUD")


async def test_one_trace_holds_the_execution_its_timer_child_and_requests(
        client: durable.Client) -> None:
    with recorded_spans() as exporter:
        async with durable.Worker(client, [tel_flow, tel_child], [tel_step, tel_quick]):
            handle = await client.start(tel_flow, 2, id="traced")
            await eventually(lambda: _has_input(handle, "ChildCompleted"), what="the child")
            assert await handle.update("add", 1) == 1 + 3 + 6
            await handle.send("done")
            await handle.result(timeout=10)
        spans = exporter.get_finished_spans()
    names = [s.name for s in spans]
    by_name = {s.name: s for s in spans}
    start = by_name["durable.start TelFlow"]
    executions = [s for s in spans if s.name not in ("durable.update add", "durable.send done")]
    assert {hex_trace(s) for s in executions} == {hex_trace(start)}
    for expected in ("durable.workflow_task TelFlow", "durable.workflow_task TelChild",
                     "durable.action tel_step", "durable.action tel_quick",
                     "durable.start_child TelChild", "durable.update add", "durable.send done"):
        assert expected in names, (expected, names)
    assert any(n.startswith("durable.timer_fired") for n in names)
    span_ids = {s.get_span_context().span_id: s for s in spans}  # type: ignore[union-attr]
    child_task = by_name["durable.workflow_task TelChild"]
    assert child_task.parent is not None
    assert span_ids[child_task.parent.span_id].name == "durable.start_child TelChild"
    task = by_name["durable.workflow_task TelFlow"]
    assert task.parent is not None and task.parent.span_id == start.get_span_context().span_id
    failed = [s for s in spans if s.name == "durable.action tel_quick"
              and not s.status.is_ok]
    assert len(failed) == 2  # the two attempts of tel_quick(-1)


async def test_an_execution_is_sampled_whole_or_not_at_all(client: durable.Client) -> None:
    """Head sampling: the start's decision is recorded with the execution (its traceparent's
    flags), and every span of its tasks, actions and child follows it, on any worker."""
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    unsampled = NonRecordingSpan(SpanContext(0x5EED, 0xC0FFEE, is_remote=False,
                                             trace_flags=TraceFlags(0)))
    with recorded_spans() as exporter:
        async with durable.Worker(client, [tel_flow, tel_child], [tel_step, tel_quick]):
            with trace.use_span(unsampled):  # an application's trace, not sampled
                dropped = await client.start(tel_flow, 1, id="unsampled")
            kept = await client.start(tel_flow, 1, id="sampled")
            for handle in (dropped, kept):
                await eventually(lambda h=handle: _has_input(h, "ChildCompleted"),
                                 what="the child")
                await handle.send("done")
                assert await handle.result(timeout=10) == 2 + 4
        spans = exporter.get_finished_spans()
    started = (await dropped.history())[0]
    assert isinstance(started, WorkflowStarted)
    assert started.trace is not None and started.trace.startswith(f"00-{0x5EED:032x}-")
    assert started.trace.endswith("-00")  # not sampled, as its parent
    executions = [s for s in spans if s.name != "durable.send done"]  # the caller's trace
    assert not [s for s in executions if hex_trace(s) == f"{0x5EED:032x}"
                or str((s.attributes or {}).get("durable.workflow_id")).startswith("unsampled")]
    kept_trace = {hex_trace(s) for s in spans if s.name == "durable.start TelFlow"}
    assert len(kept_trace) == 1
    names = {s.name for s in spans if hex_trace(s) in kept_trace}
    assert {"durable.workflow_task TelFlow", "durable.workflow_task TelChild",
            "durable.action tel_step", "durable.start_child TelChild"} <= names


async def test_server_metrics_show_queue_depth_timers_due_and_reclaimed_leases(
        tmp_path: Path) -> None:
    async with durable.connect(f"sqlite:///{tmp_path}/s.db") as client:
        for n in range(3):
            await client.start(tel_flow, n, id=f"q{n}")
        await client.start(tel_child, 1, id="on-mail", queue="mail")
        async with Server(client, port=0, interval=0.05) as server:
            got = await _scrape(f"{server.url}/metrics")
            assert got[("durable_queue_depth", (("kind", "workflow"), ("queue", "default")))] == 3
            assert got[("durable_queue_depth", (("kind", "workflow"), ("queue", "mail")))] == 1
            assert got[("durable_queue_depth", (("kind", "action"), ("queue", "default")))] == 0
            assert got[("durable_timers_due", ())] == 0
            assert got[("durable_leases_reclaimed_total", ())] == 0
            async with durable.Worker(client, [tel_flow, tel_child], [tel_step, tel_quick],
                                      queues=["default", "mail"]):
                await eventually(lambda: _depth_zero(f"{server.url}/metrics"),
                                 what="the queues to drain")


async def _depth_zero(url: str) -> bool:
    got = await _scrape(url)
    return all(v == 0 for (name, _), v in got.items() if name == "durable_queue_depth")


def test_durable_worker_serves_metrics_and_logs_json(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {**os.environ, "DURABLE_DB": db, "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), str(repo / "tests"),
                                                          os.environ.get("PYTHONPATH")]))}
    assert subprocess.run([sys.executable, "-m", "durable._cli", "start", "TelFlow", "1",
                           "--id", "cli-1", "--module", "tests.integration.test_telemetry"],
                          cwd=repo, env=env, timeout=60).returncode == 0
    proc = subprocess.Popen([sys.executable, "-m", "durable._cli", "worker",
                             "tests.integration.test_telemetry:CLI_TARGET", "--metrics-port", "0",
                             "--log-format", "json", "--log-level", "info"], cwd=repo, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        started = proc.stdout.readline()
        match = re.search(r"metrics=(http://127\.0\.0\.1:\d+/metrics)", started)
        assert match, started
        deadline = time.monotonic() + 20
        while True:
            with urllib.request.urlopen(match.group(1), timeout=5) as response:
                got = _samples(response.read().decode())
            key = ("durable_workflow_tasks_total", (("outcome", "committed"),
                                                    ("workflow", "TelChild")))
            if got.get(key, 0) >= 1 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert got[key] >= 1
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    # every log record is a JSON line (the signal notice is a plain line of the CLI's own)
    lines = [json.loads(line) for line in err.splitlines() if not line.startswith("durable ")]
    [step] = [line for line in lines if line["message"] == "step 1"]
    assert (step["logger"], step["level"], step["workflow_id"], step["tenant"]) == (
        "tests.app", "INFO", "cli-1", "default")
    assert {"time", "run_id", "trace_id"} <= set(step)
