"""The README's runnable snippets run as they are written (each in a fresh interpreter, from an
empty directory; a snippet that only defines ``main()`` or a test gets the line that calls
it), and so does ``examples/subscriptions.py``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"

# section title -> what its snippet prints (each line must appear)
SNIPPETS = {
    "## Cancellation and timeouts": ["'CancelRequested'", "'ActionCancelRequested'",
                                      "'WorkflowCancelled'"],
    "## Child workflows": ["['reservation-a', 'reservation-b']", "'o-7-a'", "'o-7-b'"],
    "## Endless workflows: continue-as-new": ["cancelled after", "run(s)"],
    "## Changing workflow code: versions and patches": [],
    "## Queries and updates": ["no caviar"],
    "## Schedules": ["('ticker-"],
    "## Payload codecs": ["charged 100 to ...4242", "Ext"],
    "## Testing workflows in virtual time": [],
    "## Time travel: the state at any past moment": ["order.py:14"],
}

# what runs a snippet that only defines its entry point
CALLS = {"## Queries and updates": "main()",
         "## Testing workflows in virtual time": "test_renews_after_a_month_and_a_grace_period()"}
# the file a snippet names itself (its suspended_at shows it)
FILES = {"## Time travel: the state at any past moment": "order.py"}


def snippet(title: str) -> str:
    text = README.read_text()
    section = text[text.index(title):]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    if title in CALLS:
        code += f"\nimport asyncio\nasyncio.run({CALLS[title]})\n"
    return code


@pytest.mark.parametrize("title", sorted(SNIPPETS))
def test_the_readme_snippet_runs(title: str, tmp_path: Path) -> None:
    root = str(README.parent)
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    script = tmp_path / FILES.get(title, "snippet.py")
    script.write_text(snippet(title))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for expected in SNIPPETS[title]:
        assert expected in done.stdout, done.stdout
    if "continue-as-new" in title:  # the demo goes through several runs
        runs = int(done.stdout.split(" run(s)")[0].split()[-1])
        assert runs > 1, done.stdout


def test_the_subscriptions_example_runs(tmp_path: Path) -> None:
    root = str(README.parent)
    env = {**os.environ, "DURABLE_DB": f"sqlite:///{tmp_path / 'subs.db'}",
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "examples.subscriptions"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    ada, *rest = done.stdout.splitlines()
    receipts = ada.split("[", 1)[1].split("]", 1)[0].split(", ")
    assert len(receipts) >= 2 and "status completed" in ada and "continued from" in ada
    assert "email to bob: sorry to see you go" in rest[0]
    assert rest[1].startswith("bob: cancelled") and "'WorkflowCancelled'" in rest[1]
