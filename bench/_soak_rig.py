"""The soak's machinery: its own throwaway PostgreSQL and Redis, worker and server processes
that can be SIGKILLed, and the gauges it prints.

The servers come from the same wheels (or ``DURABLE_PG_BINDIR`` / ``DURABLE_REDIS_SERVER``
binaries) as ``scripts/with_servers.py``, on free ports in a temporary directory, so that
restarting them disturbs nobody else's servers.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import asyncpg
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parents[1]


def _with_servers() -> ModuleType:
    spec = importlib.util.spec_from_file_location("with_servers",
                                                  ROOT / "scripts" / "with_servers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Services:
    """A throwaway PostgreSQL and Redis (no persistence: a Redis restart loses everything)."""

    def __init__(self) -> None:
        servers = _with_servers()
        # Not a private temp dir: under root PostgreSQL runs as `nobody`, and must reach it.
        self.root = Path(tempfile.mkdtemp(prefix="durable-soak-"))
        self.root.chmod(0o755)
        for name in ("pg", "redis", "logs"):
            (self.root / name).mkdir()
        self.pg = servers.Postgres(self.root / "pg")
        self.redis = servers.Redis(self.root / "redis")
        self.pg_url = ""
        self.redis_url = ""

    def start(self) -> None:
        self.pg_url = self.pg.start()
        self.redis_url = self.redis.start()

    def restart_redis(self) -> None:
        """Stop Redis and start it again, empty, on the same port."""
        self.redis.stop()
        self.redis.start()

    def restart_pg(self) -> None:
        """A fast restart: every connection is cut."""
        self.pg.restart()

    def stop(self) -> None:
        try:
            self.redis.stop()
            self.pg.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def rss_mb(self) -> float:
        """Resident set size in MiB (0 once it has exited)."""
        try:
            status = Path(f"/proc/{self.popen.pid}/status").read_text()
        except OSError:
            return 0.0
        kb = next((int(line.split()[1]) for line in status.splitlines()
                   if line.startswith("VmRSS:")), 0)
        return kb / 1024


@dataclass
class Procs:
    """Worker processes and one ``durable server``, on the soak's services."""

    services: Services
    prefix: str
    lease: float
    workers: list[Proc] = field(default_factory=list)
    server: Proc | None = None
    started: int = 0

    def _spawn(self, name: str, args: list[str]) -> Proc:
        log = self.services.root / "logs" / f"{name}.log"
        env = dict(os.environ, PYTHONUNBUFFERED="1", DURABLE_SOAK_PG=self.services.pg_url,
                   PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                            os.environ.get("PYTHONPATH")])))
        with open(log, "wb") as out:
            popen = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env,
                                     stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        return Proc(name, popen, log)

    def start_worker(self) -> Proc:
        self.started += 1
        proc = self._spawn(f"worker-{self.started}", [
            "-m", "bench._soak_worker", self.services.pg_url, self.services.redis_url,
            self.prefix, str(self.lease)])
        self.workers.append(proc)
        return proc

    def start_server(self) -> None:
        self.server = self._spawn("server", [
            "-m", "durable._cli", "server", "--db", self.services.pg_url, "--redis",
            self.services.redis_url, "--prefix", self.prefix, "--port", "0",
            "--interval", "0.05", "--redispatch-after", "1"])

    def kill(self, proc: Proc) -> None:
        """SIGKILL (no cleanup runs in it) and reap."""
        if proc.alive():
            os.kill(proc.popen.pid, signal.SIGKILL)
        proc.popen.wait(timeout=10)
        if proc in self.workers:
            self.workers.remove(proc)

    def check(self) -> None:
        """Fail with its log if a process exited that nobody killed."""
        for proc in [*self.workers, *([self.server] if self.server else [])]:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n"
                                   + proc.log.read_text(errors="replace")[-5000:])

    def close(self) -> None:
        for proc in [*self.workers, *([self.server] if self.server else [])]:
            self.kill(proc)


@dataclass
class Gauges:
    """What the soak prints each minute, read from Redis and PostgreSQL."""

    redis_mb: float
    routes: int
    stream_entries: int
    db_mb: float


async def read_gauges(services: Services, prefix: str) -> Gauges | None:
    """The gauges, or None while a server is restarting."""
    redis = aioredis.from_url(services.redis_url, socket_timeout=5)
    try:
        used = int((await redis.info("memory"))["used_memory"])
        routes = [k async for k in redis.scan_iter(match=f"{prefix}:route:*", count=1000)]
        streams = [k async for k in redis.scan_iter(match=f"{prefix}:*", _type="stream",
                                                    count=1000)]
        entries = sum([await redis.xlen(s) for s in streams])
        pg = await asyncpg.connect(services.pg_url, timeout=5)
        try:
            size = await pg.fetchval("SELECT pg_database_size(current_database())")
        finally:
            await pg.close()
    except (OSError, aioredis.RedisError, asyncpg.PostgresError):
        return None
    finally:
        await redis.aclose()
    return Gauges(used / 2**20, len(routes), entries, size / 2**20)


async def count_effects(pg_url: str) -> tuple[int, int, int]:
    """(effects applied, duplicated effects, retried attempts) in ``soak_effects``."""
    pg = await asyncpg.connect(pg_url, timeout=5)
    try:
        row: Any = await pg.fetchrow(
            "SELECT count(*) AS applied, coalesce(sum(attempts - 1), 0) AS retried, "
            "(SELECT count(*) FROM (SELECT 1 FROM soak_effects GROUP BY workflow_id, label "
            " HAVING count(*) > 1) d) AS duplicated FROM soak_effects")
        return int(row["applied"]), int(row["duplicated"]), int(row["retried"])
    finally:
        await pg.close()


def now() -> str:
    return time.strftime("%H:%M:%S")
