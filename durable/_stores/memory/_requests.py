"""The memory store's requests: queries and updates, and their answers (``RequestStore``)."""

from __future__ import annotations

from typing import Sequence

from msgspec.structs import replace

from ...errors import WorkflowNotFoundError
from .._records import TERMINAL_STATUSES, Reply, Request
from ._state import Key, Lease, MemoryState, stored

__all__ = ["MemoryRequests"]


class MemoryRequests(MemoryState):
    """Requests per execution, in the state's dicts."""

    async def submit_request(self, request: Request, *, now: float) -> tuple[Request | None, bool]:
        """Record a query or update and make the execution runnable (see ``RequestStore``)."""
        key = (request.tenant, request.workflow_id)
        record = self._executions.get(key)
        if record is None:
            raise WorkflowNotFoundError(f"no execution {request.workflow_id!r} in tenant "
                                        f"{request.tenant!r}", workflow_id=request.workflow_id,
                                        tenant=request.tenant)
        requests = self._requests.setdefault(key, {})
        found = requests.get(request.id)
        if found is None or found.status == "rejected":  # a rejected update is tried again
            if request.kind == "update" and record.status in TERMINAL_STATUSES:
                return None, False
            found = replace(request, args=stored(request.args), created_at=now,
                            status="pending", result=None, error=None)
            requests[request.id] = found
        if found.status != "pending":
            return found, False
        self._request_task(key, now)
        return found, True

    def _request_task(self, key: Key, now: float) -> None:
        lease = self._wf_tasks.get(key)
        if lease is None:
            self._wf_tasks[key] = Lease(now, dispatched_at=now, requested=True)
        else:
            lease.visible_at, lease.dispatched_at = min(lease.visible_at, now), now
            lease.requested = True
        self.wakeup.notify()

    async def get_request(self, tenant: str, workflow_id: str, request_id: str) -> Request | None:
        """The request, or None."""
        return self._requests.get((tenant, workflow_id), {}).get(request_id)

    async def rearm_request(self, tenant: str, workflow_id: str, request_id: str, *,
                            now: float) -> bool:
        """Make a runnable task for a pending request that has none (see ``RequestStore``)."""
        key = (tenant, workflow_id)
        request = self._requests.get(key, {}).get(request_id)
        if request is None or request.status != "pending" or key in self._wf_tasks:
            return False
        self._request_task(key, now)
        return True

    async def pending_requests(self, tenant: str, workflow_id: str) -> list[Request]:
        """The execution's requests no worker has answered or accepted, oldest first."""
        pending = [r for r in self._requests.get((tenant, workflow_id), {}).values()
                   if r.status == "pending"]
        return sorted(pending, key=lambda r: (r.created_at, r.id))

    async def answer_requests(self, tenant: str, workflow_id: str, replies: Sequence[Reply], *,
                              now: float) -> None:
        """Record ``replies`` for requests not answered yet."""
        self._answer((tenant, workflow_id), replies)
        self.wakeup.answered(tenant, workflow_id, replies)

    async def forget_request(self, tenant: str, workflow_id: str, request_id: str) -> None:
        """Delete the request."""
        self._requests.get((tenant, workflow_id), {}).pop(request_id, None)
