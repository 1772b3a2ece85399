"""End to end: durable on PostgreSQL + Redis next to Restate (server 1.7.12, Python SDK 1.2.0).

    .venv/bin/python -m bench.compare.restate_e2e [--workflows 2000] [--repeat 2] [--samples 200]
        [--recovery-workflows 200] [--steps 20] [--only throughput latency recovery]
        [--restate-dir DIR]

Restate is not a dependency of durable: its server is the npm package
``@restatedev/restate-server`` (the binary comes in a platform package such as
``@restatedev/restate-server-linux-x64``) and its SDK ``restate-sdk`` on PyPI, served by
``hypercorn``. Both are installed on first use under ``--restate-dir`` (default
``$BENCH_RESTATE_DIR`` or ``~/.cache/durable-bench/restate``): ``npm install`` there and a
virtualenv of its own (``DIR/venv``). Where they cannot be had (no npm, no registry) the
comparison is skipped with the reason.

Both run a 3-step workflow: durable's ``bench/_e2e_flows.py`` (3 actions) and a Restate
Workflow of 3 ``ctx.run`` steps (``bench/compare/_restate_app.py``, one service process). Each
measurement starts a fresh Restate server (its own base directory, defaults otherwise: admin
on 9070, ingress on 8080), a service process (hypercorn) and registers it as a deployment
on the admin port; workflows are invoked over HTTP on the ingress port.

- throughput: ``--workflows`` invoked at once (``POST /BenchThreeSteps/KEY/run``, each
  waiting for its result); workflows/s and steps/s, the best of ``--repeat`` runs.
- latency: one at a time, ``--samples`` samples; p50 and p99 of invocation to result.
- recovery: ``--recovery-workflows`` workflows of ``--steps`` 20 ms steps sent
  (``/run/send``); once all are in flight and five have done two steps or more, the service
  process is SIGKILLed and a new one started at once on the same address; seconds from the
  kill until all have finished (``sys_invocation`` on the admin API's ``/query``).

durable is measured in the four setups of ``_common.SETUPS`` (worker in the application's
process or in a process of its own with ``durable server``; plain ``@durable.action`` with a
default Worker, or the fastest documented option), each on a database of its own on
``BENCH_PG`` and a Redis prefix of its own on ``DURABLE_REDIS_URL``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.compare._common import (
    REDIS_URL,
    ROOT,
    Goal,
    attempt,
    best,
    durable_setups,
    exit_on_sigterm,
    free_port,
    percentiles,
    progress,
    report,
    stop,
)

SERVER = "@restatedev/restate-server@1.7.12"
SDK = ["restate-sdk==1.2.0", "hypercorn"]
ADMIN, INGRESS = 9070, 8080
DEFAULT_DIR = os.environ.get("BENCH_RESTATE_DIR",
                             str(Path.home() / ".cache" / "durable-bench" / "restate"))


def goal(key: str, setup: str) -> Goal | None:
    """Issue 14's targets: plain with a worker process of its own >= 3x Restate's steps/s and
    p50 <= 1/2 of Restate's; the fastest option >= 5x and <= 1/4."""
    if setup == "worker process, plain":
        steps, p50 = 3.0, 0.5
    elif setup.endswith("fastest"):
        steps, p50 = 5.0, 0.25
    else:
        return None
    if key == "steps_per_s":
        return f">={steps:.0f}x", lambda d, p: d / p >= steps
    if key == "p50":
        return f"<={p50} of Restate's", lambda d, p: d / p <= p50
    return None


class Unavailable(Exception):
    """Restate's server or SDK cannot be installed or started here."""


@dataclass
class Restate:
    binary: Path
    python: Path
    home: Path


def _run(args: list[str], what: str, **options: Any) -> None:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=600, **options)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unavailable(f"{what}: {exc}") from None
    if done.returncode != 0:
        tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise Unavailable(f"{what} failed (exit {done.returncode}): {tail}")


def install(home: Path) -> Restate:
    """The server binary and the SDK's interpreter under ``home``, installed if missing."""
    home.mkdir(parents=True, exist_ok=True)

    def binary() -> Path | None:
        found = sorted(home.glob("node_modules/@restatedev/restate-server-*/bin/restate-server"))
        return found[0] if found else None

    if binary() is None:
        npm = shutil.which("npm")
        if npm is None:
            raise Unavailable("npm is not installed (the server is the npm package "
                              f"{SERVER})")
        progress(f"Restate: npm install {SERVER} in {home} ...")
        _run([npm, "install", "--no-audit", "--no-fund", "--prefix", str(home), SERVER],
             f"npm install {SERVER}")
    server = binary()
    if server is None:
        raise Unavailable(f"{SERVER} has no server binary for this platform")
    python = home / "venv" / "bin" / "python"
    check = [str(python), "-c", "import importlib.metadata as m, hypercorn; "
             "assert m.version('restate-sdk') == '1.2.0'"]
    if not python.exists() or subprocess.run(check, capture_output=True).returncode != 0:
        progress(f"Restate: a virtualenv with {' '.join(SDK)} in {home / 'venv'} ...")
        _run([sys.executable, "-m", "venv", str(home / "venv")], "python -m venv")
        _run([str(python), "-m", "pip", "install", "-q", *SDK], f"pip install {' '.join(SDK)}")
    return Restate(server, python, home)


async def _up(url: str, proc: subprocess.Popen[Any], what: str, log: Path) -> None:
    """Wait until ``url`` answers; ``Unavailable`` (with the end of ``log``) if ``proc`` exits
    or a minute passes first."""
    import aiohttp

    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url) as response:
                    if response.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
                raise Unavailable(f"{what} did not answer on {url}: {tail}")
            await asyncio.sleep(0.1)


def _busy(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


# The SDK's recommended hypercorn settings (sdk-python's hypercorn-config.toml): hypercorn's
# defaults cap an HTTP/2 connection at 100 concurrent streams (invocations) and 1,000 requests.
# One worker process: the service process, as durable runs one worker process.
HYPERCORN = """h2_max_concurrent_streams = 2147483647
keep_alive_max_requests = 2147483647
keep_alive_timeout = 2147483647
workers = 1
"""


class Service:
    """The SDK's service process (hypercorn) on a fixed address."""

    def __init__(self, restate: Restate, port: int, base: Path) -> None:
        self.restate, self.port, self.log = restate, port, base / "service.log"
        self.config = base / "hypercorn.toml"
        self.config.write_text(HYPERCORN)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(self.restate.python), "-m", "hypercorn", "bench.compare._restate_app:app",
                 "--config", str(self.config), "--bind", f"127.0.0.1:{self.port}"],
                cwd=ROOT, env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        return self.proc

    def kill(self) -> None:
        """SIGKILL the service: hypercorn's process and its worker (one process group)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@asynccontextmanager
async def running(restate: Restate) -> AsyncIterator[tuple[Any, Service]]:
    """A fresh Restate server and a registered service process; an HTTP session for them."""
    import aiohttp

    busy = [port for port in (ADMIN, INGRESS) if _busy(port)]
    if busy:
        raise Unavailable(f"port(s) {busy} already in use: is another Restate server running?")
    base = Path(tempfile.mkdtemp(prefix="run-", dir=restate.home))
    env = dict(os.environ, RESTATE_LOG_FILTER="warn")
    with (base / "server.log").open("ab") as log:
        server = subprocess.Popen([str(restate.binary), "--no-logo", "--base-dir", str(base),
                                   "--node-name", "bench"], cwd=base, env=env,
                                  stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                  start_new_session=True)
    service = Service(restate, free_port(), base)
    try:
        await _up(f"http://127.0.0.1:{ADMIN}/health", server, "restate-server (admin)",
                  base / "server.log")
        await _up(f"http://127.0.0.1:{INGRESS}/restate/health", server,
                  "restate-server (ingress)", base / "server.log")
        await _up(f"http://127.0.0.1:{service.port}/discover", service.start(),
                  "the Restate service (hypercorn)", service.log)
        connector = aiohttp.TCPConnector(limit=0)  # as many connections as invocations
        async with aiohttp.ClientSession(connector=connector) as http:
            async with http.post(f"http://127.0.0.1:{ADMIN}/deployments",
                                 json={"uri": f"http://127.0.0.1:{service.port}",
                                       "force": True}) as response:
                if response.status >= 300:
                    raise Unavailable(f"registering the deployment: {response.status} "
                                      f"{await response.text()}")
            yield http, service
    finally:
        service.kill()
        stop(server)
        shutil.rmtree(base, ignore_errors=True)


async def _invoke(http: Any, n: int) -> None:
    url = f"http://127.0.0.1:{INGRESS}/BenchThreeSteps/{uuid.uuid4().hex}/run"
    async with http.post(url, json=n) as response:
        result = await response.json()
    assert response.status == 200 and result == n + 3, (response.status, result)


async def _query(http: Any, sql: str) -> list[dict[str, Any]]:
    async with http.post(f"http://127.0.0.1:{ADMIN}/query", json={"query": sql},
                         headers={"accept": "application/json"}) as response:
        return (await response.json())["rows"]  # type: ignore[no-any-return]


async def _counts(http: Any) -> tuple[int, int, int]:
    """The recovery workflows: all, finished, and those with two steps or more done (a
    ``ctx.run`` is two journal entries after the input: its command and its result)."""
    rows = await _query(http, (
        "SELECT count(*) AS total, "
        "sum(CASE WHEN status = 'completed' THEN 1 ELSE 0 END) AS done, "
        "sum(CASE WHEN journal_size >= 5 THEN 1 ELSE 0 END) AS going "
        "FROM sys_invocation WHERE target_service_name = 'BenchManySteps'"))
    row = rows[0] if rows else {}
    return int(row.get("total") or 0), int(row.get("done") or 0), int(row.get("going") or 0)


async def restate_side(what: str, args: argparse.Namespace, restate: Restate
                       ) -> dict[str, float]:
    async with running(restate) as (http, service):
        if what == "throughput":
            await asyncio.gather(*(_invoke(http, i) for i in range(20)))  # warm up
            t0 = time.perf_counter()
            await asyncio.gather(*(_invoke(http, i) for i in range(args.workflows)))
            seconds = time.perf_counter() - t0
            return {"workflows_per_s": args.workflows / seconds,
                    "steps_per_s": 3 * args.workflows / seconds, "seconds": seconds}
        if what == "latency":
            samples = []
            for i in range(10 + args.samples):
                t0 = time.perf_counter()
                await _invoke(http, i)
                samples.append(time.perf_counter() - t0)
            p50, p99 = percentiles(samples[10:])
            return {"p50": p50, "p99": p99}
        return await _recovery(http, service, args)


async def _recovery(http: Any, service: Service, args: argparse.Namespace) -> dict[str, float]:
    body = {"steps": args.steps, "seconds": 0.02}

    async def send(key: str) -> None:
        url = f"http://127.0.0.1:{INGRESS}/BenchManySteps/{key}/run/send"
        async with http.post(url, json=body) as response:
            assert response.status < 300, (response.status, await response.text())

    await asyncio.gather(*(send(f"r{i}") for i in range(args.recovery_workflows)))
    progress(f"  Restate: sent {args.recovery_workflows} workflows of {args.steps} steps; "
             "waiting until under way")
    while True:
        total, done, going = await _counts(http)
        if total >= args.recovery_workflows and going >= 5:
            break
        await asyncio.sleep(0.05)
    service.kill()
    killed_at = time.perf_counter()
    service.start()
    progress(f"  Restate: SIGKILLed the service with {done} finished; a new one is starting")
    while (await _counts(http))[1] < args.recovery_workflows:
        await asyncio.sleep(0.05)
    return {"finished": time.perf_counter() - killed_at}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workflows", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=2,
                   help="throughput runs per side, the best reported (default 2)")
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--recovery-workflows", type=int, default=200)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--redis", default=REDIS_URL)
    p.add_argument("--restate-dir", default=DEFAULT_DIR,
                   help="where Restate's server and SDK are installed (default %(default)s)")
    p.add_argument("--only", nargs="+", default=["throughput", "latency", "recovery"],
                   choices=["throughput", "latency", "recovery"])
    return p


async def run(args: argparse.Namespace) -> str:
    title = (f"End to end vs Restate 1.7.12 (Python SDK 1.2.0, hypercorn), 3-step workflow "
             f"(throughput: {args.workflows:,} started at once; latency: {args.samples} one at "
             f"a time; recovery: {args.recovery_workflows} x {args.steps} steps, SIGKILL of the "
             "service process). durable runs on PostgreSQL + Redis with durable server, its "
             "worker in the application's process or in a process of its own; plain: "
             "@durable.action with no options and a default Worker; fastest: "
             "@durable.action(timeout=5.0), run inline.")
    try:
        restate = await asyncio.to_thread(install, Path(args.restate_dir).expanduser())
    except Unavailable as exc:
        progress(f"Restate: skipped: {exc}")
        return f"{title}\nskipped: Restate is not available here: {exc}"
    results = {}
    for what in args.only:
        mine = await durable_setups(what, args)
        progress(f"{what}: Restate (server + one service process) ...")
        results[what] = (mine, await best(what, args.repeat, lambda: attempt(
            f"Restate {what}", restate_side(what, args, restate))))
    return f"{title}\n{report(results, 'Restate', goal)}"


def main() -> None:
    exit_on_sigterm()
    print(asyncio.run(run(parser().parse_args())), flush=True)


if __name__ == "__main__":
    main()
