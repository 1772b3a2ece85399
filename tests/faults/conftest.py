"""Fixtures of the fault tests: a rig per test, and one uninterrupted run to compare with."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ._procs import Reference, Rig, open_rig, run_reference


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    rig = await open_rig(tmp_path)
    try:
        yield rig
    finally:
        rig.procs.close()
        print(rig.procs.logs())  # shown by pytest when the test failed
        await rig.client.close()


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    return asyncio.run(run_reference(tmp_path_factory.mktemp("reference")))
