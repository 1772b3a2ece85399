"""Fair takes from a worker's backlog of read hints: round-robin across tenants.

A worker reads hints from every partition of its streams (``_keys``: a tenant's hints all land
in one partition) into a backlog, and each ``receive`` turns at most ``limit`` of them into
claims. ``Turns.take`` chooses those: one task of each tenant present, then a second of each,
and so on, starting with the tenants served longest ago (a tenant not served yet first). So
one tenant's backlog of thousands delays another tenant's ready task by one round of claims,
not by the whole backlog; the hints not taken stay in the backlog (pending under the worker's
name in Redis) for the next call, in the order they were read.

The fairness key is the tenant today (:func:`fair_key`); an execution's own fairness key can
join it there and in ``_keys.partition`` without changing anything else.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

from .._stores import ActionTask, TaskRef, WorkflowTask
from ._base import room_for

__all__ = ["Hint", "TaskKey", "Turns", "fair_key", "ref_key", "task_key"]

TaskKey = tuple[Any, ...]


class Hint(NamedTuple):
    """One stream entry read by a worker."""

    stream: str
    entry: bytes
    ref: TaskRef | None  # None: the entry was trimmed away or cannot be decoded


def fair_key(ref: TaskRef) -> str:
    """What fairness is across: the tenant."""
    return ref.tenant


def ref_key(ref: TaskRef) -> TaskKey:
    """The task a hint names (several hints may name one task)."""
    if ref.kind == "w":
        return ("w", ref.tenant, ref.workflow_id)
    return ("a", ref.tenant, ref.workflow_id, ref.run_id, ref.cmd)


def task_key(task: WorkflowTask | ActionTask) -> TaskKey:
    """The key of a claimed task, as :func:`ref_key` names it."""
    if isinstance(task, WorkflowTask):
        return ("w", task.tenant, task.workflow_id)
    return ("a", task.tenant, task.workflow_id, task.run_id, task.cmd)


class Turns:
    """When each fairness key was last served, for one consumer (the keys in its backlog)."""

    def __init__(self) -> None:
        self._served: dict[str, int] = {}
        self._clock = 0

    def take(self, backlog: list[Hint], limit: int, kinds: Mapping[str, int] | None = None,
             ) -> tuple[dict[TaskKey, list[Hint]], list[Hint], list[Hint]]:
        """Split ``backlog`` into the hints of up to ``limit`` distinct tasks taken round-robin
        across fairness keys (each task with all its hints: duplicates travel together), with
        ``kinds`` at most so many of each kind (``"w"``, ``"a"``), the unreadable hints, and
        the rest (in backlog order)."""
        hints: dict[TaskKey, list[Hint]] = {}
        # kind (or "" for any) -> fairness key -> its tasks, in backlog order
        queues: dict[str, dict[str, list[TaskKey]]] = {}
        junk: list[Hint] = []
        for hint in backlog:
            if hint.ref is None:
                junk.append(hint)
                continue
            key = ref_key(hint.ref)
            if key not in hints:
                hints[key] = []
                kind = "" if kinds is None else key[0]
                queues.setdefault(kind, {}).setdefault(fair_key(hint.ref), []).append(key)
            hints[key].append(hint)
        taken: dict[TaskKey, list[Hint]] = {}
        for kind, of_kind in queues.items():
            self._round_robin(of_kind, hints, taken,
                              len(taken) + room_for(kind, limit - len(taken), kinds))
        self._served = {fk: n for fk, n in self._served.items()
                        if any(fk in of_kind for of_kind in queues.values())}
        rest = [h for h in backlog if h.ref is not None and ref_key(h.ref) not in taken]
        return taken, junk, rest

    def _round_robin(self, queues: dict[str, list[TaskKey]], hints: dict[TaskKey, list[Hint]],
                     taken: dict[TaskKey, list[Hint]], limit: int) -> None:
        """Add tasks of ``queues`` to ``taken`` until it holds ``limit``: one of each fairness
        key, the one served longest ago first, then a second of each, and so on."""
        active = sorted(queues, key=lambda fk: self._served.get(fk, -1))  # stable: read order
        depth = 0
        while active and len(taken) < limit:
            for fk in active[:limit - len(taken)]:
                taken[queues[fk][depth]] = hints[queues[fk][depth]]
                self._served[fk] = self._clock
                self._clock += 1
            depth += 1
            active = [fk for fk in active if len(queues[fk]) > depth]
