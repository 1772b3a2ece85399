"""``client.start``'s half that writes: create the execution, or apply the workflow id policies
when the id is taken.

``on_conflict`` says what a start does when an execution with its id is running:
``"use_existing"`` returns its handle, ``"fail"`` raises ``WorkflowAlreadyStartedError``,
``"terminate_existing"`` ends that run (``WorkflowTerminated``; its code does not run again, a
parent hears ``ChildFailed``) and starts a new one. By default (None) it is ``"use_existing"``
when the running execution is of the same workflow with the same arguments (a retried start),
else ``"fail"``. ``id_reuse`` says what it does when the execution with its id has ended:
``"allow"`` (the default, as Temporal's) starts a new run under the id, ``"allow_failed_only"``
only if the last run did not complete (failed, cancelled or terminated), ``"reject"`` raises.

A new run under a taken id is the execution's next run (``Store.restart_execution``): its
``WorkflowStarted.previous_run`` names the run it replaced, and the store switches runs only if
that is still the current one, so of concurrent starts one wins and the others see its run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Literal

from msgspec.structs import replace

from ._history import ChildFailed, ErrorInfo, WorkflowStarted, WorkflowTerminated
from ._payloads import same_payload
from ._ports import ClientPort, EagerWorker
from ._queues import route
from ._stores import TERMINAL_STATUSES, ExecutionRecord, Signal, WorkflowTask, workflow_ref
from ._validate import show
from .errors import InvalidArgumentError, WorkflowAlreadyStartedError

__all__ = ["ID_REUSE", "ON_CONFLICT", "IdReuse", "OnConflict", "check_policies", "start"]

OnConflict = Literal["use_existing", "fail", "terminate_existing"]
IdReuse = Literal["allow", "allow_failed_only", "reject"]
ON_CONFLICT: Final = ("use_existing", "fail", "terminate_existing")
ID_REUSE: Final = ("allow", "allow_failed_only", "reject")
# Rounds of "read the execution, decide, write" a start tries while concurrent starts (or
# the execution's own continue-as-new) keep changing its run under it.
_ROUNDS: Final = 20


def check_policies(on_conflict: Any, id_reuse: Any, where: str = "start") -> None:
    """``InvalidArgumentError`` for a policy name that does not exist."""
    if on_conflict is not None and on_conflict not in ON_CONFLICT:
        raise InvalidArgumentError(
            f"{where}(on_conflict=) is one of {', '.join(map(repr, ON_CONFLICT))} or None (the "
            f"existing execution if its workflow and arguments are the same, else an error), "
            f"not {show(on_conflict)}", parameter="on_conflict")
    if id_reuse not in ID_REUSE:
        raise InvalidArgumentError(
            f"{where}(id_reuse=) is one of {', '.join(map(repr, ID_REUSE))}, not "
            f"{show(id_reuse)}", parameter="id_reuse")


async def start(client: ClientPort, started: WorkflowStarted, workers: Sequence[EagerWorker], *,
                on_conflict: OnConflict | None, id_reuse: IdReuse) -> tuple[bool, int | None]:
    """Create the execution ``started`` begins, or apply the policies to the one that has its
    id: whether a run began, and the store's wakeup epoch it began in (None: unknown, or
    another since), in which its end will be reported."""
    store, tenant, hosted = client.store, started.tenant, route(started.workflow, started.queue)
    for _ in range(_ROUNDS):
        epoch, now = store.wakeup.epoch, client.clock()
        # Eager start: a worker of this client that hosts the workflow and has room gets the
        # first task with the creation itself (no hint, claim or read; Temporal's eager start).
        eager = next((w for w in workers if w.takes_eager(hosted, tenant)), None)
        lease_to = None if eager is None else (eager.identity, now + eager.lease)
        try:
            record, created = await store.create_execution(started, now=now, lease_to=lease_to)
        except BaseException:
            if eager is not None:
                eager.unreserve(1)
            raise
        if eager is not None and not created:
            eager.unreserve(1)
        began = None if epoch is None or epoch != store.wakeup.epoch else epoch
        if created:
            if eager is None or not await _hand_over(client, eager, started, now):
                # a new execution is in no worker's cache: no look-up of a sticky route
                await client.publish([workflow_ref(tenant, started.workflow_id, hosted)],
                                     sticky=False)
            return True, began
        decided = await _decide(client, record, started, on_conflict, id_reuse)
        if decided is None:
            return False, None  # the existing execution's
        end, signals = decided
        next_run = replace(started, previous_run=record.run_id)
        if end is not None:
            end = replace(end, run_id=started.run_id)
        if await store.restart_execution(next_run, run_id=record.run_id, now=now, end=end,
                                         signals=signals):
            await client.publish([workflow_ref(tenant, started.workflow_id, hosted),
                                  *(workflow_ref(g.tenant, g.workflow_id) for g in signals)])
            return True, None if epoch is None or epoch != store.wakeup.epoch else epoch
    raise WorkflowAlreadyStartedError(
        f"execution {started.workflow_id!r} changed under {_ROUNDS} starts in a row (concurrent "
        "starts of the same id); try again", workflow_id=started.workflow_id, tenant=tenant,
        reason="concurrent starts")


async def _decide(client: ClientPort, record: ExecutionRecord, started: WorkflowStarted,
                  on_conflict: OnConflict | None, id_reuse: IdReuse,
                  ) -> tuple[WorkflowTerminated | None, list[Signal]] | None:
    """What a start does with the execution that has its id: None (use it), or start the next
    run, after ending the running one with the event given (and the signals that tell its
    parent); ``WorkflowAlreadyStartedError`` when the policies say no."""
    workflow_id, tenant = started.workflow_id, started.tenant

    def refuse(reason: str) -> WorkflowAlreadyStartedError:
        return WorkflowAlreadyStartedError(
            f"cannot start {started.workflow!r} with workflow id {workflow_id!r} in tenant "
            f"{tenant!r}: {reason}", workflow_id=workflow_id, tenant=tenant, reason=reason)

    if record.status in TERMINAL_STATUSES:
        if id_reuse == "reject" or (id_reuse == "allow_failed_only"
                                    and record.status == "completed"):
            raise refuse(f"its run {record.run_id} has ended ({record.status}) and "
                         f"id_reuse={id_reuse!r}; pass id_reuse='allow' to start a new run "
                         "under the id, or another id")
        return None, []
    if on_conflict == "use_existing":
        return None
    if on_conflict is None:
        first = await client.store.read_history(tenant, workflow_id, run_id=record.run_id,
                                                limit=1)
        old = first[0] if first else None
        if not isinstance(old, WorkflowStarted):
            return None  # its run moved on meanwhile: as good as a retried start
        if old.workflow == started.workflow and same_payload(
                [old.args, old.kwargs], [started.args, started.kwargs]):
            return None
        differs = "workflow" if old.workflow != started.workflow else "arguments"
        raise refuse(f"it runs (run {record.run_id}) {old.workflow!r} with other {differs} "
                     f"({differs} recorded: {_call(old)}); pass on_conflict='use_existing' for "
                     "its handle, 'terminate_existing' to replace it, or another id")
    if on_conflict == "fail":
        raise refuse(f"it runs (run {record.run_id}) and on_conflict='fail'")
    # terminate_existing
    reason = "terminated by a start with on_conflict='terminate_existing'"
    first = await client.store.read_history(tenant, workflow_id, run_id=record.run_id, limit=1)
    old = first[0] if first else None
    signals: list[Signal] = []
    parent = old.parent if isinstance(old, WorkflowStarted) else None
    if parent is not None:
        failed = ChildFailed(0, 0.0, parent.cmd, ErrorInfo("WorkflowTerminated", reason))
        signals.append(Signal(tenant, parent.workflow_id, failed, f"c{parent.cmd}",
                              parent.run_id))
    return WorkflowTerminated(0, 0.0, reason, ""), signals


def _call(started: WorkflowStarted) -> str:
    shown = [repr(a) for a in started.args] + [f"{k}={v!r}" for k, v in started.kwargs.items()]
    text = f"{started.workflow}({', '.join(shown)})"
    return text if len(text) <= 200 else text[:197] + "..."


async def _hand_over(client: ClientPort, worker: EagerWorker, started: WorkflowStarted,
                     now: float) -> bool:
    """Run a new execution's first task on ``worker``, which its creation leased it to; if
    the worker stopped meanwhile, give the task back (to be announced)."""
    task = WorkflowTask(started.tenant, started.workflow_id, started.workflow, 1,
                        history=[replace(started, seq=1, time=now)], run_id=started.run_id,
                        queue=started.queue)
    if worker.run_eager(task):
        return True
    await client.store.release_workflow_task(task, worker.identity, delay=0.0, error=None,
                                             now=client.clock())
    return False
