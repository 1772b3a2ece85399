"""A store with a payload codec: payloads are encoded where they enter the store and decoded
where they leave it (``durable.connect(url, codec=...)``).

``CodecStore`` wraps any store. Its methods that write payloads (events, an execution's data
and result, action arguments, requests and their replies, schedules, snapshots, heartbeat
details) encode them with the codec first; those that return payloads decode them. Every
other call, and every attribute, goes to the wrapped store unchanged. So replay never meets
the codec: a worker decodes a history once, when it reads it, and a client without a codec
(``memory://`` in tests, the default) pays nothing at all.

Which fields are payloads follows from the records' types: a field of type ``Any`` is one, a
``list[Any]`` is a list of them (arguments, one codec call each), a ``dict[str, Any]`` a dict
of them (keyword arguments, ``ctx.data``). An event's ``metadata`` is not a payload.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Collection, Final, Sequence, cast

import msgspec

from .._codecs import PayloadCodec, Where
from .._history import Event
from ._base import Store
from ._records import (
    ActionTask, ExecutionRecord, Reply, Request, Signal, Snapshot, Start, TaskRef,
    WorkflowCommit, WorkflowTask,
)
from ._schedule_records import ScheduleRecord

__all__ = ["CodecStore", "with_codec"]

_ONE, _LIST, _DICT = 0, 1, 2
_KINDS: Final = {"Any": _ONE, "list[Any]": _LIST, "dict[str, Any]": _DICT}
_NOT_PAYLOADS: Final = frozenset({"metadata"})
_fields_of: dict[type, tuple[tuple[str, int], ...]] = {}


def _payload_fields(cls: type) -> tuple[tuple[str, int], ...]:
    """The payload fields of struct ``cls``, and their kinds."""
    found = _fields_of.get(cls)
    if found is None:
        # By the annotations' text: some records are re-exported with ``__module__`` set to
        # ``durable``, where their annotations' names cannot be resolved.
        annotations: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            annotations.update(getattr(klass, "__annotations__", {}))
        names: tuple[str, ...] = getattr(cls, "__struct_fields__")
        found = _fields_of[cls] = tuple(
            (name, _KINDS[str(annotations[name])]) for name in names
            if name not in _NOT_PAYLOADS and str(annotations[name]) in _KINDS)
    return found


def _apply(record: Any, fn: Callable[[Any, Where], Any]) -> Any:
    """``record`` with ``fn(value, where)`` applied to each of its payloads."""
    cls: type[Any] = type(record)  # pyright: ignore[reportUnknownVariableType]
    fields = _payload_fields(cls)
    if not fields:
        return record
    where = cls.__name__  # (where, field, index or key): a message's text only if it fails
    changes: dict[str, Any] = {}
    for name, kind in fields:
        value = getattr(record, name)
        if kind == _ONE:
            changes[name] = fn(value, (where, name, None))
        elif kind == _LIST:
            changes[name] = [fn(v, (where, name, i)) for i, v in enumerate(value)]
        else:
            changes[name] = {k: fn(v, (where, name, k)) for k, v in value.items()}
    return msgspec.structs.replace(record, **changes)


def with_codec(store: Store, codec: PayloadCodec) -> Store:
    """``store`` with ``codec`` applied (as it is when it has that codec already)."""
    wrapped: Any = store
    if isinstance(wrapped, CodecStore) and wrapped.codec.codec is codec.codec:
        return store  # connect() wrapped it for its dispatcher
    return cast(Store, CodecStore(store, codec))


class CodecStore:
    """``inner`` with ``codec`` applied to every payload it writes and reads."""

    def __init__(self, inner: Store, codec: PayloadCodec) -> None:
        self.inner = inner
        self.codec = codec
        self._enc = codec.encode
        self._dec = codec.decode

    def __getattr__(self, name: str) -> Any:  # what carries no payload: as the store has it
        return getattr(self.inner, name)

    def encoded(self, record: Any) -> Any:
        """A record (an event, a task, a request ...) with its payloads encoded."""
        return _apply(record, self._enc)

    def decoded(self, record: Any) -> Any:
        """A record read from the store with its payloads decoded."""
        return _apply(record, self._dec)

    def _decoded_all(self, records: Sequence[Any]) -> list[Any]:
        return [_apply(r, self._dec) for r in records]

    # ---- executions and histories ---------------------------------------------------------

    async def create_execution(self, started: Event, **kwargs: Any) -> tuple[ExecutionRecord, bool]:
        record, created = await self.inner.create_execution(self.encoded(started), **kwargs)
        return self.decoded(record), created

    async def restart_execution(self, started: Event, *, signals: Sequence[Signal] = (),
                                **kwargs: Any) -> bool:
        return await self.inner.restart_execution(
            self.encoded(started), signals=[msgspec.structs.replace(g, event=self.encoded(g.event))
                                            for g in signals], **kwargs)

    async def get_execution(self, tenant: str, workflow_id: str) -> ExecutionRecord | None:
        record = await self.inner.get_execution(tenant, workflow_id)
        return None if record is None else self.decoded(record)

    async def list_executions(self, *args: Any, **kwargs: Any) -> list[ExecutionRecord]:
        return self._decoded_all(await self.inner.list_executions(*args, **kwargs))

    async def scan_executions(self, *args: Any, **kwargs: Any) -> list[ExecutionRecord]:
        return self._decoded_all(await self.inner.scan_executions(*args, **kwargs))

    async def page_executions(self, *args: Any, **kwargs: Any) -> list[ExecutionRecord]:
        return self._decoded_all(await self.inner.page_executions(*args, **kwargs))

    async def read_history(self, *args: Any, **kwargs: Any) -> list[Event]:
        return self._decoded_all(await self.inner.read_history(*args, **kwargs))

    async def append_input(self, tenant: str, workflow_id: str, event: Event,
                           **kwargs: Any) -> int | None:
        return await self.inner.append_input(tenant, workflow_id, self.encoded(event), **kwargs)

    async def pending_work(self, tenant: str, workflow_id: str) -> tuple[list[ActionTask], Any]:
        actions, timers = await self.inner.pending_work(tenant, workflow_id)
        return self._decoded_all(actions), timers

    # ---- tasks ------------------------------------------------------------------------------

    def _task(self, task: WorkflowTask) -> WorkflowTask:
        if not task.history:
            return task
        return msgspec.structs.replace(task, history=self._decoded_all(task.history))

    async def claim_workflow_tasks(self, *args: Any, **kwargs: Any) -> list[WorkflowTask]:
        return [self._task(t) for t in await self.inner.claim_workflow_tasks(*args, **kwargs)]

    async def commit_workflow_task(self, task: WorkflowTask, commit: WorkflowCommit) -> bool:
        # A commit holds most payloads twice (an action's arguments in its ActionScheduled
        # and its task, a result in WorkflowCompleted and the execution's row, ctx.data in
        # DataChanged and the row): each object is encoded once (it lives as long as the
        # commit, so its id names it).
        encode, memo = self._enc, dict[int, Any]()

        def once(value: Any, where: Where) -> Any:
            if value is None:
                return None
            found = memo.get(id(value))
            if found is None:
                found = memo[id(value)] = encode(value, where)
            return found

        def enc(record: Any) -> Any:
            return _apply(record, once)
        commit = msgspec.structs.replace(
            commit, events=[enc(e) for e in commit.events], update=enc(commit.update),
            actions=[enc(a) for a in commit.actions],
            starts=[Start(enc(s.started), s.on_started and enc(s.on_started),
                          s.on_exists and enc(s.on_exists)) for s in commit.starts],
            signals=[msgspec.structs.replace(s, event=enc(s.event)) for s in commit.signals],
            replies=[enc(r) for r in commit.replies],
            settled=commit.settled and msgspec.structs.replace(
                commit.settled, event=enc(commit.settled.event)))
        return await self.inner.commit_workflow_task(task, commit)

    async def finish_workflow_task(self, task: WorkflowTask, owner: str, expected_seq: int, *,
                                   replies: Sequence[Reply], now: float) -> bool:
        return await self.inner.finish_workflow_task(
            task, owner, expected_seq, replies=[self.encoded(r) for r in replies], now=now)

    async def claim_action_tasks(self, *args: Any, **kwargs: Any) -> list[ActionTask]:
        return self._decoded_all(await self.inner.claim_action_tasks(*args, **kwargs))

    async def claim_limited(self, *args: Any, **kwargs: Any) -> list[ActionTask]:
        return self._decoded_all(await self.inner.claim_limited(*args, **kwargs))

    async def claim_refs(self, refs: Sequence[TaskRef], owner: str, *, workflows: Collection[str],
                         **kwargs: Any) -> tuple[list[WorkflowTask], list[ActionTask]]:
        tasks, actions = await self.inner.claim_refs(refs, owner, workflows=workflows, **kwargs)
        return [self._task(t) for t in tasks], self._decoded_all(actions)

    async def complete_action_task(self, task: ActionTask, event: Event, *, now: float) -> bool:
        return await self.inner.complete_action_task(task, self.encoded(event), now=now)

    async def run_action_transaction(self, task: ActionTask, body: Callable[[Any], Any], *,
                                     isolation: str, now: float) -> bool:
        enc = self._enc
        where = f"result of {task.name}"

        def encoded_body(conn: Any) -> Any:
            out = body(conn)
            if inspect.isawaitable(out):
                async def later() -> Any:
                    return enc(await out, where)
                return later()
            return enc(out, where)

        return await self.inner.run_action_transaction(task, encoded_body, isolation=isolation,
                                                       now=now)

    async def record_action_heartbeat(self, task: ActionTask, owner: str, details: bytes,
                                      **kwargs: Any) -> Any:
        encoded = self.codec.encode_bytes(details, f"heartbeat details of {task.name}")
        return await self.inner.record_action_heartbeat(task, owner, encoded, **kwargs)

    async def action_heartbeat_details(self, task: ActionTask) -> bytes | None:
        details = await self.inner.action_heartbeat_details(task)
        return None if details is None else self.codec.decode_bytes(
            details, f"heartbeat details of {task.name}")

    # ---- requests, schedules, snapshots ----------------------------------------------------

    async def submit_request(self, request: Request, *, now: float) -> tuple[Request | None, bool]:
        stored, created = await self.inner.submit_request(self.encoded(request), now=now)
        return (None if stored is None else self.decoded(stored)), created

    async def get_request(self, tenant: str, workflow_id: str, request_id: str) -> Request | None:
        request = await self.inner.get_request(tenant, workflow_id, request_id)
        return None if request is None else self.decoded(request)

    async def pending_requests(self, tenant: str, workflow_id: str) -> list[Request]:
        return self._decoded_all(await self.inner.pending_requests(tenant, workflow_id))

    async def answer_requests(self, tenant: str, workflow_id: str, replies: Sequence[Reply], *,
                              now: float) -> None:
        await self.inner.answer_requests(tenant, workflow_id, [self.encoded(r) for r in replies],
                                         now=now)

    async def create_schedule(self, record: ScheduleRecord,
                              **kwargs: Any) -> tuple[ScheduleRecord, bool]:
        stored, created = await self.inner.create_schedule(self.encoded(record), **kwargs)
        return self.decoded(stored), created

    async def get_schedule(self, tenant: str, schedule_id: str) -> ScheduleRecord | None:
        record = await self.inner.get_schedule(tenant, schedule_id)
        return None if record is None else self.decoded(record)

    async def list_schedules(self, *args: Any, **kwargs: Any) -> list[ScheduleRecord]:
        return self._decoded_all(await self.inner.list_schedules(*args, **kwargs))

    async def update_schedule(self, record: ScheduleRecord, **kwargs: Any) -> bool:
        return await self.inner.update_schedule(self.encoded(record), **kwargs)

    async def claim_schedules(self, *args: Any, **kwargs: Any) -> list[ScheduleRecord]:
        return self._decoded_all(await self.inner.claim_schedules(*args, **kwargs))

    async def save_snapshot(self, snapshot: Snapshot, *, keep: int) -> None:
        await self.inner.save_snapshot(self.encoded(snapshot), keep=keep)

    async def find_snapshot(self, *args: Any, **kwargs: Any) -> Snapshot | None:
        snapshot = await self.inner.find_snapshot(*args, **kwargs)
        return None if snapshot is None else self.decoded(snapshot)
