"""Answering queries and updates inside a workflow task, from the live instance.

A workflow task marked ``requested`` reads the execution's pending requests once its inputs
have run. A request whose handler the run has not registered yet is left pending (its caller
asks again as it waits): it is answered once the code registering it has run, and fails only
when the run ends without it. Updates come first, in arrival order: each is validated against the live workflow
(its handler exists, its arguments fit, its validator passes); a rejected one is answered at
once and leaves no trace, an accepted one becomes an ``UpdateAccepted`` input of the next batch,
so its handler runs in the workflow. Queries are answered last, from the state the commit
makes durable. Every answer is written in the same transaction as the task's commit; an
update's result follows when its ``UpdateCompleted`` is committed, in this task or a later one.
"""

from __future__ import annotations

from typing import Sequence

from .._history import CompleteUpdate, ErrorInfo
from .._payloads import error_info
from .._replay import WorkflowInstance
from .._stores import Reply, Request

__all__ = ["admit_updates", "answer_queries", "completion_reply", "failure_replies",
           "orphan_replies"]


def admit_updates(instance: WorkflowInstance,
                  requests: Sequence[Request]) -> tuple[list[Request], list[Reply]]:
    """Validate pending updates: (those to record as accepted, the replies so far)."""
    handlers = instance.handlers
    accepted: list[Request] = []
    replies: list[Reply] = []
    for request in requests:
        if request.kind != "update":
            continue
        if request.id in handlers.seen:  # recorded before (its request kept its old status)
            replies.append(Reply(request.id, "accepted"))
            continue
        if not instance.done and not handlers.knows("update", request.name):
            continue  # kept for when the run registers its handler (it fails if it ends first)
        try:
            handlers.validate(request.name, request.args)
        except Exception as exc:  # the validator (or the lookup) refused it: nothing recorded
            replies.append(Reply(request.id, "rejected", error=error_info(exc)))
            continue
        accepted.append(request)
        replies.append(Reply(request.id, "accepted"))
    return accepted, replies


def answer_queries(instance: WorkflowInstance, requests: Sequence[Request]) -> list[Reply]:
    """Run each pending query's handler against the live instance."""
    replies: list[Reply] = []
    for request in requests:
        if request.kind != "query":
            continue
        if not instance.done and not instance.handlers.knows("query", request.name):
            continue  # kept for when the run registers its handler (it fails if it ends first)
        try:
            replies.append(Reply(request.id, "ok", instance.handlers.query(request.name,
                                                                           request.args)))
        except Exception as exc:
            replies.append(Reply(request.id, "failed", error=error_info(exc)))
    return replies


def completion_reply(command: CompleteUpdate) -> Reply:
    """The answer an update handler's ``CompleteUpdate`` gives its caller."""
    if command.error is not None:
        return Reply(command.id, "failed", error=command.error)
    return Reply(command.id, "ok", command.result)


def orphan_replies(instance: WorkflowInstance) -> list[Reply]:
    """Updates whose handlers were still running when the workflow ended."""
    handlers = instance._handlers
    if handlers is None or not instance.done:
        return []
    return [Reply(update_id, "failed", error=ErrorInfo(
        "WorkflowClosedError", f"the workflow ended before the handler of update {name!r} "
        "finished"))
        for update_id, name in handlers.running.items()]


def failure_replies(requests: Sequence[Request], exc: BaseException) -> list[Reply]:
    """Answer requests when the workflow cannot be loaded (nothing is recorded)."""
    error = error_info(exc)
    return [Reply(r.id, "failed" if r.kind == "query" else "rejected", error=error)
            for r in requests]
