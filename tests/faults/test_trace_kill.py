"""One trace per execution across a SIGKILL: a worker process is killed while an action runs;
the next worker's spans (its replay, the action's second attempt, what the action traced, the
timer) join the trace that ``client.start`` began in this process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from _tracing_support import hex_trace, recorded_spans
from durable._history import WorkflowStarted

from ._procs import Rig
from ._traced_worker import traced_flow

pytestmark = pytest.mark.faults


def _spans(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def test_a_trace_spans_a_sigkilled_worker(rig: Rig) -> None:
    with recorded_spans() as exporter:
        handle = await rig.client.start(traced_flow, "x", id="traced")
        [start] = exporter.get_finished_spans()
    trace_id = hex_trace(start)
    assert start.name == "durable.start TracedFlow"
    started = (await handle.history())[0]
    assert isinstance(started, WorkflowStarted) and started.trace is not None
    assert started.trace.split("-")[1] == trace_id  # recorded with the execution

    def worker(name: str) -> Any:
        return rig.procs.start_module(name, "tests.faults._traced_worker", rig.url,
                                      str(rig.directory / f"spans-{name}.jsonl"),
                                      str(rig.directory))

    a = worker("A")
    await rig.eventually(lambda: (rig.directory / "running-1").exists(),
                         what="the first attempt running on worker A")
    rig.kill(a)
    worker("B")
    await rig.eventually(lambda: (rig.directory / "running-2").exists(),
                         what="the second attempt running on worker B")
    rig.open_gate()
    assert await rig.result(handle) == "X"

    before, after = _spans(rig.directory / "spans-A.jsonl"), _spans(rig.directory / "spans-B.jsonl")
    assert [s["name"] for s in before] == ["durable.workflow_task TracedFlow"]  # the attempt
    names = [s["name"] for s in after]  # never ended on A: no span of it survives
    assert "durable.action traced_step" in names and "inside the action" in names
    assert any(n.startswith("durable.timer_fired") for n in names)
    assert {s["trace_id"] for s in before + after} == {trace_id}  # one trace, both processes
    by_name = {s["name"]: s for s in after}
    action = by_name["durable.action traced_step"]
    assert action["attributes"]["durable.attempt"] == 2
    assert by_name["inside the action"]["parent"] == action["span_id"]  # the action's child
    assert action["parent"] == f"{start.get_span_context().span_id:016x}"  # the start's
    replays = [s for s in after if s["name"] == "durable.workflow_task TracedFlow"]
    assert replays and replays[0]["attributes"]["durable.replayed"] is True
