"""A soak worker process: ``python -m bench._soak_worker DB_URL REDIS_URL PREFIX LEASE``.

It hosts every soak workflow and action until it is killed (the soak SIGKILLs it).
"""

from __future__ import annotations

import asyncio
import logging
import sys

import durable
from durable._cli._targets import when_available

from ._soak_flows import ACTIONS, WORKFLOWS


async def main(url: str, redis_url: str, prefix: str, lease: float) -> None:
    """Run one worker on the store at ``url``, dispatching through Redis. A worker that
    replaces a killed one may start while the soak restarts PostgreSQL: it waits for it, as
    ``durable worker`` does."""
    client = await when_available("worker", url, redis_url=redis_url, prefix=prefix)
    try:
        worker = durable.Worker(client, workflows=WORKFLOWS, actions=ACTIONS, lease=lease,
                                concurrency=50)
        await worker.run()
    finally:
        await client.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR,
                        format="%(asctime)s pid=%(process)d %(name)s %(levelname)s %(message)s")
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])))
