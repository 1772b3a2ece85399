"""End-to-end throughput, latency, recovery and long workflows on a real store.

    .venv/bin/python bench/e2e.py throughput --db URL [--redis URL] [--workflows 1000] [--concurrency 100] [--in-flight N] [--embedded]
    .venv/bin/python bench/e2e.py latency    --db URL [--redis URL] [--samples 200] [--actions 1|3] [--embedded]
    .venv/bin/python bench/e2e.py recovery   --db URL [--redis URL] [--workflows 200] [--steps 20] [--embedded] [--lease S]
    .venv/bin/python bench/e2e.py long       --db URL [--redis URL] [--steps 10000] [--embedded]
    .venv/bin/python bench/e2e.py matrix     [--workflows 1000] [--queues [queues|limits]]
    .venv/bin/python bench/e2e.py fairness   --db URL [--redis URL] [--noisy 20000] [--samples 200]

Any of them with ``--codec aesgcm`` (or ``zlib``): every client and worker encodes payloads.

Workers (and, with Redis, a ``durable server``) run as separate processes, as in production;
this process starts the workflows and waits for their results. With ``--embedded`` the worker
runs in this process instead (the embedded default: one process, no server). ``--db``
defaults to ``$DURABLE_PG_DSN`` and ``--redis`` to ``$DURABLE_REDIS_URL``; pass ``--redis ''``
for in-process dispatch, ``--redis redis+cluster://host:port`` for a Redis Cluster. Each run
uses a fresh tenant, so runs do not see each other's work. ``--in-flight`` bounds the
workflows the client has started and not yet seen finish (default: ``--concurrency``, the
worker's bound). ``--plain`` runs the workflows written the plain way
(``@durable.action`` with no options, a ``durable.Worker`` with its defaults) instead of with
the fastest documented option (short action timeouts: inline; see ``bench/_e2e_flows.py``).

- throughput: 3-action workflows; workflows/s, action steps/s, and start-to-result p50/p99.
- latency: one workflow at a time; start-to-result p50/p99.
- recovery: the worker running ``--workflows`` workflows of ``--steps`` steps is SIGKILLed
  half way through them; a second, live worker takes them over; when the first resumed and
  when all finished. Every worker and server setting is the default (but concurrency), unless
  ``--lease`` is given. With ``--embedded`` (a SQLite file): an application process that
  runs them is SIGKILLed half way and started again; when all finished after the restart.
- long: one workflow of ``--steps`` sequential steps next to one of 10 steps; µs per step
  of each and their ratio (the sticky cache keeps a long workflow linear).
- fairness: tenant "quiet" starts 1-action workflows one at a time, on an idle system and
  then with tenant "noisy"'s ``--noisy`` workflows queued; quiet's start-to-result p99 in
  both and their ratio. It runs on a database of its own (a new one on ``--db``'s server,
  dropped after), since it leaves noisy's backlog unfinished.
- matrix: throughput at concurrency 1, 10 and 100 on SQLite (one process, and a worker
  process) and on PostgreSQL + Redis, as one table; with ``--queues``, each again with the
  workflow and its action on task queues of their own and the action's and its queue's limits
  configured but not binding (``--queues queues``: without the limits), and the ratio;
  ``--plain`` measures the plain way (a default Worker, actions that do not run inline).

Each measurement prints its line and returns its numbers (``measure("latency", db=...,
actions=3)``), for ``bench/compare``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import durable
from bench import _e2e_flows as flows
from bench._databases import throwaway


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Cluster:
    """Worker processes (and a server when dispatching through Redis) for one benchmark."""

    def __init__(self, db: str, redis: str | None, prefix: str, plain: bool = False) -> None:
        self.db, self.redis, self.prefix, self.plain = db, redis, prefix, plain
        self.procs: list[subprocess.Popen[bytes]] = []

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env,
                                stdin=subprocess.DEVNULL, stdout=sys.stderr,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def worker(self, concurrency: int, lease: float | None,
               standby: str | None = None) -> subprocess.Popen[bytes]:
        """A worker process; with ``lease`` None, on default settings (but concurrency)."""
        args = ["-m", "bench._e2e_flows", self.db, "--concurrency", str(concurrency),
                "--prefix", self.prefix]
        args += ["--defaults"] if lease is None else ["--lease", str(lease)]
        args += ["--redis", self.redis] if self.redis else []
        args += ["--plain"] if self.plain else []
        return self._spawn(*args, *(["--standby", standby] if standby else []))

    def server(self, defaults: bool = False) -> subprocess.Popen[bytes] | None:
        """``durable server`` (with Redis only): tuned, or on its default settings."""
        if not self.redis:
            return None
        tuned = [] if defaults else ["--interval", "0.05", "--redispatch-after", "0.5"]
        return self._spawn("-m", "durable._cli", "server", "--db", self.db, "--redis", self.redis,
                           "--prefix", self.prefix, "--port", "0", *tuned)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait()
        if self.redis:  # this run's streams, groups and maps: every key under its prefix
            import redis
            from redis.cluster import RedisCluster

            cluster = self.redis.startswith(("redis+cluster:", "rediss+cluster:"))
            with (RedisCluster.from_url(self.redis.replace("+cluster", "", 1)) if cluster
                  else redis.Redis.from_url(self.redis)) as r:
                keys = list(r.scan_iter(match=f"{self.prefix}:*", count=1000))
                if keys:
                    r.delete(*keys)


@asynccontextmanager
async def connected(args: argparse.Namespace, prefix: str) -> AsyncIterator[durable.Client]:
    options: dict[str, Any] = {"tenant": f"bench-{uuid.uuid4().hex[:8]}", "tenants": "*",
                               **flows.codec_options()}
    if args.redis:
        options.update(redis_url=args.redis, prefix=prefix)
    async with durable.connect(args.db, **options) as client:
        client.poll_interval = args.poll
        yield client


@asynccontextmanager
async def running(args: argparse.Namespace, concurrency: int,
                  lease: float = 10.0) -> AsyncIterator[durable.Client]:
    """A client, with one worker (in a process of its own, or here with ``--embedded``) and,
    with Redis, a server."""
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    cluster = Cluster(args.db, args.redis, prefix, args.plain)
    # workers host the limited actions (and poll for them) only when limits are measured
    os.environ["BENCH_LIMITS"] = "1" if args.queues == "limits" else "0"
    try:
        if not args.embedded:
            for _ in range(args.workers):
                cluster.worker(concurrency, lease=lease)
        cluster.server(defaults=args.plain)  # plain: every setting the product's default
        async with connected(args, prefix) as client:
            if not args.embedded:
                yield client
                return
            async with flows.worker(client, args.plain, concurrency, lease):
                yield client
    finally:
        cluster.stop()


def _setup(args: argparse.Namespace) -> str:
    where = "one process" if args.embedded else f"workers={args.workers}"
    plain = " plain" if args.plain else ""
    codec = "" if getattr(args, "codec", "none") == "none" else f" codec={args.codec}"
    return f"db={_scheme(args.db)} redis={'yes' if args.redis else 'no'} {where}{plain}{codec}"


async def run_bounded(count: int, concurrency: int, one: Any) -> list[float]:
    """Run ``one(i)`` for i < count with at most ``concurrency`` at once; their latencies."""
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def bounded(i: int) -> None:
        async with gate:
            t0 = time.perf_counter()
            await one(i)
            latencies.append(time.perf_counter() - t0)
            if len(latencies) % max(count // 10, 1) == 0:
                progress(f"  {len(latencies)}/{count} done")

    await asyncio.gather(*(bounded(i) for i in range(count)))
    return latencies


async def throughput(args: argparse.Namespace) -> dict[str, float]:
    async with running(args, args.concurrency) as client:
        async def one(i: int) -> None:
            if args.queues == "plain":
                handle = await client.start(flows.flow("three", args.plain), i, id=f"t{i}")
            else:  # on queues of their own; with "limits", under limits that do not bind
                queued = flows.three_steps_queued_plain if args.plain else flows.three_steps_queued
                handle = await client.start(queued, i, args.queues == "limits", id=f"t{i}")
            assert await handle.result(timeout=300) == i + 3

        in_flight = args.in_flight or args.concurrency
        await run_bounded(min(20, args.workflows), in_flight, one)  # warm up
        t0 = time.perf_counter()
        samples = await run_bounded(args.workflows, in_flight, lambda i: one(i + 10**6))
        elapsed = time.perf_counter() - t0
    p50, p99 = _percentiles(samples)
    print(f"throughput {_setup(args)} queues={args.queues} workflows={args.workflows} "
          f"concurrency={args.concurrency} in-flight={in_flight}: "
          f"{args.workflows / elapsed:,.0f} workflows/s, "
          f"{3 * args.workflows / elapsed:,.0f} action steps/s ({elapsed:.2f} s); "
          f"start-to-result p50 {p50 * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms")
    return {"workflows_per_s": args.workflows / elapsed,
            "steps_per_s": 3 * args.workflows / elapsed, "seconds": elapsed,
            "loaded_p50": p50, "loaded_p99": p99}


async def latency(args: argparse.Namespace) -> dict[str, float]:
    async with running(args, 10) as client:
        flow = flows.flow({1: "one", 3: "three"}[args.actions], args.plain)

        async def one(i: int) -> None:
            handle = await client.start(flow, i, id=f"l{i}")
            assert await handle.result(timeout=60) == i + args.actions

        await run_bounded(10, 1, one)  # warm up
        samples = await run_bounded(args.samples, 1, lambda i: one(i + 10**6))
    p50, p99 = _percentiles(samples)
    mean = statistics.mean(samples)
    print(f"latency {_setup(args)} {args.actions}-action workflow, concurrency 1, "
          f"{args.samples} samples: p50 {p50 * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms, "
          f"mean {mean * 1e3:.1f} ms")
    return {"p50": p50, "p99": p99, "mean": mean}


async def fairness(args: argparse.Namespace) -> dict[str, float]:
    """Tenant "quiet" starts 1-action workflows one at a time, first on an idle system, then
    while tenant "noisy" has ``--noisy`` 3-action workflows queued: quiet's start-to-result
    p99 in both, and their ratio (target <= 2). On a database of its own, made next to
    ``--db``'s and dropped after: noisy's backlog, left unfinished, would otherwise be found
    and run by the workers of whatever runs on that database next."""
    with throwaway(args.db) as db:
        return await _fairness(argparse.Namespace(**{**vars(args), "db": db}))


async def _fairness(args: argparse.Namespace) -> dict[str, float]:
    async with running(args, args.concurrency) as client:
        tag = uuid.uuid4().hex[:6]
        quiet, noisy = f"quiet-{tag}", f"noisy-{tag}"

        async def one(i: int) -> None:
            handle = await client.start(flows.flow("one", args.plain), i, id=f"q{i}",
                                        tenant=quiet)
            assert await handle.result(timeout=600) == i + 1

        await run_bounded(10, 1, one)  # warm up
        idle = await run_bounded(args.samples, 1, lambda i: one(i + 10**6))
        progress(f"starting {args.noisy:,} workflows of tenant {noisy} ...")
        await run_bounded(args.noisy, 200, lambda i: client.start(
            flows.flow("three", args.plain), i, id=f"n{i}", tenant=noisy))
        before = len(await client.store.list_executions(noisy, status="running",
                                                        limit=args.noisy))
        began = time.perf_counter()
        loaded = await run_bounded(args.samples, 1, lambda i: one(i + 2 * 10**6))
        seconds = time.perf_counter() - began
        left = len(await client.store.list_executions(noisy, status="running", limit=args.noisy))
    (idle_p50, idle_p99), (loaded_p50, loaded_p99) = _percentiles(idle), _percentiles(loaded)
    print(f"fairness {_setup(args)} concurrency={args.concurrency} noisy={args.noisy:,} queued "
          f"({left:,} still running when quiet was done), {args.samples} quiet samples: "
          f"quiet p99 idle {idle_p99 * 1e3:.1f} ms, loaded {loaded_p99 * 1e3:.1f} ms: "
          f"{loaded_p99 / idle_p99:.1f}x (target <= 2x); p50 {idle_p50 * 1e3:.1f} / "
          f"{loaded_p50 * 1e3:.1f} ms; meanwhile noisy finished {(before - left) / seconds:,.0f} "
          f"workflows/s")
    return {"idle_p99": idle_p99, "loaded_p99": loaded_p99, "ratio": loaded_p99 / idle_p99,
            "noisy_per_s": (before - left) / seconds}


def _percentiles(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return samples[len(samples) // 2], samples[min(int(len(samples) * 0.99), len(samples) - 1)]


async def long(args: argparse.Namespace) -> dict[str, float]:
    """µs per step of one long workflow next to a 10-step one, end to end."""
    short, steps = 10, args.steps
    async with running(args, 10) as client:
        async def per_step(n: int, i: int) -> float:
            t0 = time.perf_counter()
            handle = await client.start(flows.long_steps, n, id=f"long{n}-{i}")
            assert await handle.result(timeout=600) == n
            return (time.perf_counter() - t0) / n

        await per_step(short, -1)  # warm up
        progress(f"  {short} steps ...")
        short_us = min([await per_step(short, i) for i in range(20)]) * 1e6
        progress(f"  {steps:,} steps ...")
        long_us = min([await per_step(steps, i) for i in range(3)]) * 1e6
    ratio = long_us / short_us
    print(f"long {_setup(args)}: {short}-step workflow {short_us:.1f} us/step, {steps:,}-step "
          f"workflow {long_us:.1f} us/step: {ratio:.2f}x the short one's per step "
          f"(target <= 1.5x)")
    return {"short_us": short_us, "long_us": long_us, "ratio": ratio}


async def recovery(args: argparse.Namespace) -> dict[str, float]:
    """A worker process runs the workflows and is SIGKILLed half way through them; a second
    worker process, started with it and idle until the workflows are under way, takes them
    over (once it finds the first dead; with ``--lease``, once their leases expire)."""
    import tempfile

    if args.embedded:
        return await recovery_embedded(args)
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    cluster = Cluster(args.db, args.redis, prefix, args.plain)
    go = Path(tempfile.mkdtemp(prefix="durable-bench-")) / "go"
    try:
        victim = cluster.worker(args.workflows, lease=args.lease)
        cluster.worker(args.workflows, lease=args.lease, standby=str(go))  # the live worker
        cluster.server(defaults=args.lease is None)
        async with connected(args, prefix) as client:
            await asyncio.sleep(1.5)  # both workers are up
            handles = await asyncio.gather(*(
                client.start(flows.flow("many", args.plain), args.steps, STEP_SECONDS,
                             id=f"r{i}")
                for i in range(args.workflows)))
            # Half way through (a workflow takes at least steps x STEP_SECONDS): each is in
            # flight, its inline steps not yet committed, so the next worker runs them again.
            duration = args.steps * STEP_SECONDS
            await asyncio.sleep(duration / 2)
            go.touch()  # the second worker joins in now, with everything claimed
            victim.send_signal(signal.SIGKILL)
            killed_at = time.perf_counter()
            at_kill = {r.workflow_id: r for r in await client.list(limit=args.workflows)}
            in_flight = sum(r.status == "running" for r in at_kill.values())
            progress(f"SIGKILLed the worker with {in_flight} of {len(handles)} workflows of "
                     f"{args.steps} steps in flight")
            # The end is seen as a client sees it, when the results arrive; the progress is
            # read every 50 ms (as the Restate comparison reads its own), so that observing
            # takes little of the machine the recovery runs on.
            ended = _ends(handles)
            resumed = released = None
            shown = 0.0
            while len(ended) < len(handles):  # a query a round: statuses and history lengths
                rows = await client.list(limit=args.workflows)
                if time.perf_counter() - killed_at >= shown + 0.25:
                    shown = time.perf_counter() - killed_at
                    progress(f"  {shown:.2f} s: {sum(r.status != 'running' for r in rows)} "
                             f"finished, {sum(r.last_seq for r in rows)} events")
                if resumed is None and any(r.last_seq > at_kill[r.workflow_id].last_seq
                                           for r in rows):
                    resumed = time.perf_counter() - killed_at
                if released is None and not await _registered(client, victim.pid):
                    released = time.perf_counter() - killed_at
                await asyncio.sleep(0.05)
            finished = max(ended) - killed_at
        print(f"recovery db={_scheme(args.db)} redis={'yes' if args.redis else 'no'} two "
              f"worker processes, {_lease(args)}{' plain' if args.plain else ''}: SIGKILL with {in_flight} of "
              f"{args.workflows} workflows of {args.steps} steps in flight; its tasks were "
              f"released {_seconds(released)} after the kill, the live worker resumed the "
              f"first {resumed if resumed is not None else finished:.2f} s after it, all "
              f"finished {finished:.2f} s after it")
        return {"resumed": resumed if resumed is not None else finished, "finished": finished,
                "in_flight": in_flight, "released": finished if released is None else released}
    finally:
        cluster.stop()
        shutil.rmtree(go.parent, ignore_errors=True)


STEP_SECONDS = flows.RECOVERY_STEP  # each step of the recovery workflows sleeps this long


def _ends(handles: list[Any]) -> list[float]:
    """The ``perf_counter`` times at which the results of ``handles`` arrive, as they do."""
    ended: list[float] = []

    def stamp(result: asyncio.Future[Any]) -> None:
        ended.append(time.perf_counter())
        if not result.cancelled():
            result.exception()  # a failed workflow has ended too

    for handle in handles:
        asyncio.ensure_future(handle.result()).add_done_callback(stamp)
    return ended


async def _registered(client: durable.Client, pid: int) -> bool:
    """Whether a worker of process ``pid`` is registered (its tasks not yet released)."""
    return any(w.pid == pid for w in await client.store.list_workers())


def _seconds(value: float | None) -> str:
    return "(never seen)" if value is None else f"{value:.2f} s"


def _lease(args: argparse.Namespace) -> str:
    return "default settings" if args.lease is None else f"lease={args.lease}s"


async def recovery_embedded(args: argparse.Namespace) -> dict[str, float]:
    """An application process (client and worker in one, default settings) on a SQLite file
    starts the workflows and is SIGKILLed half way through them, then started again: how long
    after the restart all finished (the new process's start-up included)."""
    if not args.db.startswith("sqlite:"):
        raise SystemExit("recovery --embedded runs on a SQLite file: pass --db sqlite:///PATH")
    tenant = f"bench-{uuid.uuid4().hex[:8]}"
    cluster = Cluster(args.db, None, "")

    def app(start: int) -> subprocess.Popen[bytes]:
        return cluster._spawn("-m", "bench._e2e_flows", args.db, "--app", str(start),
                              "--tenant", tenant, "--steps", str(args.steps),
                              "--concurrency", str(args.workflows),
                              *(["--plain"] if args.plain else []))

    try:
        async with durable.connect(args.db, tenant=tenant) as client:
            first = app(args.workflows)
            while len(await client.list(limit=args.workflows)) < args.workflows:
                await asyncio.sleep(0.01)
            await asyncio.sleep(args.steps * STEP_SECONDS / 2)  # half way through
            first.send_signal(signal.SIGKILL)
            first.wait()
            rows = await client.list(limit=args.workflows)
            in_flight = sum(r.status == "running" for r in rows)
            progress(f"SIGKILLed the application with {in_flight} of {args.workflows} "
                     f"workflows of {args.steps} steps in flight; starting it again")
            restarted_at = time.perf_counter()
            app(0)
            released = None
            while any(r.status == "running" for r in await client.list(limit=args.workflows)):
                if released is None and not await _registered(client, first.pid):
                    released = time.perf_counter() - restarted_at
                await asyncio.sleep(0.01)
            finished = time.perf_counter() - restarted_at
        print(f"recovery db=sqlite embedded application, default settings"
              f"{' plain' if args.plain else ''}: SIGKILL with "
              f"{in_flight} of {args.workflows} workflows of {args.steps} steps in flight; "
              f"restarted, its tasks were released {_seconds(released)} after the restart "
              f"(the new process's start-up included), all finished {finished:.2f} s after it")
        return {"finished": finished, "in_flight": in_flight,
                "released": finished if released is None else released}
    finally:
        cluster.stop()


def _scheme(url: str) -> str:
    return url.split(":", 1)[0]


async def matrix(args: argparse.Namespace) -> dict[str, float]:
    """Throughput at concurrency 1, 10 and 100 on SQLite and on PostgreSQL + Redis."""
    import tempfile

    pg = os.environ.get("DURABLE_PG_DSN")
    redis_url = os.environ.get("DURABLE_REDIS_URL")
    rows, numbers = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        setups = [("SQLite, one process", f"sqlite:///{tmp}/one.db", "", True, 0.05),
                  ("SQLite, worker process", f"sqlite:///{tmp}/two.db", "", False, 0.005)]
        if pg and redis_url:
            setups.append(("PostgreSQL + Redis, worker process", pg, redis_url, False, args.poll))
        for name, db, redis_url_, embedded, poll in setups:
            for concurrency in (1, 10, 100):
                options = dict(db=db, redis=redis_url_, embedded=embedded, poll=poll,
                               concurrency=concurrency, workflows=args.workflows,
                               plain=args.plain)
                progress(f"{name}, concurrency {concurrency} ...")
                got = await measure("throughput", **options)
                row = [name, concurrency, f"{got['workflows_per_s']:,.0f}",
                       f"{got['steps_per_s']:,.0f}", f"{got['loaded_p50'] * 1e3:.1f}",
                       f"{got['loaded_p99'] * 1e3:.1f}"]
                numbers[f"{name}/{concurrency}"] = got["steps_per_s"]
                if args.queues != "plain":  # the same again on queues (and limits): the ratio
                    variant = await measure("throughput", queues=args.queues, **options)
                    numbers[f"{name}/{concurrency}/{args.queues}"] = variant["steps_per_s"]
                    row += [f"{variant['steps_per_s']:,.0f}",
                            f"{variant['steps_per_s'] / got['steps_per_s']:.2f}"]
                rows.append(tuple(row))
    from bench.compare._common import table

    print(f"\nEnd to end, {args.workflows:,} workflows of 3 actions each, one worker"
          f"{' (plain: default Worker, actions not inline)' if args.plain else ''} "
          "(start-to-result percentiles under that load)")
    heads = ["store", "concurrency", "workflows/s", "steps/s", "p50 ms", "p99 ms"]
    if args.queues != "plain":
        heads += [f"steps/s {args.queues}", "ratio"]
    print(table(heads, rows))
    return numbers


MEASUREMENTS = {"throughput": throughput, "latency": latency, "recovery": recovery,
                "long": long, "matrix": matrix, "fairness": fairness}


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=list(MEASUREMENTS))
    parser.add_argument("--db", default=os.environ.get("DURABLE_PG_DSN", "sqlite:///bench.db"))
    parser.add_argument("--redis", default=os.environ.get("DURABLE_REDIS_URL"))
    parser.add_argument("--workflows", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--in-flight", type=int, default=None)
    parser.add_argument("--actions", type=int, choices=[1, 3], default=1)
    parser.add_argument("--poll", type=float, default=float(os.environ.get("BENCH_POLL", "1.0")),
                        help="the client's result poll interval (PostgreSQL also wakes it)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--noisy", type=int, default=20_000,
                        help="fairness: the noisy tenant's queued workflows")
    parser.add_argument("--steps", type=int, default=None,
                        help="recovery: steps per workflow (20); long: steps (10,000)")
    parser.add_argument("--embedded", action="store_true",
                        help="run the worker in this process (no worker process, no server)")
    parser.add_argument("--lease", type=float, default=None,
                        help="recovery: the workers' lease (default: every setting default)")
    parser.add_argument("--plain", action="store_true",
                        help="plain @durable.action and a default Worker")
    parser.add_argument("--codec", choices=["none", "aesgcm", "zlib"], default="none",
                        help="a payload codec on every client and worker (connect(codec=))")
    parser.add_argument("--queues", nargs="?", const="limits", default="plain",
                        choices=["plain", "queues", "limits"],
                        help="throughput/matrix: the workflow and its action on task queues of "
                             "their own ('queues'), the action also with limits that do not "
                             "bind ('limits', the default of a bare --queues); matrix prints "
                             "the ratio to plain")
    return parser


def _defaults(args: argparse.Namespace) -> argparse.Namespace:
    args.workflows = args.workflows or {"throughput": 1000, "recovery": 200,
                                         "matrix": 1000}.get(args.what, 0)
    args.steps = args.steps or {"long": 10_000}.get(args.what, 20)
    return args


async def measure(what: str, **options: Any) -> dict[str, float]:
    """Run one measurement with the CLI's defaults overridden by ``options``; its numbers."""
    args = _defaults(parser().parse_args([what]))
    for name, value in options.items():
        if not hasattr(args, name):
            raise TypeError(f"unknown option {name!r}")
        setattr(args, name, value)
    return await MEASUREMENTS[what](args)


def main() -> None:
    args = _defaults(parser().parse_args())
    if args.codec != "none":  # the worker processes read it too
        os.environ["DURABLE_BENCH_CODEC"] = args.codec
    flows.telemetry.install()  # DURABLE_BENCH_TELEMETRY=1: client spans (bench/telemetry.py)
    asyncio.run(MEASUREMENTS[args.what](args))


if __name__ == "__main__":
    main()
