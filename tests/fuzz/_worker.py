"""A worker process for the fuzzer: ``python -m tests.fuzz._worker DB_URL``.

It hosts ``FuzzProgram`` and ``fuzz_act`` with a short lease, so that the work of a SIGKILLed
worker is taken over within about a second.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import durable

from ._program import fuzz_act, fuzz_program

LEASE = 1.0


async def main(url: str) -> None:
    async with durable.connect(url) as client:
        worker = durable.Worker(client, workflows=[fuzz_program], actions=[fuzz_act],
                                lease=LEASE, poll_interval=0.05)
        await worker.run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR,
                        format="%(asctime)s pid=%(process)d %(name)s %(levelname)s %(message)s")
    logging.getLogger("durable.workflow").setLevel(logging.CRITICAL)  # programs' own errors
    asyncio.run(main(sys.argv[1]))
