"""The differential replay fuzzer, long run: random workflow programs must replay exactly.

    .venv/bin/python bench/fuzz.py --count 10000 [--environment 1000] [--killed 100]
                                   [--seed 0]

Every program (``tests/fuzz/_program.py``) runs on the engine three ways (live, rebuilt from
history at every task, ``durable.Replayer``); ``--environment`` of them also run in
``durable.testing.Environment`` live and with ``always_replay=True``; ``--killed`` of them run
on worker processes on a SQLite file that are SIGKILLed twice mid-run. Prints progress, then
the programs per construct and the number of disagreements (0 is the only good answer), and
exits non-zero on the first disagreement with the program and its history.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from faults._checks import check_history  # noqa: E402
from faults._procs import open_rig  # noqa: E402
from fuzz._program import COMPOSITES, EXTRAS, LEAVES, Program, generate  # noqa: E402
from fuzz._runs import in_environment, in_killed_workers  # noqa: E402
from fuzz._simulate import Disagreement, simulate  # noqa: E402


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Tally:
    """Programs per construct and per outcome, for one way of running them."""

    def __init__(self, name: str, title: str) -> None:
        self.name = name  # a column heading
        self.title = title
        self.programs = 0
        self.constructs: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()

    def add(self, program: Program, status: str) -> None:
        self.programs += 1
        self.constructs.update(program.constructs())
        self.statuses[status] += 1


def run_engine(count: int, seed: int) -> Tally:
    tally = Tally("engine", "the engine, live, rebuilt at every task and by durable.Replayer")
    started = time.monotonic()
    for n in range(count):
        program = generate(seed + n)
        tally.add(program, simulate(program).status)
        if (n + 1) % 1000 == 0:
            progress(f"  engine: {n + 1:,}/{count:,} programs agree "
                     f"({time.monotonic() - started:.0f}s)")
    return tally


async def run_environment(count: int, seed: int) -> list[Tally]:
    tallies = [Tally("env live", "durable.testing.Environment, live"),
               Tally("env always_replay", "Environment(always_replay=True)")]
    for n in range(count):
        program = generate(seed + n)
        for tally, always_replay in zip(tallies, (False, True)):
            with _naming(program):
                outcome = await in_environment(program, always_replay=always_replay)
            tally.add(program, outcome.status)
        if (n + 1) % 100 == 0:
            progress(f"  Environment: {n + 1:,}/{count:,} programs agree")
    return tallies


async def run_killed(count: int, seed: int) -> Tally:
    tally = Tally("killed workers", "worker processes on SQLite, SIGKILLed twice each")
    with tempfile.TemporaryDirectory() as directory:
        rig = await open_rig(Path(directory))
        try:
            for n in range(count):
                program = generate(seed + 1_000_000 + n)
                with _naming(program):
                    outcome = await in_killed_workers(program, rig, kills=2, seed=seed + n)
                    check_history(await rig.client.get_handle(f"fuzz-{seed + n}").history(),
                                  settled=False)  # a run may end with work pending
                tally.add(program, outcome.status)
                if (n + 1) % 10 == 0:
                    progress(f"  killed workers: {n + 1:,}/{count:,} programs agree")
        finally:
            rig.procs.close()
            await rig.client.close()
    return tally


@contextlib.contextmanager
def _naming(program: Program) -> Iterator[None]:
    """Any failure of a run becomes a Disagreement that names the program."""
    try:
        yield
    except Disagreement:
        raise
    except Exception as exc:
        raise Disagreement(f"{type(exc).__name__}: {exc}\nprogram: {program!r}") from exc


def report(tallies: list[Tally], seconds: float) -> None:
    names = dict.fromkeys(LEAVES + COMPOSITES + EXTRAS)
    header = f"{'construct':16s}" + "".join(f"{t.name:>19s}" for t in tallies)
    print(header)
    print("-" * len(header))
    for name in names:
        print(f"{name:16s}" + "".join(f"{t.constructs[name]:>19,}" for t in tallies))
    print(f"{'programs':16s}" + "".join(f"{t.programs:>19,}" for t in tallies))
    for status in ("completed", "failed", "cancelled"):
        print(f"{'  ' + status:16s}" + "".join(f"{t.statuses[status]:>19,}" for t in tallies))
    print(f"\n0 disagreements in {sum(t.programs for t in tallies):,} runs ({seconds:.0f}s)")
    for t in tallies:
        print(f"  {t.name}: {t.title}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="programs on the engine")
    parser.add_argument("--environment", type=int, default=1_000,
                        help="of those, run in Environment too (live and always_replay)")
    parser.add_argument("--killed", type=int, default=100,
                        help="programs on SIGKILLed worker processes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.getLogger("durable").setLevel(logging.CRITICAL)  # programs fail and retry on purpose
    started = time.monotonic()
    try:
        progress(f"engine: {args.count:,} programs ...")
        tallies = [run_engine(args.count, args.seed)]
        progress(f"Environment: {args.environment:,} programs ...")
        tallies += asyncio.run(run_environment(args.environment, args.seed))
        progress(f"killed workers: {args.killed:,} programs ...")
        tallies.append(asyncio.run(run_killed(args.killed, args.seed)))
    except Disagreement as exc:
        print(f"DISAGREEMENT (rerun with --seed to reproduce):\n{exc}")
        return 1
    report(tallies, time.monotonic() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
