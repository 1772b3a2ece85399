"""Versioning end to end, on every store: a deploy of changed code with ``ctx.patched()``.

v1 runs an execution up to a wait; v2 (``patched("fee-in-cents")``) starts another, and the
first keeps its old path; v3 removes the patch too early: the execution on the old path is
held with a ``NonDeterminismError`` while the other finishes; v2 again lets it finish.
``durable patches`` (``patch_report``) says which executions depend on the old path.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import durable
from _support import eventually
from durable._cli import main
from durable._history import Patched
from durable._patches import patch_ids_in, patch_report

from ._env import Env, env, env_spec  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration

NAME = "EngineBilling"


@durable.action(name="engine_fee_in_dollars")
async def fee_in_dollars(amount: int) -> int:
    return amount // 100


@durable.action(name="engine_fee_in_cents")
async def fee_in_cents(amount: int) -> int:
    return amount


async def _v1(ctx: durable.Context, amount: int) -> dict[str, Any]:
    fee = await ctx.run(fee_in_dollars, amount)
    ctx.set_state("waiting")
    await ctx.wait_for("Paid")
    return {"fee": fee, "version": ctx.info.version}


async def _v2(ctx: durable.Context, amount: int) -> dict[str, Any]:
    if ctx.patched("fee-in-cents"):
        fee = await ctx.run(fee_in_cents, amount)
    else:
        fee = await ctx.run(fee_in_dollars, amount)
    ctx.set_state("waiting")
    await ctx.wait_for("Paid")
    return {"fee": fee, "version": ctx.info.version}


async def _v3(ctx: durable.Context, amount: int) -> dict[str, Any]:
    fee = await ctx.run(fee_in_cents, amount)  # the patch and the old branch removed
    ctx.set_state("waiting")
    await ctx.wait_for("Paid")
    return {"fee": fee, "version": ctx.info.version}


def deploy(version: str, body: Any) -> Any:
    return durable.workflow(name=NAME, version=version)(body)


def worker(client: durable.Client, wf: Any) -> durable.Worker:
    # nothing cached: every task replays the history with the code of this deploy
    return durable.Worker(client, [wf], [fee_in_dollars, fee_in_cents], poll_interval=0.02,
                          max_cached=0, lease=1.0)


async def waiting(handle: durable.WorkflowHandle[Any]) -> bool:
    return (await handle.describe()).state == "waiting"


async def test_a_deploy_with_a_patch_keeps_old_executions_on_the_old_path(env: Env) -> None:
    client = await env.client()
    if env.kind == "redis":
        await env.server()  # re-announces the held execution's retries
    v1, v2, v3 = deploy("1", _v1), deploy("2", _v2), deploy("3", _v3)
    async with worker(client, v1):
        old = await client.start(v1, 1200, id="old")
        await eventually(lambda: waiting(old), what="the v1 execution to wait")
    async with worker(client, v2):
        new = await client.start(v2, 1200, id="new")
        await eventually(lambda: waiting(new), what="the v2 execution to wait")

    report = await patch_report(client, [v2], known_ids=["fee-in-cents", "unreached"])
    uses = {u.patch_id: u for u in report.patches}
    assert report.checked == 2 and report.unchecked == []
    assert [e.workflow_id for e in uses["fee-in-cents"].old_path] == ["old"]
    assert uses["fee-in-cents"].new_path == 1 and not uses["fee-in-cents"].removable
    assert uses["unreached"].removable

    # v3 deletes the old branch while "old" still depends on it: caught, and "old" is held
    async with worker(client, v3):
        await old.send("Paid")
        await new.send("Paid")
        assert (await new.result(timeout=20))["fee"] == 1200  # took the new path: fine
        held = await eventually(lambda: _task_error(old), what="the old execution to be held")
    assert "diverged" in held and "engine_fee_in_dollars" in held
    where = held.split(" at ")[-1].split("\n")[0]  # the file:line that issued the new command
    path, line = where.rsplit(":", 1)
    assert "run(fee_in_cents" in Path(path).read_text().splitlines()[int(line) - 1]
    assert (await old.describe()).status == "running"

    async with worker(client, v2):  # roll back to the code that still has the old branch
        assert await old.result(timeout=20) == {"fee": 12, "version": "1"}
    assert (await new.result()) == {"fee": 1200, "version": "2"}
    assert [(await h.describe()).version for h in (old, new)] == ["1", "2"]
    assert not any(isinstance(e, Patched) for e in await old.history())
    assert [e.patch_id for e in await new.history() if isinstance(e, Patched)] == ["fee-in-cents"]
    assert {r.workflow_id: r.version for r in await client.list()} == {"old": "1", "new": "2"}

    after = await patch_report(client, [v2], known_ids=["fee-in-cents"])
    assert after.checked == 0 and after.patches[0].removable


async def _task_error(handle: durable.WorkflowHandle[Any]) -> str | None:
    return (await handle.describe()).task_error


V1 = '''
import durable

@durable.action
async def fee_in_dollars(amount: int) -> int:
    return amount // 100

@durable.workflow(name="CliBilling", version="1")
async def billing(ctx: durable.Context, amount: int) -> int:
    fee = await ctx.run(fee_in_dollars, amount)
    await ctx.wait_for("Paid")
    return fee
'''

V2 = V1.replace('version="1"', 'version="2"').replace(
    "    fee = await ctx.run(fee_in_dollars, amount)\n",
    "    if ctx.patched(\"fee-in-cents\"):\n"
    "        fee = await ctx.run(fee_in_cents, amount)\n"
    "    else:\n"
    "        fee = await ctx.run(fee_in_dollars, amount)\n") + '''
@durable.action
async def fee_in_cents(amount: int) -> int:
    return amount
'''


def _load(tmp_path: Path, source: str) -> Any:
    """(Re)import ``billing.py`` written with ``source``, as a fresh deploy."""
    (tmp_path / "billing.py").write_text(source)
    sys.modules.pop("billing", None)
    import importlib

    return importlib.import_module("billing")


async def test_durable_patches_lists_the_executions_on_each_old_path(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    db = f"sqlite:///{tmp_path}/patches.db"
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    async with durable.connect(db) as client:
        for version, ids in ((V1, ["inv-1", "inv-2"]), (V2, ["inv-3"])):
            module = _load(tmp_path, version)
            cents = getattr(module, "fee_in_cents", module.fee_in_dollars)  # v2 only
            actions = [module.fee_in_dollars, cents]
            async with durable.Worker(client, [module.billing], actions, poll_interval=0.02):
                for workflow_id in ids:
                    await client.start(module.billing, 500, id=workflow_id)
                for workflow_id in ids:
                    await eventually(lambda: _waits(client.get_handle(workflow_id)),
                                     what=f"{workflow_id} to wait for Paid")
        assert patch_ids_in([module]) == {"fee-in-cents"}

        def patches(*args: str) -> tuple[int, str, str]:
            code = await_main(["--db", db, "patches", "--module", "billing", *args])
            out, err = capsys.readouterr()
            return code, out, err

        code, out, err = patches()
        assert code == 0, err
        assert "checked 3 open execution(s)" in out
        [row] = [line for line in out.splitlines() if line.startswith("fee-in-cents")]
        assert row.split()[1:3] == ["2", "1"]
        assert "inv-1 (CliBilling v1), inv-2 (CliBilling v1)" in row

        code, out, _ = patches("--json")
        report = __import__("json").loads(out)
        assert [e["workflow_id"] for e in report["patches"][0]["old_path"]] == ["inv-1", "inv-2"]

        async with durable.Worker(client, [module.billing],
                                  [module.fee_in_dollars, module.fee_in_cents], poll_interval=0.02):
            for workflow_id in ("inv-1", "inv-2"):
                await client.get_handle(workflow_id).send("Paid")
                assert await client.get_handle(workflow_id).result(timeout=20) == 5
        code, out, _ = patches()
        assert code == 0 and "none: safe to remove the old branch" in out

        # an execution that today's code cannot replay makes the report incomplete: exit 1
        (tmp_path / "billing.py").write_text(V2.replace("ctx.wait_for(\"Paid\")",
                                                        "ctx.sleep(5)"))
        sys.modules.pop("billing", None)
        code, out, _ = patches()
        assert code == 1 and "could not check 1 execution(s)" in out and "inv-3" in out, out

        code, _, err = await_main_err(["--db", db, "patches"], capsys)
        assert code == 1 and "--module" in err


async def _waits(handle: durable.WorkflowHandle[Any]) -> bool:
    """Whether the execution ran everything it was given (it waits for an event now)."""
    events = await handle.history()
    return type(events[-1]).__name__ == "TaskCompleted" and not (
        await handle.describe()).pending_actions


def await_main(argv: list[str]) -> int:
    """``durable`` in a thread: the CLI runs its own event loop, the test already has one."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(main, argv).result()


def await_main_err(argv: list[str],
                   capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = await_main(argv)
    out, err = capsys.readouterr()
    return code, out, err
