"""Workflows of the SIGKILL tests of issue 15's porting features (``test_port_kill``): requests
that wait for their handler, a condition, workflow-to-workflow messages and async completion,
each with a moment at which a worker can be killed. Effects go to the log of ``_flows``."""

from __future__ import annotations

from typing import Any

import durable

from . import _flows


@durable.action(retry=_flows._RETRY, timeout=60.0, inline=False)
async def handoff(label: str) -> str:
    """Hands its completion to whoever holds the token it logs (as a "token" line)."""
    _flows._record("start", [label])
    _flows._record("token", [label, durable.action_info().complete_later()])
    return "ignored: the token's holder gives the result"


@durable.workflow(name="PortHandlers")
async def port_handlers(ctx: durable.Context, label: str) -> dict[str, Any]:
    """The slow action first (a worker can be killed in it); only then its handlers exist."""
    opened = await ctx.run(_flows.gate, label)
    notes: list[str] = []
    bumps: list[int] = []
    ctx.on_query("status", lambda: {"opened": opened, "notes": list(notes)})

    def note(text: str) -> None:
        notes.append(text)

    def bump(by: int) -> int:
        bumps.append(by)
        return sum(bumps)

    ctx.on_signal("note", note)
    ctx.on_update("bump", bump)
    await ctx.wait_condition(lambda: bool(notes) and bool(bumps))
    return {"opened": opened, "notes": notes, "bumps": bumps}


@durable.workflow(name="PortCondition")
async def port_condition(ctx: durable.Context, want: int) -> int:
    """Counts "inc" events until it has ``want``."""
    count = 0

    def inc(by: int) -> None:
        nonlocal count
        count += by

    ctx.on_signal("inc", inc)
    met = await ctx.wait_condition(lambda: count >= want, timeout=300.0)
    return count if met else -1


@durable.workflow(name="PortTarget")
async def port_target(ctx: durable.Context, label: str) -> str:
    event = await ctx.wait_for("ping")
    return f"{label} got {event.payload}"


@durable.workflow(name="PortIdle")
async def port_idle(ctx: durable.Context, label: str) -> str:
    await ctx.wait_for("never")
    return f"{label} was not cancelled"


@durable.workflow(name="PortSender")
async def port_sender(ctx: durable.Context, label: str) -> str:
    """Sends an event to ``<label>-target`` and cancels ``<label>-idle`` (one commit), then
    runs the slow action (a worker can be killed in it)."""
    await ctx.external(f"{label}-target").send("ping", label)
    await ctx.external(f"{label}-idle").cancel()
    return await ctx.run(_flows.gate, label)


@durable.workflow(name="PortHandoff")
async def port_handoff(ctx: durable.Context, label: str) -> str:
    """An action completed from outside, then a quick one."""
    approved = await ctx.run(handoff, label)
    after = await ctx.run(_flows.step, label, 2)
    return f"{approved}+{after}"


WORKFLOWS = [port_handlers, port_condition, port_target, port_idle, port_sender, port_handoff]
ACTIONS = [handoff]
