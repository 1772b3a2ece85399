"""The pytest plugin: ``--durable-histories DIR`` turns recorded histories into tests."""

from __future__ import annotations

import shutil
import textwrap
import uuid
import warnings
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

GOLDEN = Path(__file__).resolve().parent / "histories"
# Inner runs: no asyncio plugin (its config warning would be an error out here), no cache.
INNER = ("-p", "no:asyncio", "-p", "no:cacheprovider")


@pytest.fixture
def corpus(pytester: pytest.Pytester) -> tuple[Path, str]:
    """A folder with a passing history, a diverging one, a canary that does not diverge, a
    malformed file and a real canary; and the module that defines today's workflow."""
    module = f"flows_{uuid.uuid4().hex[:8]}"
    pytester.makepyfile(**{module: textwrap.dedent('''\
        import durable
        from examples.order import charge_card, notify, ship
        from examples.order import order_fulfillment  # today's OrderFulfillment
        ''')})
    pytester.syspathinsert()
    folder = pytester.mkdir("histories")
    shutil.copy(GOLDEN / "order-fulfilled.json", folder / "good.json")
    shutil.copy(GOLDEN / "order-v0.nondeterministic.json", folder / "old.json")
    shutil.copy(GOLDEN / "order-fulfilled.json", folder / "wrong.nondeterministic.json")
    shutil.copy(GOLDEN / "order-v0.nondeterministic.json", folder / "canary.nondeterministic.json")
    (folder / "broken.json").write_text("{")
    (folder / "notes.txt").write_text("not a history")
    return folder, module


def test_one_test_per_history_with_divergences_reported(pytester: pytest.Pytester,
                                                        corpus: tuple[Path, str]) -> None:
    folder, module = corpus
    result = pytester.runpytest(*INNER, "-v", "--durable-histories", str(folder),
                                "--durable-modules", module)
    result.assert_outcomes(passed=2, failed=3)
    result.stdout.fnmatch_lines([
        "*histories/broken.json::replay FAILED*",
        "*histories/canary.nondeterministic.json::replay PASSED*",
        "*histories/good.json::replay PASSED*",
        "*histories/old.json::replay FAILED*",
        "*histories/wrong.nondeterministic.json::replay FAILED*",
    ])
    text = result.stdout.str()
    assert "the history diverged from today's code:" in text
    assert "recorded: ActionScheduled (seq 3) 'ship'" in text
    assert "examples/order.py:55" in text  # the line of today's code that no longer matches
    assert "HistoryError: not a durable history in JSON" in text
    assert "must raise NonDeterminismError, but it replayed cleanly" in text
    assert "notes.txt" not in text


def test_ini_options_configure_folders_and_modules(pytester: pytest.Pytester,
                                                   corpus: tuple[Path, str]) -> None:
    folder, module = corpus
    (folder / "old.json").unlink()
    (folder / "wrong.nondeterministic.json").unlink()
    (folder / "broken.json").unlink()
    pytester.makeini(f"""
        [pytest]
        durable_histories = histories
        durable_modules = {module}
    """)
    pytester.runpytest(*INNER).assert_outcomes(passed=2)
    # Only the paths pytest collects: a narrower run leaves the histories out.
    pytester.mkdir("other")
    pytester.runpytest(*INNER, "other").assert_outcomes()


def test_a_folder_on_the_command_line_is_collected_with_the_run(pytester: pytest.Pytester,
                                                                corpus: tuple[Path, str]) -> None:
    folder, module = corpus
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    for name in ("old.json", "wrong.nondeterministic.json", "broken.json"):
        (folder / name).unlink()
    outside = pytester.path / "elsewhere"
    folder.rename(outside)
    result = pytester.runpytest(*INNER, "test_plain.py", "--durable-histories", str(outside),
                                "--durable-modules", module)
    result.assert_outcomes(passed=3)


def test_strict_mode_fails_changed_arguments(pytester: pytest.Pytester,
                                             corpus: tuple[Path, str]) -> None:
    folder, _ = corpus
    module = f"charges_more_{uuid.uuid4().hex[:8]}"
    pytester.makepyfile(**{module: textwrap.dedent('''\
        import durable
        from examples.order import charge_card, notify, ship

        @durable.workflow(name="OrderFulfillment", version="1")
        async def order_fulfillment(ctx: durable.Context, order_id: str, amount_cents: int,
                                    items: list[str], pickup_delay: float = 1.0) -> dict:
            ctx.set_state("charging")
            charge_id = await ctx.run(charge_card, order_id, amount_cents * 2)
            ctx.data["charge_id"] = charge_id
            ctx.set_state("awaiting_pickup")
            await ctx.sleep(pickup_delay)
            ctx.set_state("shipping")
            tracking = await ctx.run(ship, order_id, items)
            await ctx.run(notify, order_id, f"shipped, tracking {tracking}")
            ctx.set_state("shipped")
            return {"order_id": order_id, "charge_id": charge_id, "tracking": tracking}
        ''')})
    args = (*INNER, str(folder / "good.json"), "--durable-histories", str(folder),
            "--durable-modules", module)
    with warnings.catch_warnings():  # not this suite's filterwarnings=error
        warnings.simplefilter("default")
        result = pytester.runpytest(*args)
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*NonDeterminismWarning*arguments of action 'charge_card'*"])
    pytester.makeini("[pytest]\ndurable_strict = true\n")
    result = pytester.runpytest(*args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["NonDeterminismError: *diverged*",
                                 "*the arguments of action 'charge_card' changed*"])


def test_a_module_that_cannot_be_imported_is_a_collection_error(
        pytester: pytest.Pytester, corpus: tuple[Path, str]) -> None:
    folder, _ = corpus
    result = pytester.runpytest(*INNER, "--durable-histories", str(folder),
                                "--durable-modules", "no_such_module_xyz")
    result.assert_outcomes(errors=5)
    result.stdout.fnmatch_lines(["*cannot import the workflow module 'no_such_module_xyz'*"])


def test_a_missing_folder_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*INNER, "--durable-histories", "nowhere")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--durable-histories*nowhere: no such folder*"])
