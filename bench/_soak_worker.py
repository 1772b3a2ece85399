"""A soak worker process: ``python -m bench._soak_worker DB_URL REDIS_URL PREFIX LEASE``.

It hosts every soak workflow and action until it is killed (the soak SIGKILLs it).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time

import durable
from durable.errors import StoreUnavailableError

from ._soak_flows import ACTIONS, WORKFLOWS


async def main(url: str, redis_url: str, prefix: str, lease: float) -> None:
    """Run one worker on the store at ``url``, dispatching through Redis."""
    client = await _connected(url, redis_url, prefix)
    try:
        worker = durable.Worker(client, workflows=WORKFLOWS, actions=ACTIONS, lease=lease,
                                concurrency=50)
        await worker.run()
    finally:
        await client.close()


async def _connected(url: str, redis_url: str, prefix: str) -> durable.Client:
    """A client, once the store answers: a worker that replaces a killed one may start while
    the soak restarts PostgreSQL, and then waits for it, as its supervisor would restart it."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return await durable.connect(url, redis_url=redis_url, prefix=prefix)
        except StoreUnavailableError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR,
                        format="%(asctime)s pid=%(process)d %(name)s %(levelname)s %(message)s")
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])))
