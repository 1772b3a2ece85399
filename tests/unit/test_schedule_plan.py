"""Schedules' pure parts: specs (cron, intervals, time zones), the overlap policies and the
catch-up window, as one pass decides them (``durable._schedules._plan``)."""

from __future__ import annotations

import pickle
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from msgspec.structs import replace

from durable import Overlap
from durable._schedules._plan import apply, next_check, plan, run_workflow_id, settle
from durable._schedules._spec import due_after, make_spec, next_dues
from durable._stores._schedule_records import PendingRun, ScheduleRecord, ScheduleRun
from durable.errors import InvalidScheduleError, ValidationError

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z, a multiple of 60


def record(*, every: float | None = 60.0, cron: str | None = None, tz: str = "UTC",
           overlap: Overlap = Overlap.SKIP, window: float = 3600.0,
           next_due: float | None = T0, **kw: Any) -> ScheduleRecord:
    spec = make_spec("s", cron=cron, every=every, offset=0.0, tz=tz, now=T0 - 1)
    return ScheduleRecord("t", "s", "Flow", "1", [], {}, spec, overlap.value, window, T0, T0,
                          next_due=next_due, **kw)


def wid(due: float) -> str:
    return run_workflow_id("s", PendingRun(due))


# ---- specs ----------------------------------------------------------------------------------


def test_intervals_are_aligned_to_the_epoch_plus_offset() -> None:
    spec = make_spec("s", cron=None, every=60, offset=15, tz="UTC", now=T0)
    assert due_after(spec, T0) == T0 + 15
    assert due_after(spec, T0 + 15) == T0 + 75  # strictly after
    assert next_dues(spec, T0, 3) == [T0 + 15, T0 + 75, T0 + 135]


def test_cron_is_read_in_its_time_zone_across_a_dst_change() -> None:
    spec = make_spec("s", cron="0 3 * * *", every=None, offset=0, tz="Europe/Paris", now=T0)
    start = datetime(2027, 3, 26, 12, tzinfo=ZoneInfo("Europe/Paris")).timestamp()
    dues = [datetime.fromtimestamp(d, ZoneInfo("Europe/Paris")) for d in next_dues(spec, start, 2)]
    assert [(d.day, d.hour) for d in dues] == [(27, 3), (28, 3)]  # 03:00 local on both sides
    assert dues[1].timestamp() - dues[0].timestamp() == 23 * 3600  # the night DST began


def test_cron_aliases_and_seconds_field() -> None:
    daily = make_spec("s", cron="@daily", every=None, offset=0, tz="UTC", now=T0)
    assert due_after(daily, T0) == datetime(2027, 1, 16, tzinfo=timezone.utc).timestamp()
    every_ten_seconds = make_spec("s", cron="* * * * * */10", every=None, offset=0, tz="UTC",
                                  now=T0)
    assert next_dues(every_ten_seconds, T0, 2) == [T0 + 10, T0 + 20]


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"cron": "not a cron"}, "cron"),
    ({"cron": "61 * * * *"}, "cron"),
    ({"cron": ""}, "cron"),
    ({"cron": "0 0 31 2 *"}, "cron"),  # February 31st never comes
    ({"every": 0.5}, "every"),
    ({"every": -60}, "every"),
    ({"every": float("nan")}, "every"),
    ({"every": "60"}, "every"),
    ({"cron": "* * * * *", "every": 60}, "cron/every"),
    ({}, "cron/every"),
    ({"every": 60, "tz": "Mars/Olympus"}, "timezone"),
])
def test_bad_specs_are_typed_errors(kwargs: dict[str, Any], field: str) -> None:
    args = {"cron": None, "every": None, "offset": 0.0, "tz": "UTC", "now": T0} | kwargs
    with pytest.raises(InvalidScheduleError) as caught:
        make_spec("nightly", **args)
    err = caught.value
    assert isinstance(err, ValidationError)
    assert (err.schedule_id, err.field) == ("nightly", field)  # type: ignore[attr-defined]
    assert "nightly" in str(err)
    again = pickle.loads(pickle.dumps(err))
    assert (type(again), again.field, str(again)) == (InvalidScheduleError, field, str(err))


def test_run_ids_carry_the_due_time() -> None:
    assert wid(T0) == "s-2027-01-15T08:00:00Z"
    manual = run_workflow_id("s", PendingRun(T0 + 0.25, manual=True))
    assert manual == "s-manual-2027-01-15T08:00:00.250000Z"


# ---- one pass -------------------------------------------------------------------------------


def test_due_times_up_to_now_start_in_order() -> None:
    decided = plan(record(overlap=Overlap.ALLOW_ALL), T0 + 150)
    assert [r.due for r in decided.starts] == [T0, T0 + 60, T0 + 120]
    assert decided.next_due == T0 + 180
    assert plan(record(), T0 - 1).starts == []  # nothing due yet


def test_skip_starts_one_of_a_backlog_and_nothing_while_running() -> None:
    decided = plan(record(), T0 + 150)
    assert ([r.due for r in decided.starts], decided.skipped) == ([T0], 2)
    busy = plan(record(running=["earlier"]), T0)
    assert (busy.starts, busy.skipped, busy.next_due) == ([], 1, T0 + 60)


def test_buffer_one_keeps_one_waiting_and_starts_it_once_the_run_ended() -> None:
    busy = record(overlap=Overlap.BUFFER_ONE, running=["earlier"])
    decided = plan(busy, T0 + 150)
    assert (decided.starts, decided.buffered, decided.skipped) == ([], [PendingRun(T0)], 2)
    after = apply(busy, busy, decided, [], set(), T0 + 150)
    assert next_check(after, T0 + 150) == T0 + 151  # looks again at the running run
    ended = plan(replace(after, running=[]), T0 + 160)
    assert ended.starts == [PendingRun(T0)] and ended.unbuffered == [PendingRun(T0)]


def test_buffer_all_starts_the_waiting_runs_one_after_another() -> None:
    busy = record(overlap=Overlap.BUFFER_ALL, running=["earlier"])
    decided = plan(busy, T0 + 150)
    assert [b.due for b in decided.buffered] == [T0, T0 + 60, T0 + 120]
    state = apply(busy, busy, decided, [], set(), T0 + 150)
    started = []
    for _ in range(3):
        step = plan(replace(state, running=[]), T0 + 160)
        assert len(step.starts) == 1
        started.append(step.starts[0].due)
        runs = [ScheduleRun(step.starts[0].due, wid(step.starts[0].due), T0 + 160)]
        state = settle(apply(state, state, step, runs, set(), T0 + 160), T0 + 160)
    assert started == [T0, T0 + 60, T0 + 120] and state.buffered == []


def test_cancel_other_cancels_the_running_runs_and_starts_at_once() -> None:
    decided = plan(record(overlap=Overlap.CANCEL_OTHER, running=["a", "b"]), T0)
    assert (decided.cancels, decided.starts) == (["a", "b"], [PendingRun(T0)])


def test_allow_all_starts_alongside() -> None:
    decided = plan(record(overlap=Overlap.ALLOW_ALL, running=["a"]), T0 + 60)
    assert len(decided.starts) == 2 and decided.skipped == 0


def test_due_times_older_than_the_catchup_window_are_missed() -> None:
    decided = plan(record(overlap=Overlap.ALLOW_ALL, window=100), T0 + 600)
    assert [r.due for r in decided.starts] == [T0 + 540, T0 + 600]  # at most 100 s late
    assert decided.missed == 9


def test_a_long_outage_of_a_cron_schedule_is_skipped_without_iterating_it() -> None:
    rec = record(every=None, cron="* * * * * *", window=5)  # every second
    decided = plan(rec, T0 + 365 * 86400)
    assert decided.missed >= 10_000 and len(decided.starts) == 1
    assert decided.starts[0].due >= T0 + 365 * 86400 - 5


def test_a_pass_handles_at_most_limit_due_times() -> None:
    decided = plan(record(every=1, overlap=Overlap.ALLOW_ALL), T0 + 1000, limit=100)
    assert len(decided.starts) == 100 and decided.next_due == T0 + 100


def test_triggers_use_their_own_policy_and_work_while_paused() -> None:
    trigger = PendingRun(T0 + 5, manual=True, overlap="allow_all")
    decided = plan(record(paused=True, running=["a"], triggers=[trigger]), T0 + 60)
    assert decided.starts == [trigger] and decided.consumed == [trigger]
    assert decided.next_due == T0  # paused: due times are not processed


def test_next_check() -> None:
    assert next_check(record(), T0 - 30) == T0
    assert next_check(record(paused=True), T0) is None
    assert next_check(record(paused=True, triggers=[PendingRun(T0, True)]), T0 + 1) == T0 + 1
    assert next_check(record(next_due=None), T0) is None


def test_apply_merges_a_pass_into_a_record_a_client_changed_meanwhile() -> None:
    claimed = record(overlap=Overlap.ALLOW_ALL, running=["old"])
    decided = plan(claimed, T0)
    runs = [ScheduleRun(T0, wid(T0), T0)]
    trigger = PendingRun(T0 + 1, manual=True)
    fresh = replace(claimed, revision=2, paused=True, triggers=[trigger], note="paused")
    merged = apply(fresh, claimed, decided, runs, {"old"}, T0 + 1)
    assert merged.revision == 3 and merged.paused and merged.note == "paused"
    assert merged.triggers == [trigger]  # not consumed by this pass
    assert merged.starting == runs and merged.running == [] and merged.runs == 0
    assert merged.next_due == T0  # the client's pause changed the cursor's meaning: kept
    settled = settle(merged, T0 + 2)
    assert settled.revision == 4 and settled.starting == []
    assert settled.running == [wid(T0)] and settled.runs == 1 and settled.recent == runs
    unchanged = settle(apply(claimed, claimed, decided, runs, set(), T0 + 1), T0 + 1)
    assert unchanged.next_due == T0 + 60 and unchanged.running == ["old", wid(T0)]



def test_only_the_latest_runs_are_tracked_while_running() -> None:
    from durable._schedules._plan import TRACKED_RUNS

    state = record(every=1, overlap=Overlap.ALLOW_ALL)
    decided = plan(state, T0 + 149, limit=200)  # 150 runs at once, none ends
    runs = [ScheduleRun(r.due, wid(r.due), T0 + 150) for r in decided.starts]
    settled = settle(apply(state, state, decided, runs, set(), T0 + 150), T0 + 150)
    assert settled.runs == 150 and len(settled.recent) == 10
    assert settled.running == [r.workflow_id for r in runs][-TRACKED_RUNS:]
