"""``durable worker`` and ``durable server`` started before their PostgreSQL answers (a
container started next to its database, a database restarting) wait for it and then start;
a database that refuses the setup fails them at once.

The database "comes up" when a TCP relay to the real server starts listening on the port the
service was given: until then nothing listens there.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from urllib.parse import urlsplit, urlunsplit

import pytest

from _support import closed_port

from .test_cli import REPO, _env

pytestmark = [pytest.mark.integration]


def _on_port(dsn: str, port: int) -> str:
    parts = urlsplit(dsn)
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{port}"))


async def _relay(port: int, target: tuple[str, int]) -> asyncio.Server:
    """Listen on ``port`` and pass every connection's bytes to ``target`` and back."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*target)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    return await asyncio.start_server(serve, "127.0.0.1", port)


def _service(command: list[str], db: str) -> subprocess.Popen[str]:
    env = _env(db)
    env.pop("DURABLE_REDIS", None)
    return subprocess.Popen([sys.executable, "-m", "durable._cli", *command], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def _line(stream: object, what: str, timeout: float) -> str:
    """The first line of ``stream`` (a text pipe) that holds ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = await asyncio.to_thread(stream.readline)  # type: ignore[attr-defined]
        if what in line:
            return str(line)
        if not line:
            break
    raise AssertionError(f"no line with {what!r} within {timeout}s")


@pytest.mark.parametrize("command", [["worker", "examples.invoice:worker"],
                                     ["server", "--port", "0"]])
async def test_a_service_waits_for_its_database_and_then_starts(
        command: list[str], pg_database: str) -> None:
    port = closed_port()
    proc = _service(command, _on_port(pg_database, port))
    relay = None
    try:
        warned = await _line(proc.stderr, "trying again in", timeout=20)
        assert "is unavailable" in warned and proc.poll() is None
        await asyncio.sleep(1.0)
        assert proc.poll() is None  # still waiting, not failed
        real = urlsplit(pg_database)
        relay = await _relay(port, (real.hostname or "127.0.0.1", real.port or 5432))
        started = await _line(proc.stdout, "started", timeout=30)
        assert f"127.0.0.1:{port}" in started
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
        if relay is not None:
            relay.close()


async def test_a_service_does_not_wait_for_a_database_that_does_not_exist(
        pg_database: str) -> None:
    missing = urlunsplit(urlsplit(pg_database)._replace(path="/durable_no_such_database"))
    proc = _service(["worker", "examples.invoice:worker"], missing)
    out, err = await asyncio.to_thread(proc.communicate, None, 30)
    assert proc.returncode != 0
    assert "does not exist" in err and "trying again" not in err
