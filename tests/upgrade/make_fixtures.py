"""Make upgrade fixtures: stores written by an earlier version of durable, executions in flight.

    .venv/bin/python tests/upgrade/make_fixtures.py COMMIT [COMMIT ...] [--postgres DSN]
                                                    [--stores sqlite postgres]

For each commit, the code of that commit (a temporary ``git worktree``) runs the executions of
``flows.EXECUTIONS`` up to where they wait (an event, a timer, an action; one finished, one
with its event arrived but not yet run) in a new SQLite file and, with ``--postgres`` (a server
on which a scratch database may be created; default ``$DURABLE_PG_DSN``) and when the commit
has the PostgreSQL store, in a new PostgreSQL database. The results go to ``fixtures/``: the
SQLite file, and the database as a plain SQL dump (``pg_dump --inserts``, which
``test_upgrade.py`` loads with asyncpg), and ``fixtures/fixtures.json`` records where each
came from and its schema versions. Only the fixtures are committed: the test needs no git.

To cover a new schema version, run this with the last commit of main before the change that
adds it, and commit what it wrote.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
MANIFEST = FIXTURES / "fixtures.json"
REPO = HERE.parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("commits", nargs="*", metavar="COMMIT")
    parser.add_argument("--postgres", metavar="DSN", default=os.environ.get("DURABLE_PG_DSN"),
                        help="a PostgreSQL server to make a scratch database on (default "
                        "$DURABLE_PG_DSN; none: SQLite only)")
    parser.add_argument("--stores", nargs="+", choices=["sqlite", "postgres"],
                        default=["sqlite", "postgres"], help="which stores (default both)")
    parser.add_argument("--populate", metavar="URL", help=argparse.SUPPRESS)  # internal
    args = parser.parse_args()
    if args.populate:
        asyncio.run(populate(args.populate))
        return
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    for commit in args.commits:
        manifest.update(make(commit, args.postgres if "postgres" in args.stores else None,
                             sqlite="sqlite" in args.stores))
    MANIFEST.write_text(json.dumps(dict(sorted(manifest.items())), indent=2) + "\n")


# ---- run with the earlier version's code (PYTHONPATH: its checkout) ---------------------------


async def populate(url: str) -> None:
    """Start the executions and run them to where they wait, with whatever durable is
    importable (the earlier version's)."""
    import durable

    sys.path.insert(0, str(HERE))
    import flows

    async with durable.connect(url) as client:
        worker = durable.Worker(client, workflows=flows.WORKFLOWS, actions=[flows.double])
        for tenant, workflow_id, workflow, arg, _, _, _ in flows.EXECUTIONS:
            await client.start(workflow, arg, id=workflow_id, tenant=tenant)
        for _ in range(5):  # early versions' run_until_idle could return with work left
            await worker.run_until_idle()
            await asyncio.sleep(0.2)
        for tenant, workflow_id, _, _, before, _, _ in flows.EXECUTIONS:
            if before is not None:  # arrives, and waits for a worker to run it
                await client.get_handle(workflow_id, tenant=tenant).send("Go", before)
    print(durable.__file__)


# ---- drive ------------------------------------------------------------------------------------


def make(commit: str, postgres: str | None, *, sqlite: bool = True) -> dict[str, Any]:
    """Write the fixtures of ``commit``; their manifest entries."""
    sha = _git("rev-parse", "--short", commit).strip()
    when = _git("log", "-1", "--format=%cs", sha).strip()
    stem = f"{when}-{sha}"
    made: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as scratch:
        checkout = Path(scratch) / "checkout"
        _git("worktree", "add", "--detach", str(checkout), sha)
        try:
            info = {"commit": sha, "date": when,
                    "subject": _git("log", "-1", "--format=%s", sha).strip()[:100]}
            if sqlite:
                db = Path(scratch) / "store.db"
                _populate(checkout, f"sqlite:///{db}")
                with sqlite3.connect(db) as conn:
                    _check_in_flight([conn.execute(q).fetchone()[0] for q in IN_FLIGHT])
                conn.close()
                made[f"sqlite-{stem}.sqlite"] = {**info, "schema": _sqlite_versions(db)}
                conn = sqlite3.connect(db, isolation_level=None)  # smaller pages: a small file
                conn.executescript("PRAGMA journal_mode = DELETE; PRAGMA page_size = 512; VACUUM")
                conn.close()
                shutil.copy(db, FIXTURES / f"sqlite-{stem}.sqlite")
            if postgres and (checkout / "durable/_stores/postgres").is_dir():
                dump, versions = asyncio.run(_postgres(checkout, postgres))
                (FIXTURES / f"postgres-{stem}.sql").write_text(dump)
                made[f"postgres-{stem}.sql"] = {**info, "schema": versions}
        finally:
            _git("worktree", "remove", "--force", str(checkout))
    for name in made:
        print(f"wrote {FIXTURES / name}")
    return made


def _populate(checkout: Path, url: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    out = subprocess.run([sys.executable, __file__, "--populate", url], env=env, check=True,
                         capture_output=True, text=True).stdout
    if not out.strip().startswith(str(checkout)):  # the earlier code ran, not today's
        raise SystemExit(f"the checkout's durable was not imported: {out!r}")


# What must be waiting in a fixture: the timer, the action no worker ran, the event that
# arrived (its workflow task), and the executions that ended (the finished one alone).
IN_FLIGHT = ["SELECT count(*) FROM timers", "SELECT count(*) FROM action_tasks",
             "SELECT count(*) FROM workflow_tasks",
             "SELECT count(*) FROM executions WHERE status = 'completed'"]


def _check_in_flight(counts: list[int]) -> None:
    if counts != [1, 1, 1, 1]:
        raise SystemExit(f"the executions are not where a fixture needs them (timers, action "
                         f"tasks, workflow tasks, completed: {counts}, not 1 each); run again")


def _sqlite_versions(db: Path) -> list[int]:
    with sqlite3.connect(db) as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY 1")]
    conn.close()
    return versions


async def _postgres(checkout: Path, dsn: str) -> tuple[str, list[int]]:
    """A scratch database populated by the checkout's code: its dump and schema versions."""
    import asyncpg

    name = f"durable_fixture_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))
    try:
        await asyncio.to_thread(_populate, checkout, url)
        conn = await asyncpg.connect(url)
        versions = [r[0] for r in await conn.fetch("SELECT version FROM schema_version "
                                                   "ORDER BY 1")]
        _check_in_flight([await conn.fetchval(q) for q in IN_FLIGHT])
        await conn.close()
        dump = subprocess.run(["pg_dump", "--inserts", "--no-owner", "--no-privileges",
                               "--no-comments", "--dbname", url], check=True,
                              capture_output=True, text=True).stdout
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    # psql meta-commands (\restrict ...) are not SQL; the test sends the rest as one script
    lines = [line for line in dump.splitlines() if not line.startswith("\\")]
    return "\n".join(lines) + "\n", versions


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], check=True, capture_output=True,
                          text=True).stdout


if __name__ == "__main__":
    main()
