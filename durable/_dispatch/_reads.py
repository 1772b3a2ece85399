"""One ``XREADGROUP`` of many streams, encoded once.

A worker reads every partition's stream of every route it hosts (16 partitions of a dozen
routes: a command of some 400 arguments). redis-py encodes each argument on each call, which
cost ~0.7 ms of the worker's CPU per read (of ~0.9 ms in all) with 272 streams; here each
stream's name is encoded once, and the command is sent as it is, on a connection of the
client's pool, with its retry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from ._fair import Hint


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


class _Bulks(dict[str, bytes]):
    """Names encoded as bulk strings, each once."""

    def __missing__(self, name: str) -> bytes:
        bulk = self[name] = _bulk(name.encode())
        return bulk


_XREADGROUP = _bulk(b"XREADGROUP") + _bulk(b"GROUP")  # two arguments
_COUNT, _BLOCK, _STREAMS, _ANY_NEW = map(_bulk, (b"COUNT", b"BLOCK", b"STREAMS", b">"))


class StreamReads:
    """``XREADGROUP GROUP group consumer COUNT n [BLOCK ms] STREAMS ... > ...`` on a single
    Redis (not a cluster); the reply as redis-py's ``xreadgroup`` gives it."""

    def __init__(self, client: aioredis.Redis, group: str) -> None:
        self._client = client
        self._group = _bulk(group.encode())
        self._names = _Bulks()

    def _packed(self, consumer: str, streams: Sequence[str], count: int,
                block: int | None) -> bytes:
        waits = () if block is None else (_BLOCK, _bulk(b"%d" % block))
        return b"".join((b"*%d\r\n" % (7 + len(waits) + 2 * len(streams)), _XREADGROUP,
                         self._group, _bulk(consumer.encode()), _COUNT, _bulk(b"%d" % count),
                         *waits, _STREAMS, *map(self._names.__getitem__, streams),
                         _ANY_NEW * len(streams)))

    async def read(self, consumer: str, streams: Sequence[str], count: int,
                   block: int | None) -> Any:
        """Read up to ``count`` new entries of each stream for ``consumer`` (waiting up to
        ``block`` ms for the first when given)."""
        packed = self._packed(consumer, streams, count, block)
        client: Any = self._client  # redis-py's connection API is not fully typed
        pool = client.connection_pool
        conn = await pool.get_connection()

        async def once() -> Any:
            await conn.send_packed_command(packed)
            return await client.parse_response(conn, "XREADGROUP")

        async def broken(error: Exception) -> None:
            await conn.disconnect()

        try:
            return await conn.retry.call_with_retry(once, broken)
        finally:
            await pool.release(conn)


def harvest(reads: dict[str, asyncio.Task[list[Hint]]], backlog: list[Hint]) -> list[Hint]:
    """The hints of the finished blocking ``reads`` (a cluster's, one per slot, by its first
    stream), which it removes; raising the first one's error once every finished read's
    hints are in ``backlog``."""
    found: list[Hint] = []
    error: BaseException | None = None
    for first, task in list(reads.items()):
        if task.done():
            del reads[first]
            if task.cancelled():
                continue
            if (exc := task.exception()) is not None:
                error = error or exc
            else:
                found += task.result()
    if error is not None:
        backlog += found
        raise error
    return found
