"""The differential replay fuzzer, short runs (``bench/fuzz.py --count N`` runs long ones).

Random programs built from every asyncio construct a workflow may use run live, rebuilt from
history at every task, and through ``durable.Replayer``, and must agree; some also run in
``durable.testing.Environment`` and on worker processes that are SIGKILLed mid-run.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from faults._checks import check_history
from faults._procs import open_rig

from ._program import COMPOSITES, EXTRAS, LEAVES, generate
from ._runs import in_environment, in_killed_workers
from ._simulate import simulate

SEED = int(os.environ.get("DURABLE_FUZZ_SEED", "0"))  # a failure names the seed to rerun with


@pytest.fixture(autouse=True)
def _quiet_workflows() -> Iterator[None]:
    """Programs fail and retry on purpose: not this test's output."""
    workflow_log = logging.getLogger("durable")
    level = workflow_log.level
    workflow_log.setLevel(logging.CRITICAL)
    yield
    workflow_log.setLevel(level)


def test_every_construct_is_generated() -> None:
    seen: Counter[str] = Counter()
    for seed in range(SEED, SEED + 400):
        seen.update(generate(seed).constructs())
    missing = set(LEAVES + COMPOSITES + EXTRAS) - set(seen)
    assert not missing, f"never generated in 400 programs: {sorted(missing)}"


def test_engine_live_rebuilt_and_replayed_agree() -> None:
    statuses: Counter[str] = Counter()
    for seed in range(SEED, SEED + 400):
        statuses[simulate(generate(seed)).status] += 1  # raises Disagreement
    assert statuses["completed"] and statuses["failed"] and statuses["cancelled"], statuses


@pytest.mark.parametrize("always_replay", [False, True], ids=["live", "always_replay"])
async def test_environment_runs_agree_with_their_replay(always_replay: bool) -> None:
    for seed in range(SEED, SEED + 25):
        program = generate(seed)
        outcome = await in_environment(program, always_replay=always_replay)  # checks replay
        assert outcome.status in ("completed", "failed", "cancelled")


@pytest.mark.faults
async def test_programs_survive_sigkilled_workers(tmp_path: Path) -> None:
    rig = await open_rig(tmp_path)
    try:
        for seed in range(SEED, SEED + 3):
            program = generate(seed + 1_000)
            outcome = await in_killed_workers(program, rig, kills=2, seed=seed)
            history = await rig.client.get_handle(f"fuzz-{seed}").history()
            check_history(history, settled=False)  # a run may end with work pending
            assert outcome.status in ("completed", "failed", "cancelled")
    finally:
        rig.procs.close()
        await rig.client.close()
