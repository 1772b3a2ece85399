"""The deterministic runtime on its own: no store, no worker, no I/O."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import durable
from durable._history import (
    ActionScheduled, CompleteWorkflow, EventReceived, FailWorkflow, ScheduleAction, SetState,
    StartTimer, TaskCompleted, TimerStarted, WorkflowCompleted,
)
from durable.errors import ActionFailedError, NonDeterminismError

from ._harness import Harness, replay_fresh


@durable.action
async def add(x: int, y: int) -> int:
    return x + y


@durable.action
async def fail_always(x: int) -> int:
    raise RuntimeError("boom")


ACTIONS = {"add": lambda x, y: x + y, "fail_always": lambda x: 1 / 0}


@durable.workflow
async def sequential(ctx: durable.Context, n: int) -> int:
    total = 0
    for i in range(n):
        total = await ctx.run(add, total, i)
    return total


def test_sequential_actions_issue_one_command_per_batch() -> None:
    h = Harness(sequential, 4, actions=ACTIONS)
    outcome = h.run()
    assert outcome == CompleteWorkflow(0 + 1 + 2 + 3)
    assert [len(batch) for batch in h.trace] == [1, 1, 1, 1, 1]
    assert [c.args for batch in h.trace[:4] for c in batch] == [[0, 0], [0, 1], [1, 2], [3, 3]]


def test_replay_reproduces_the_recorded_commands_without_new_ones() -> None:
    h = Harness(sequential, 5, actions=ACTIONS)
    h.run()
    instance, failed = replay_fresh(h)
    assert failed is None
    assert instance.done and instance.outcome == CompleteWorkflow(10)


@durable.workflow
async def parallel(ctx: durable.Context) -> list[int]:
    results = await asyncio.gather(ctx.run(add, 1, 1), ctx.run(add, 2, 2), ctx.run(add, 3, 3))
    return list(results)


def test_parallel_actions_are_scheduled_in_one_batch_in_call_order() -> None:
    h = Harness(parallel, actions=ACTIONS)
    assert h.run() == CompleteWorkflow([2, 4, 6])
    first = h.trace[0]
    assert [type(c) for c in first] == [ScheduleAction] * 3
    assert [c.cmd for c in first] == [0, 1, 2]


@durable.workflow
async def first_completed(ctx: durable.Context) -> str:
    slow = asyncio.ensure_future(ctx.sleep(100))
    fast = asyncio.ensure_future(ctx.sleep(1))
    done, pending = await asyncio.wait([slow, fast], return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    return "fast" if fast in done else "slow"


def test_asyncio_wait_first_completed_races_timers_deterministically() -> None:
    h = Harness(first_completed)
    assert h.run() == CompleteWorkflow("fast")
    kinds = [type(e).__name__ for e in h.history]
    assert kinds.count("TimerStarted") == 2 and kinds.count("TimerFired") == 1
    assert kinds.count("TimerCancelled") == 1
    _, failed = replay_fresh(h)
    assert failed is None


@durable.workflow
async def waits(ctx: durable.Context) -> list[str]:
    got = []
    for _ in range(2):
        event = await ctx.wait_for("A", "B")
        got.append(f"{event.name}:{event.payload}")
    late = await ctx.wait_for("C", timeout=60)
    got.append("timeout" if late is None else late.name)
    return got


def test_events_arriving_early_are_consumed_in_order_first_come() -> None:
    h = Harness(waits)
    h.give(lambda s, t: EventReceived(s, t, "B", 1))
    h.give(lambda s, t: EventReceived(s, t, "X", 0))
    h.give(lambda s, t: EventReceived(s, t, "A", 2))
    assert h.run() == CompleteWorkflow(["B:1", "A:2", "timeout"])
    assert h.time == 1_060.0  # the wait timed out on durable time


def test_wait_for_returns_the_event_when_it_beats_the_timeout() -> None:
    h = Harness(waits)
    h.run()
    h.give(lambda s, t: EventReceived(s, t, "A", 1))
    h.run()
    h.give(lambda s, t: EventReceived(s, t, "A", 2))
    h.run(fire_timers=False)
    h.give(lambda s, t: EventReceived(s, t, "C", None))
    assert h.run() == CompleteWorkflow(["A:1", "A:2", "C"])
    assert [type(e).__name__ for e in h.history].count("TimerCancelled") == 1
    _, failed = replay_fresh(h)
    assert failed is None


@durable.workflow
async def catches(ctx: durable.Context) -> str:
    try:
        await ctx.run(fail_always, 1)
    except ActionFailedError as exc:
        return f"caught {exc.error_type} after {exc.attempts}"
    return "no error"


def test_action_failure_surfaces_as_exception_in_workflow() -> None:
    h = Harness(catches, actions=ACTIONS)
    assert h.run() == CompleteWorkflow("caught ZeroDivisionError after 3")


@durable.workflow
async def raises(ctx: durable.Context) -> None:
    await ctx.run(add, 1, 2)
    raise ValueError("bad invoice")


def test_workflow_exception_fails_the_workflow() -> None:
    h = Harness(raises, actions=ACTIONS)
    outcome = h.run()
    assert isinstance(outcome, FailWorkflow)
    assert outcome.error.type == "ValueError" and outcome.error.message == "bad invoice"
    assert "raises" in outcome.error.traceback


@durable.workflow
async def stateful(ctx: durable.Context) -> dict[str, object]:
    ctx.set_state("one")
    ctx.data["n"] = 1
    ctx.data["gone"] = True
    del ctx.data["gone"]
    t0 = ctx.now()
    await ctx.sleep(5)
    ctx.set_state("two")
    return {"r": ctx.random(), "u": str(ctx.uuid4()), "dt": (ctx.now() - t0).total_seconds(),
            "state": ctx.state, "data": dict(ctx.data)}


def test_state_data_time_and_randomness_replay_identically() -> None:
    h = Harness(stateful)
    outcome = h.run()
    assert outcome.result["dt"] == 5.0
    assert outcome.result["state"] == "two" and outcome.result["data"] == {"n": 1}
    instance, failed = replay_fresh(h)
    assert failed is None and instance.outcome == outcome
    assert instance.state == "two" and instance.data == {"n": 1}
    assert [type(c) for c in h.trace[0]][:1] == [SetState]


@durable.workflow
async def primitives(ctx: durable.Context) -> list[int]:
    queue: asyncio.Queue[int] = asyncio.Queue()
    ready = asyncio.Event()

    async def producer() -> None:
        for i in range(3):
            await queue.put(await ctx.run(add, i, 10))
        ready.set()

    task = asyncio.create_task(producer())
    await ready.wait()
    await task
    async with asyncio.timeout(30):
        await asyncio.sleep(2)
    return [queue.get_nowait() for _ in range(queue.qsize())]


def test_create_task_queue_event_timeout_and_asyncio_sleep() -> None:
    h = Harness(primitives, actions=ACTIONS)
    assert h.run() == CompleteWorkflow([10, 11, 12])
    assert any(isinstance(c, StartTimer) and c.duration == 2 for batch in h.trace for c in batch)
    _, failed = replay_fresh(h)
    assert failed is None


def test_cancellation_raises_cancelled_error_at_the_current_await() -> None:
    from durable._history import CancelRequested, CancelWorkflow

    @durable.workflow(name="cancellable")
    async def cancellable(ctx: durable.Context) -> str:
        try:
            await ctx.wait_for("never")
        except asyncio.CancelledError:
            ctx.set_state("cleaned up")
            raise
        return "done"

    h = Harness(cancellable)
    h.run()
    h.give(lambda s, t: CancelRequested(s, t, "user asked"))
    assert h.run() == CancelWorkflow()
    assert h.instance.state == "cleaned up"


# ---- non-determinism --------------------------------------------------------------------


def _history_with_action(name: str) -> Harness:
    h = Harness(sequential, 1, actions=ACTIONS)
    h.run()
    for i, event in enumerate(h.history):
        if isinstance(event, ActionScheduled):
            h.history[i] = ActionScheduled(event.seq, event.time, event.cmd, name, event.args)
    return h


def test_a_different_action_is_reported_with_recorded_event_new_command_and_line() -> None:
    h = _history_with_action("charge_card")
    _, failed = replay_fresh(h)
    err = failed.error
    assert isinstance(err, NonDeterminismError)
    assert isinstance(err.recorded, ActionScheduled) and err.recorded.name == "charge_card"
    assert isinstance(err.command, ScheduleAction) and err.command.name == "add"
    path, line = err.location.rsplit(":", 1)
    assert path == __file__
    assert "total = await ctx.run(add" in Path(path).read_text().splitlines()[int(line) - 1]
    assert "charge_card" in str(err) and "'add'" in str(err) and "is held" in str(err)


def test_code_that_stops_short_of_the_recorded_commands_is_detected() -> None:
    h = Harness(sequential, 2, actions=ACTIONS)
    h.run()
    # Pretend the code now returns right away: the recorded ActionScheduled is never issued.
    h.history[3:] = [TaskCompleted(4, 1_000.0), WorkflowCompleted(5, 1_000.0, 0)]
    h.history[2] = TimerStarted(3, 1_000.0, 0, 5.0, 1_005.0)
    _, failed = replay_fresh(h)
    assert isinstance(failed.error, NonDeterminismError)
    assert isinstance(failed.error.recorded, TimerStarted)


def test_changed_arguments_only_warn() -> None:
    h = Harness(sequential, 2, actions=ACTIONS)
    h.run()
    scheduled = [i for i, e in enumerate(h.history) if isinstance(e, ActionScheduled)]
    event = h.history[scheduled[1]]
    h.history[scheduled[1]] = ActionScheduled(event.seq, event.time, event.cmd, "add", [99, 99])
    with pytest.warns(durable.NonDeterminismWarning, match="arguments of action 'add'"):
        instance, failed = replay_fresh(h)
    assert failed is None and instance.done


def test_strict_mode_turns_changed_arguments_into_errors() -> None:
    from durable._replay import WorkflowInstance, replay

    h = Harness(sequential, 2, actions=ACTIONS)
    h.run()
    i = next(i for i, e in enumerate(h.history) if isinstance(e, ActionScheduled))
    e = h.history[i]
    h.history[i] = ActionScheduled(e.seq, e.time, e.cmd, "add", [5, 5])
    instance = WorkflowInstance(h.defn, h.started, strict=True)
    _, failed = replay(instance, h.history)
    assert isinstance(failed.error, NonDeterminismError)


def test_divergence_stops_user_code_even_if_it_catches_everything() -> None:
    @durable.workflow(name="swallower")
    async def swallower(ctx: durable.Context) -> str:
        try:
            await ctx.run(add, 1, 1)
        except BaseException:  # noqa: BLE001 - the point of the test
            return "swallowed"
        return "ok"

    h = Harness(swallower, actions=ACTIONS)
    h.run()
    for i, e in enumerate(h.history):
        if isinstance(e, ActionScheduled):
            h.history[i] = ActionScheduled(e.seq, e.time, e.cmd, "other", e.args)
    instance, failed = replay_fresh(h)
    assert isinstance(failed.error, NonDeterminismError)
    activation = instance.activate([], 2_000.0)
    assert activation.error is failed.error and activation.commands == []


def test_io_inside_workflow_code_fails_fast_and_names_the_fix(tmp_path) -> None:
    @durable.workflow(name="does_io")
    async def does_io(ctx: durable.Context, path: str) -> str:
        with open(path) as f:
            return f.read()

    h = Harness(does_io, str(tmp_path / "x.txt"))
    outcome = h.run()
    assert isinstance(outcome, FailWorkflow)
    assert outcome.error.type == "IllegalWorkflowOperationError"
    assert "ctx.run(action" in outcome.error.message


def test_other_threads_may_do_io_while_workflow_code_runs(tmp_path) -> None:
    """Only the workflow's own thread is guarded: a store's thread or a plain-function action's
    thread opening a file meanwhile is not workflow code."""
    opened: list[BaseException | None] = []

    def elsewhere() -> None:
        try:
            (tmp_path / "elsewhere.txt").write_text("x")
            opened.append(None)
        except BaseException as exc:  # noqa: BLE001 - reported below
            opened.append(exc)

    @durable.workflow(name="waits_for_a_thread")
    async def waits_for_a_thread(ctx: durable.Context) -> str:
        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join()
        return "ok"

    assert Harness(waits_for_a_thread).run() == CompleteWorkflow("ok")
    assert opened == [None]


def test_network_and_executor_use_inside_workflow_code_fail() -> None:
    @durable.workflow(name="does_network")
    async def does_network(ctx: durable.Context) -> None:
        await asyncio.open_connection("127.0.0.1", 9)

    @durable.workflow(name="uses_executor")
    async def uses_executor(ctx: durable.Context) -> None:
        await asyncio.to_thread(print, "hi")

    for wf in (does_network, uses_executor):
        outcome = Harness(wf).run()
        assert isinstance(outcome, FailWorkflow)
        assert outcome.error.type == "IllegalWorkflowOperationError", outcome.error


def test_logger_is_silent_during_replay(caplog: pytest.LogCaptureFixture) -> None:
    @durable.workflow(name="logs")
    async def logs(ctx: durable.Context) -> None:
        ctx.logger.warning("step %s", await ctx.run(add, 1, 1))

    h = Harness(logs, actions=ACTIONS)
    with caplog.at_level("WARNING", logger="durable.workflow"):
        h.run()
        assert [r.getMessage() for r in caplog.records] == ["step 2"]
        caplog.clear()
        replay_fresh(h)
        assert caplog.records == []


SCRIPT = textwrap.dedent("""
    import asyncio, json, durable
    from tests.unit._harness import Harness
    @durable.action
    async def add(x: int, y: int) -> int: return x + y
    @durable.workflow
    async def shape(ctx, n: int) -> list:
        out = []
        async def worker(i):
            await ctx.sleep(i % 3 + 1)
            out.append(await ctx.run(add, i, ctx.random() > 0.5))
        await asyncio.gather(*(worker(i) for i in range(n)))
        s = {str(ctx.uuid4()) for _ in range(3)}
        return [out, sorted(s)]
    h = Harness(shape, 8, actions={"add": lambda x, y: x + y})
    h.run()
    print(json.dumps([[repr(c) for c in batch] for batch in h.trace]))
""")


def test_command_trace_is_identical_under_different_hash_seeds() -> None:
    traces = set()
    for seed in ("0", "1", "12345"):
        out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                             env={"PYTHONHASHSEED": seed, "PATH": ""}, cwd=_repo_root(), check=True)
        traces.add(out.stdout)
    assert len(traces) == 1


def _repo_root() -> str:
    import pathlib

    return str(pathlib.Path(__file__).resolve().parents[2])


# ---- durable.Replayer ---------------------------------------------------------------------


def test_replayer_replays_lists_json_and_files(tmp_path: Path) -> None:
    from durable._history import encode_history_json

    h = Harness(sequential, 3, actions=ACTIONS)
    h.run()
    replayer = durable.Replayer([sequential])
    path = tmp_path / "history.json"
    path.write_bytes(encode_history_json(h.history))
    for source in (h.history, encode_history_json(h.history), path):
        result = replayer.replay(source)
        assert result.done and result.events == len(h.history) and result.workflow == "sequential"


def test_replayer_raises_non_determinism_and_history_errors() -> None:
    from durable.errors import HistoryError

    h = _history_with_action("other_action")
    with pytest.raises(NonDeterminismError, match="other_action"):
        durable.Replayer([sequential]).replay(h.history)
    with pytest.raises(HistoryError, match="does not know"):
        durable.Replayer([parallel]).replay(h.history)
    with pytest.raises(HistoryError, match="JSON"):
        durable.Replayer([sequential]).replay(b"{not json")


def test_replayer_reports_where_an_unfinished_history_stops() -> None:
    h = Harness(waits)
    h.run()
    result = durable.Replayer([waits]).replay(h.history)
    assert not result.done
    path, line = result.suspended_at.rsplit(":", 1)
    assert 'await ctx.wait_for("A", "B")' in Path(path).read_text().splitlines()[int(line) - 1]
