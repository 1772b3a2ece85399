"""mypy (strict) and pyright (strict) accept durable/, durable_server/, examples/ and the
public-API checks in tests/typing/ (settings: ``[tool.mypy]`` and ``[tool.pyright]`` in
pyproject.toml). A message names each file:line a checker refuses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _check(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True,
                          text=True, timeout=900, check=False)


def test_mypy_strict_passes() -> None:
    done = _check("mypy", "--no-incremental")
    assert done.returncode == 0, done.stdout + done.stderr


def test_pyright_strict_passes() -> None:
    done = _check("pyright", "--pythonpath", sys.executable)
    assert done.returncode == 0, done.stdout + done.stderr
