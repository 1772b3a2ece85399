"""Run every comparison and print their tables: ``python -m bench.compare``.

    .venv/bin/python -m bench.compare [--only replay dbos dbos-sqlite temporal restate]
        [--with-5000]

Progress goes to stderr, the tables to stdout. Each script can also be run on its own with
more options (``python -m bench.compare.temporal_replay --help``, ``.dbos_e2e``,
``.dbos_sqlite``, ``.temporal_e2e``, ``.restate_e2e``).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from bench.compare import dbos_e2e, dbos_sqlite, restate_e2e, temporal_e2e, temporal_replay
from bench.compare._common import exit_on_sigterm, progress

SCRIPTS = {"replay": temporal_replay, "dbos": dbos_e2e, "dbos-sqlite": dbos_sqlite,
           "temporal": temporal_e2e, "restate": restate_e2e}


async def run_all(only: list[str], with_5000: bool) -> list[str]:
    tables = []
    for name in only:
        script = SCRIPTS[name]
        options = ["--with-5000"] if with_5000 and name == "replay" else []
        progress(f"== {script.__name__} ==")
        t0 = time.perf_counter()
        tables.append(await script.run(script.parser().parse_args(options)))
        progress(f"== {script.__name__}: {time.perf_counter() - t0:.0f} s ==")
    return tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", choices=list(SCRIPTS), default=list(SCRIPTS))
    parser.add_argument("--with-5000", action="store_true", help="replay also at N = 5,000")
    args = parser.parse_args()
    exit_on_sigterm()
    tables = asyncio.run(run_all(args.only, args.with_5000))
    print("\n\n".join(tables), flush=True)


if __name__ == "__main__":
    main()
