"""Messages from a workflow to other executions: ``ctx.external(workflow_id)``.

``send`` and ``cancel`` are commands (``SignalExternal``, ``CancelExternal``), recorded in
the sender's history; the commit that records one appends it to the target's history in the
same transaction, deduplicated by the sender's run and command number (a cancellation like
any other: once per run of the target). So each is delivered exactly once, however often the
sender's workflow task is replayed or retried. A target that does not exist, or whose run
has ended, gets nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .._history import CancelExternal, SignalExternal
from .._payloads import check_metadata, check_size, dump_value
from .._validate import check_id, check_text
from ..errors import ArgumentTypeError
from ._matcher import Matcher

__all__ = ["ExternalHandle"]


class ExternalHandle:
    """Another execution of this workflow's tenant, as the workflow addresses it."""

    __slots__ = ("_matcher", "_loop", "workflow_id")

    def __init__(self, matcher: Matcher, loop: asyncio.AbstractEventLoop,
                 workflow_id: str) -> None:
        self._matcher = matcher
        self._loop = loop
        self.workflow_id = workflow_id

    def send(self, name: str, payload: Any = None, *,
             metadata: dict[str, Any] | None = None) -> asyncio.Future[None]:
        """Send event ``name`` with ``payload`` (and ``metadata``, as ``handle.send``'s) to the
        execution, once: it arrives with this workflow task's commit. The call issues it; the
        future it returns is already done (``await`` it, as a client's ``send``)."""
        check_id(name, "an event name", error=ArgumentTypeError)
        value = dump_value(payload, f"payload of event {name!r}")
        check_size(value, f"payload of event {name!r}")
        meta = check_metadata(metadata, f"metadata of event {name!r}")
        self._matcher.match(SignalExternal, (self._matcher.count, self.workflow_id, name, value,
                                             meta))
        return self._done()

    def cancel(self, reason: str = "") -> asyncio.Future[None]:
        """Ask the execution to cancel (``CancelledError`` at its current await), once; the
        future it returns is already done."""
        check_text(reason, "a cancellation reason")
        self._matcher.match(CancelExternal, (self._matcher.count, self.workflow_id, reason))
        return self._done()

    def _done(self) -> asyncio.Future[None]:
        done: asyncio.Future[None] = self._loop.create_future()
        done.set_result(None)
        return done

    def __repr__(self) -> str:
        return f"<ExternalHandle {self.workflow_id}>"
