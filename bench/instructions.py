"""Replay cost in CPU instructions per step, counted by valgrind's callgrind: unlike seconds,
the count is the same on a busy machine and a quiet one, so it compares changes exactly.

    .venv/bin/python bench/instructions.py [--shapes sequential timers events fanout] [--steps 333]
                                           [--steady]

For each shape, a history of ``--steps`` steps is recorded, then decoded and replayed once and
six times in two runs under callgrind; the difference over five replays and the steps is the
cost of one step (interpreter start-up, imports and recording cancel out). Needs valgrind.

``--steady``: the cost of a step once the interpreter has warmed up to the code, as in a
worker that replays history after history: the history is decoded once and replayed 3 and 23
times, the difference taken over the 20 (with five replays, a short history's count also
holds the first calls' specialization of new code).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._shapes import SHAPES, FANOUT  # noqa: E402

_CHILD = """
import sys
sys.path.insert(0, {root!r})
from bench._shapes import record
from bench.replay import replay_blobs
_, blobs = record({shape!r}, {steps})
for _ in range({reps}):
    replay_blobs({shape!r}, blobs)
"""


_STEADY = """
import sys
sys.path.insert(0, {root!r})
from bench._shapes import SHAPES, record
from durable._definitions import workflow_definition
from durable._replay import WorkflowInstance, replay
events, _ = record({shape!r}, {steps})
defn = workflow_definition(SHAPES[{shape!r}][0])
for _ in range({reps}):
    instance = WorkflowInstance(defn, events[0])
    replay(instance, events)
    instance.close()
"""


def instructions(shape: str, steps: int, reps: int, steady: bool = False) -> int:
    """Instructions that one run of the child (recording plus ``reps`` replays) executes."""
    code = (_STEADY if steady else _CHILD).format(root=str(ROOT), shape=shape, steps=steps,
                                                  reps=reps)
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                          sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=dict(os.environ, PYTHONHASHSEED="0"))
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise SystemExit(f"callgrind printed no total:\n{out.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", nargs="+", choices=list(SHAPES), default=list(SHAPES))
    parser.add_argument("--steps", type=int, default=333)
    parser.add_argument("--steady", action="store_true",
                        help="decoded once, replayed 3 and 23 times: a warm interpreter's cost")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    print(f"{'shape':10s}  {'steps':>6s}  {'instructions/step':>17s}")
    for shape in args.shapes:
        steps = max(args.steps // FANOUT, 1) * FANOUT if shape == "fanout" else args.steps
        print(f"  {shape}: counting ...", file=sys.stderr, flush=True)
        few, many = (3, 23) if args.steady else (1, 6)
        per_step = (instructions(shape, steps, many, args.steady)
                    - instructions(shape, steps, few, args.steady)) / (many - few) / steps
        print(f"{shape:10s}  {steps:>6,}  {per_step:>17,.0f}", flush=True)


if __name__ == "__main__":
    main()
