"""Helpers every test package shares (``tests/`` is on ``sys.path`` under pytest)."""

from __future__ import annotations

import asyncio
import inspect
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

T = TypeVar("T")


async def eventually(probe: Callable[[], T | Awaitable[T]], *, timeout: float = 20.0,
                     interval: float = 0.01, what: str = "a condition") -> T:
    """Call ``probe`` until it returns something truthy, and return that (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


def open_redis(url: str) -> Any:
    """A redis-py asyncio client for ``url``: a ``RedisCluster`` for ``redis+cluster://``."""
    import redis.asyncio as aioredis
    from redis.asyncio.cluster import RedisCluster

    if url.startswith(("redis+cluster://", "rediss+cluster://")):
        return RedisCluster.from_url(url.replace("+cluster", "", 1))
    return aioredis.from_url(url)


def closed_port() -> int:
    """A local TCP port that nothing listens on (bound once by the OS, then let go)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def as_role(url: str, role: str) -> str:
    """``url`` with ``role`` as its user (a tenant's role: ``durable tenant create``)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{role}@{parts.netloc.rpartition('@')[2]}"))
