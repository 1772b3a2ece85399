"""The soak (bench/soak.py) for under a minute: worker SIGKILLs, a Redis restart and a
PostgreSQL restart (on its own throwaway servers), then its audit of every execution.

Nothing may be lost or applied twice, every history must check out, and the sticky routes in
Redis must not outlive the executions (none are left once all of them ended).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.faults]

ROOT = Path(__file__).resolve().parents[2]


def _number(pattern: str, text: str) -> int:
    found = re.search(pattern, text, re.MULTILINE)
    assert found is not None, f"no {pattern!r} in:\n{text}"
    return int(found.group(1))


@pytest.mark.timeout(400)
def test_short_soak_loses_nothing_duplicates_nothing_and_leaves_no_routes() -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    run = subprocess.run(
        [sys.executable, "bench/soak.py", "--minutes", "0.5", "--rate", "3",
         "--kill-every", "4", "--drain", "120"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=380)
    out = run.stdout
    assert run.returncode == 0, out + run.stderr[-5000:]
    assert _number(r"^executions: (\d+) started", out) > 40
    assert _number(r"^lost: (\d+)", out) == 0
    assert _number(r"^duplicated effects: (\d+)", out) == 0
    assert _number(r"^history invariant violations: (\d+)", out) == 0
    assert _number(r"^worker kills: (\d+)", out) >= 5
    assert _number(r"^sticky routes: (\d+) at the end", out) == 0
    assert "restarted Redis" in out and "restarted PostgreSQL" in out
