"""The workflows the upgrade fixtures hold executions of, in flight.

``make_fixtures.py`` runs them with the code of an earlier version of durable and
``test_upgrade.py`` finishes them with today's, so this module uses only what every version
since the first store has (``@durable.workflow(name=)``, ``@durable.action(name=)``,
``ctx.run``, ``ctx.wait_for``, ``ctx.sleep``) and must not change: the histories in the
fixtures were recorded from it.
"""

from __future__ import annotations

import durable


@durable.action(name="upgrade_double")
async def double(n: int) -> int:
    return 2 * n


@durable.action(name="upgrade_triple")
async def triple(n: int) -> int:
    return 3 * n


@durable.workflow(name="UpgradeEvent")
async def on_event(ctx: durable.Context, n: int) -> int:
    n = await ctx.run(double, n)
    got = await ctx.wait_for("Go")  # in flight here: waits for an event
    assert got is not None
    return n + int(got.payload)


@durable.workflow(name="UpgradeTimer")
async def on_timer(ctx: durable.Context, n: int) -> int:
    n = await ctx.run(double, n)
    await ctx.sleep(5.0)  # in flight here: a durable timer, long due once the fixture is read
    return n + 1


@durable.workflow(name="UpgradeAction")
async def on_action(ctx: durable.Context, n: int) -> int:
    n = await ctx.run(double, n)
    return await ctx.run(triple, n)  # in flight here: the fixture's worker has no triple


@durable.workflow(name="UpgradeDone")
async def done(ctx: durable.Context, n: int) -> int:
    return await ctx.run(double, n)


WORKFLOWS = [on_event, on_timer, on_action, done]

# (tenant, workflow id, workflow, argument, the event sent before the upgrade (None: none),
#  the event the test sends (None: none), the result once finished)
EXECUTIONS = [
    ("default", "waits-for-event", on_event, 3, None, 4, 10),
    ("default", "event-arrived", on_event, 5, 1, None, 11),
    ("default", "waits-for-timer", on_timer, 2, None, None, 5),
    ("default", "waits-for-action", on_action, 7, None, None, 42),
    ("default", "finished", done, 8, None, None, 16),
    ("acme", "waits-for-event", on_event, 1, None, 0, 2),
]
