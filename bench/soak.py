"""Soak: mixed workflows at a steady rate on PostgreSQL + Redis while things keep dying.

    PYTHONPATH=$PWD .venv/bin/python bench/soak.py [--minutes 30] [--rate 2] [--workers 3]

It starts its own throwaway PostgreSQL and Redis (restarting them disturbs nobody), worker
processes and a ``durable server``, then for ``--minutes``: starts workflows at ``--rate`` per
second (``SoakMix``: actions, parallel actions, a timer, continue-as-new, an external event
sent once or twice with one key, a child workflow; ``SoakQuick``: actions around a timer),
SIGKILLs a random worker every ``--kill-every`` seconds and starts another, restarts Redis
(empty) a third of the way in and PostgreSQL two thirds of the way in. Each minute it prints
completed, lost, duplicated effects, worker RSS, Redis memory (``used_memory``), sticky routes
and stream entries in Redis, and the database size (``pg_database_size``). Then it lets the
work drain and audits every execution (``bench/_soak_check.py``). Exit status 1 if anything
was lost, applied twice or breaks a history invariant.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import logging
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg

import durable
from durable.errors import StoreUnavailableError

from bench._soak_check import Started, audit
from bench._soak_flows import EFFECTS_DDL, GO, soak_mix, soak_quick
from bench._soak_rig import Procs, Services, count_effects, now, read_gauges

T = TypeVar("T")
PREFIX = "soak"
HEADER = ("min  started  completed  /min  running  lost  late  dup-effects  effects  retried  "
          "kills  worker-RSS-MiB(max/sum)  redis-MiB  routes  stream-entries  db-MiB")


@dataclass
class Soak:
    client: durable.Client
    procs: Procs
    services: Services
    opts: argparse.Namespace
    rng: random.Random
    started: dict[str, Started] = field(default_factory=dict)
    started_at: dict[str, float] = field(default_factory=dict)
    sends: list[tuple[float, str, int]] = field(default_factory=list)  # (due, id, i) heap
    kills: int = 0
    events: list[str] = field(default_factory=list)
    max_routes: int = 0
    last_completed: int = 0
    stopping: bool = False

    async def retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """What a client does while PostgreSQL restarts: try again with backoff."""
        for attempt in range(200):
            try:
                return await call()
            except StoreUnavailableError:
                await asyncio.sleep(min(0.05 * 2 ** attempt, 1.0))
        raise RuntimeError("the store stayed unavailable")

    async def start_workflows(self, until: float) -> None:
        i = 0
        begin = time.monotonic()
        while time.monotonic() < until:
            workflow_id = f"soak-{i}"
            nap = self.rng.choice([0.2, 0.5, 1.0, 2.0])
            if i % 2 == 0:
                await self.retrying(lambda: self.client.start(soak_mix, i, nap, id=workflow_id))
                self.started[workflow_id] = ("SoakMix", i)
                heapq.heappush(self.sends, (time.monotonic() + self.rng.uniform(0.2, 5.0),
                                            workflow_id, i))
            else:
                await self.retrying(lambda: self.client.start(soak_quick, i, nap, id=workflow_id))
                self.started[workflow_id] = ("SoakQuick", i)
            self.started_at[workflow_id] = time.monotonic()
            i += 1
            await asyncio.sleep(max(begin + i / self.opts.rate - time.monotonic(), 0.0))

    async def send_events(self) -> None:
        """Each SoakMix gets its event a little after its start, sometimes twice (one key)."""
        while not (self.stopping and not self.sends):
            while self.sends and self.sends[0][0] <= time.monotonic():
                _, workflow_id, i = heapq.heappop(self.sends)
                handle = self.client.get_handle(workflow_id)
                for _ in range(self.rng.choice([1, 1, 2])):
                    await self.retrying(lambda: handle.send(GO, i, idempotency_key=f"go-{i}"))
            await asyncio.sleep(0.05)

    async def chaos(self, until: float) -> None:
        """SIGKILL a random worker every kill_every s (and start another); restart Redis at
        1/3 and PostgreSQL at 2/3 of the run."""
        begin = time.monotonic()
        total = until - begin
        redis_at, pg_at = begin + total / 3, begin + 2 * total / 3
        next_kill = begin + self.opts.kill_every
        while time.monotonic() < until:
            await asyncio.sleep(0.2)
            self.procs.check()
            t = time.monotonic()
            if t >= next_kill:
                next_kill += self.opts.kill_every
                victim = self.rng.choice(self.procs.workers)
                self.procs.kill(victim)
                self.procs.start_worker()
                self.kills += 1
            if redis_at and t >= redis_at:
                redis_at = 0.0
                await asyncio.to_thread(self.services.restart_redis)
                self.note("restarted Redis (empty)")
            if pg_at and t >= pg_at:
                pg_at = 0.0
                await asyncio.to_thread(self.services.restart_pg)
                self.note("restarted PostgreSQL")

    def note(self, what: str) -> None:
        self.events.append(f"{now()} {what}")
        print(f"  [{now()}] {what}", file=sys.stderr, flush=True)

    async def statuses(self) -> dict[str, int]:
        """Executions of the started workflows (not their children) by status."""
        pg = await asyncpg.connect(self.services.pg_url, timeout=5)
        try:
            rows = await pg.fetch("SELECT status, count(*) AS n FROM executions "
                                  "WHERE workflow IN ('SoakMix', 'SoakQuick') GROUP BY status")
            running = await pg.fetch("SELECT workflow_id FROM executions WHERE status = 'running' "
                                     "AND workflow IN ('SoakMix', 'SoakQuick')")
        finally:
            await pg.close()
        counts = {row["status"]: int(row["n"]) for row in rows}
        late_after = time.monotonic() - self.opts.late_after
        counts["late"] = sum(self.started_at.get(r["workflow_id"], 0.0) < late_after
                             for r in running)
        return counts

    async def report(self, minute: int) -> None:
        try:
            counts = await self.statuses()
            applied, duplicated, retried = await count_effects(self.services.pg_url)
        except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
            print(f"{minute:>3}  (PostgreSQL did not answer: {type(exc).__name__})", flush=True)
            return
        gauges = await read_gauges(self.services, PREFIX)
        completed = counts.get("completed", 0)
        lost = counts.get("failed", 0) + counts.get("cancelled", 0) + max(
            len(self.started) - sum(v for k, v in counts.items() if k != "late"), 0)
        rss = [w.rss_mb() for w in self.procs.workers]
        if gauges is not None:
            self.max_routes = max(self.max_routes, gauges.routes)
        redis = ("       -  -       -               -" if gauges is None else
                 f"{gauges.redis_mb:>9.2f}  {gauges.routes:>6}  {gauges.stream_entries:>14}"
                 f"  {gauges.db_mb:>6.1f}")
        print(f"{minute:>3}  {len(self.started):>7}  {completed:>9}  "
              f"{completed - self.last_completed:>4}  {counts.get('running', 0):>7}  {lost:>4}  "
              f"{counts['late']:>4}  {duplicated:>11}  {applied:>7}  {retried:>7}  "
              f"{self.kills:>5}  {max(rss, default=0):>11.1f} / {sum(rss):>9.1f}  {redis}",
              flush=True)
        self.last_completed = completed

    async def progress(self, until: float) -> None:
        while time.monotonic() < until:
            await asyncio.sleep(10)
            print(f"  [{now()}] started {len(self.started)}, kills {self.kills}, "
                  f"{max(until - time.monotonic(), 0):.0f}s to go", file=sys.stderr, flush=True)

    async def reports(self, begin: float) -> None:
        minute = 0
        while not self.stopping:
            minute += 1
            await asyncio.sleep(max(begin + 60 * minute - time.monotonic(), 0))
            await self.report(minute)

    async def drain(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                counts = await self.statuses()
            except (OSError, asyncpg.PostgresError, asyncio.TimeoutError):
                counts = {"running": 1}
            if not counts.get("running") and not self.sends:
                return
            await asyncio.sleep(1.0)

    async def run(self) -> None:
        begin = time.monotonic()
        until = begin + self.opts.minutes * 60
        async with asyncio.TaskGroup() as group:
            sender = group.create_task(self.send_events())
            reporter = group.create_task(self.reports(begin))
            group.create_task(self.progress(until))
            group.create_task(self.chaos(until))
            await self.start_workflows(until)
            self.note(f"stopped starting workflows ({len(self.started)} started); draining")
            self.stopping = True
            await sender
            await self.drain(time.monotonic() + self.opts.drain)
            reporter.cancel()
        await self.report(int((time.monotonic() - begin) // 60) + 1)


async def main(opts: argparse.Namespace) -> int:
    services = Services()
    services.start()
    procs = Procs(services, PREFIX, lease=opts.lease)
    try:
        pg = await asyncpg.connect(services.pg_url)
        try:
            await pg.execute(EFFECTS_DDL)
        finally:
            await pg.close()
        async with durable.connect(services.pg_url, redis_url=services.redis_url,
                                   prefix=PREFIX) as client:
            for _ in range(opts.workers):
                procs.start_worker()
            procs.start_server()
            soak = Soak(client, procs, services, opts, random.Random(opts.seed))
            print(f"soak: {opts.minutes:g} min, {opts.rate:g} workflows/s, {opts.workers} workers"
                  f" (SIGKILL one every {opts.kill_every:g}s), lease {opts.lease:g}s; "
                  f"PostgreSQL {services.pg_url}, Redis {services.redis_url}", flush=True)
            print(HEADER, flush=True)
            await soak.run()
            return await summary(soak, client)
    finally:
        procs.close()
        services.stop()


async def summary(soak: Soak, client: durable.Client) -> int:
    print("\n".join(["events:", *(f"  {e}" for e in soak.events)]), flush=True)
    gauges = await read_gauges(soak.services, PREFIX)
    found = await audit(client, soak.services.pg_url, soak.started)
    applied, duplicated, _ = await count_effects(soak.services.pg_url)
    routes = -1 if gauges is None else gauges.routes
    lines = [
        f"executions: {found.executions} started, {found.executions - len(found.lost)} completed"
        f" with the expected result; histories checked: {found.histories}",
        f"lost: {len(found.lost)}",
        f"duplicated effects: {duplicated} (audit: {len(found.duplicated)}); "
        f"effects applied: {applied}; executions missing an effect: {len(found.effects_missing)}",
        f"history invariant violations: {len(found.broken)}",
        f"sticky routes: {routes} at the end, at most {soak.max_routes} in a minute's sample",
        f"worker kills: {soak.kills}",
    ]
    print("\n".join(lines), flush=True)
    for problem in (found.lost + found.broken + found.duplicated + found.effects_missing)[:20]:
        print(f"  PROBLEM {problem}", flush=True)
    return 0 if found.ok and duplicated == 0 else 1


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30.0, help="how long workflows are started")
    p.add_argument("--rate", type=float, default=2.0, help="workflows started per second")
    p.add_argument("--workers", type=int, default=3, help="worker processes")
    p.add_argument("--kill-every", type=float, default=10.0, help="seconds between SIGKILLs")
    p.add_argument("--lease", type=float, default=3.0, help="the workers' lease (seconds)")
    p.add_argument("--late-after", type=float, default=120.0,
                   help="a running execution older than this counts as late")
    p.add_argument("--drain", type=float, default=240.0,
                   help="seconds to let the last workflows finish")
    p.add_argument("--seed", type=int, default=7)
    opts = p.parse_args(argv)
    if opts.minutes <= 0 or opts.rate <= 0 or opts.workers < 1 or opts.kill_every <= 0:
        p.error("--minutes, --rate and --kill-every must be > 0, --workers >= 1")
    return opts


if __name__ == "__main__":
    # The driver's own client logs each outage it rides out (PostgreSQL restarting): keep
    # those out of the table; the workers' logs are in the services' logs directory.
    logging.basicConfig(level=logging.CRITICAL)
    sys.exit(asyncio.run(main(parse())))
