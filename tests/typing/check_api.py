"""Type checks of the public API: ``mypy`` and ``pyright`` (strict) must accept this file.

It is never run; ``tests/test_typing.py`` runs both checkers over it (and over ``durable/``,
``durable_server/`` and ``examples/``). Each ``assert_type`` states what a user's checker
infers; each ``# type: ignore`` marks a call that must be refused (an unused ignore is an
error under ``--strict``, so the refusal is checked too).
"""

from __future__ import annotations

from typing import Any, assert_type

import durable
from durable.errors import (
    ActionFailedError, HistoryError, NonDeterminismError, WorkflowFailedError,
    WorkflowNotFoundError,
)


@durable.action
async def add(a: int, b: int) -> int:
    """An async action."""
    return a + b


@durable.action(timeout=5.0)
def shout(text: str) -> str:
    """A plain-function action with options."""
    return text.upper()


@durable.workflow
async def sums(ctx: durable.Context, n: int) -> list[int]:
    """A workflow whose action calls are typed."""
    total = await ctx.run(add, 1, n)
    assert_type(total, int)
    loud = await ctx.run(shout, "hi")
    assert_type(loud, str)
    assert_type(await ctx.run(add, 1, n, priority=5), int)
    assert_type(await ctx.run(shout, "hi", priority=-1, queue="loud"), str)
    await ctx.run(add, "1", 2)  # type: ignore[call-overload]  # a str where an int is due
    await ctx.sleep(1.5)
    child = await ctx.start_child(sums, 3, priority=2, fairness_key="k")
    assert_type(await ctx.run("add", 1, 2), Any)
    assert_type(await child.result(), list[int])
    return [total]


async def client_side(client: durable.Client) -> None:
    """Starting, waiting and reading history from a client."""
    handle = await client.start(sums, 3, id="s-1", priority=1, fairness_key="k")
    assert_type(handle, durable.WorkflowHandle[list[int]])
    assert_type(await handle.result(), list[int])
    await client.start(sums, "three")  # type: ignore[arg-type]  # wrong argument type
    any_handle = client.get_handle("s-1")
    assert_type(any_handle, durable.WorkflowHandle[Any])
    description = await handle.describe()
    assert_type(description.status, str)


def error_attributes(exc: Exception) -> list[object]:
    """Attributes of typed errors are declared on their classes."""
    found: list[object] = []
    if isinstance(exc, WorkflowFailedError):
        assert_type(exc.workflow_id, str)
        assert_type(exc.error_type, str)
        found.append(exc.error_message)
    if isinstance(exc, ActionFailedError):
        assert_type(exc.attempts, int)
        found.append(exc.action)
    if isinstance(exc, WorkflowNotFoundError):
        found.append((exc.tenant, exc.workflow_id))
    if isinstance(exc, HistoryError):
        assert_type(exc.seq, int | None)
    if isinstance(exc, NonDeterminismError):
        found.append(exc.location)
    return found
