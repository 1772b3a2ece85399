"""A worker's read of its hint streams: CPU per XREADGROUP, redis-py's own command against
the dispatcher's ``StreamReads`` (each stream's name encoded once), in one sitting.

    .venv/bin/python bench/redis_reads.py [--redis redis://127.0.0.1:6379/0] [--streams 272]

A worker reads every partition's stream of every route it hosts: 16 partitions of the 17
routes the end-to-end benchmarks' worker hosts are 272 streams. The streams are empty, as most
are at any read; their keys go under a scratch prefix, deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis.asyncio as aioredis  # noqa: E402

from durable._dispatch._reads import StreamReads  # noqa: E402
from durable._dispatch._redis_link import connect  # noqa: E402


async def _cpu_per_call(read: Callable[[], Awaitable[Any]], calls: int) -> float:
    for _ in range(20):
        await read()
    began = time.process_time()
    for _ in range(calls):
        await read()
    return (time.process_time() - began) / calls * 1e6


async def main(url: str, count: int, calls: int, rounds: int) -> None:
    client = connect(url, 5.0, 1.0)
    assert isinstance(client, aioredis.Redis), "a single Redis, not a cluster"
    prefix = f"durable-bench:{uuid.uuid4().hex[:8]}"
    streams = [f"{prefix}:{{{i % 16}}}:a:route{i // 16}" for i in range(count)]
    try:
        pipe = client.pipeline(transaction=False)
        for stream in streams:
            pipe.xgroup_create(stream, "g", id="0", mkstream=True)
        await pipe.execute()
        reads = StreamReads(client, "g")
        ours: list[float] = []
        theirs: list[float] = []
        for round_ in range(rounds):
            theirs.append(await _cpu_per_call(lambda: client.xreadgroup(
                "g", "me", dict.fromkeys(streams, ">"), count=10), calls))
            ours.append(await _cpu_per_call(lambda: reads.read("me", streams, 10, None), calls))
            print(f"  round {round_ + 1}/{rounds}: redis-py {theirs[-1]:.0f} µs, "
                  f"StreamReads {ours[-1]:.0f} µs of CPU per read", flush=True)
        best_theirs, best_ours = min(theirs), min(ours)
        print(f"XREADGROUP of {count} streams, CPU per read (best of {rounds} x {calls}): "
              f"redis-py {best_theirs:.0f} µs, StreamReads {best_ours:.0f} µs "
              f"({best_ours / best_theirs:.2f}x)")
    finally:
        await client.delete(*streams)
        await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--streams", type=int, default=272)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.redis, args.streams, args.calls, args.rounds))
