"""Which open executions still depend on the old path of each ``ctx.patched()`` id.

An execution depends on the old path of a patch when replaying its history with today's code
makes ``ctx.patched(id)`` return False: it recorded the old code's commands before the change,
and the run keeps that answer until it ends. Once no open execution depends on it, the old
branch (and the ``patched`` call) can be deleted. ``durable patches`` prints this report.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterable
from types import ModuleType
from typing import TYPE_CHECKING, Any

import msgspec

from ._replay._replayer import Replayer
from .errors import DurableError

if TYPE_CHECKING:
    from ._client import Client

__all__ = ["ExecutionRef", "PatchReport", "PatchUse", "patch_ids_in", "patch_report"]


class ExecutionRef(msgspec.Struct, frozen=True):
    """An open execution, as the report names it."""

    tenant: str
    workflow_id: str
    workflow: str
    version: str


class PatchUse(msgspec.Struct, frozen=True):
    """One patch id: the open executions on its old path, and how many take the new one."""

    patch_id: str
    old_path: list[ExecutionRef]
    new_path: int

    @property
    def removable(self) -> bool:
        """Whether no open execution depends on the old path any more."""
        return not self.old_path


class Unchecked(msgspec.Struct, frozen=True):
    """An open execution the report could not replay, and why."""

    execution: ExecutionRef
    reason: str


class PatchReport(msgspec.Struct, frozen=True):
    """What :func:`patch_report` found."""

    checked: int
    patches: list[PatchUse]
    unchecked: list[Unchecked]


async def patch_report(client: Client, workflows: Iterable[Any], *,
                       known_ids: Iterable[str] = (), workflow: str | None = None,
                       all_tenants: bool = False, limit: int = 10_000) -> PatchReport:
    """Replay every open execution (of ``workflow``, when given) with today's ``workflows``.

    ``known_ids`` are patch ids the code uses (see :func:`patch_ids_in`): they are listed even
    when no open execution has reached them yet, as removable.
    """
    replayer = Replayer(workflows)
    records = await client.list(status="running", limit=limit, all_tenants=all_tenants)
    old: dict[str, list[ExecutionRef]] = {patch_id: [] for patch_id in known_ids}
    new: dict[str, int] = dict.fromkeys(old, 0)
    unchecked: list[Unchecked] = []
    checked = 0
    for record in records:
        if workflow is not None and record.workflow != workflow:
            continue
        ref = ExecutionRef(record.tenant, record.workflow_id, record.workflow, record.version)
        if record.workflow not in replayer.workflows:
            unchecked.append(Unchecked(ref, f"workflow {record.workflow!r} is not in the code"))
            continue
        try:
            history = await client.store.read_history(record.tenant, record.workflow_id)
            patches = replayer.replay(history).patches
        except DurableError as exc:
            unchecked.append(Unchecked(ref, f"{type(exc).__name__}: {exc}"))
            continue
        checked += 1
        for patch_id, taken in patches.items():
            old.setdefault(patch_id, [])
            new.setdefault(patch_id, 0)
            if taken:
                new[patch_id] += 1
            else:
                old[patch_id].append(ref)
    uses = [PatchUse(patch_id, sorted(old[patch_id], key=_order), new[patch_id])
            for patch_id in sorted(old)]
    return PatchReport(checked, uses, unchecked)


def _order(ref: ExecutionRef) -> tuple[str, str]:
    return ref.tenant, ref.workflow_id


def patch_ids_in(modules: Iterable[ModuleType]) -> set[str]:
    """The ids of the ``….patched("literal")`` calls in the modules' source."""
    found: set[str] = set()
    for module in modules:
        try:
            tree = ast.parse(inspect.getsource(module))
        except (OSError, TypeError, SyntaxError):  # no source to read (a built or frozen module)
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "patched" and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)):
                found.add(node.args[0].value)
    return found
