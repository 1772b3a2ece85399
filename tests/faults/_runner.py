"""A worker process for the fault tests: ``python -m tests.faults._runner DB_URL [--concurrency N]``.

It runs every workflow and action of ``_flows`` with a short lease, so that the work of a
SIGKILLed worker is taken over within about ``LEASE`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

import durable

from . import _flows, _port_flows

LEASE = 1.0


async def main(url: str, concurrency: int, redis_url: str | None, prefix: str,
               only: list[str] | None = None, lease: float = LEASE) -> None:
    """Run a worker on ``url`` (dispatching through Redis when given) until killed; with
    ``only``, it hosts just the workflows of those names (and every action)."""
    options = {} if redis_url is None else {"redis_url": redis_url, "prefix": prefix}
    workflows = [wf for wf in [*_flows.WORKFLOWS, *_port_flows.WORKFLOWS]
                 if only is None or wf.__durable_workflow__.name in only]
    async with durable.connect(url, **options) as client:  # type: ignore[arg-type]
        worker = durable.Worker(client, workflows=workflows,
                                actions=[*_flows.ACTIONS, *_port_flows.ACTIONS],
                                lease=lease, poll_interval=0.05, concurrency=concurrency)
        await worker.run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--redis", default=None)
    parser.add_argument("--prefix", default="durable")
    parser.add_argument("--workflows", default=None, help="host only these (comma-separated)")
    parser.add_argument("--lease", type=float, default=LEASE)
    options = parser.parse_args()
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s pid=%(process)d %(name)s %(levelname)s %(message)s")
    only = None if options.workflows is None else options.workflows.split(",")
    asyncio.run(main(options.url, options.concurrency, options.redis, options.prefix, only,
                     options.lease))
