"""Redis key names used by dispatch, all in one place (the scripts get every key they touch
from here, as ``KEYS``: they build no names of their own).

With prefix ``durable`` and partition ``p`` (0 <= p < partitions)::

    durable:{p}:w            workflow-task hints of partition p whose workflow is not named
    durable:{p}:w:<route>    workflow-task hints of the workflow <route> in partition p
    durable:{p}:a:<route>    action-task hints of the action <route> in partition p
    durable:route:<t> US <id>  the worker that caches execution <id> of tenant <t> (expires;
                             removed when the execution ends or that worker evicts it)
    durable:sticky:<worker>  workflow-task hints routed to that worker (sticky execution)
    durable:alive:<worker>   exists while the worker is alive (expires after its lease)

Every stream has one consumer group, :data:`GROUP`; a consumer is a worker identity. An
execution's partition is a stable hash of (tenant, workflow_id), so its hints always land in the
same partition. The ``{p}`` hash tag puts a partition's streams in one Redis Cluster slot (a
multi-stream ``XREADGROUP`` must stay within a slot) and spreads partitions over slots: use at
least as many partitions as the cluster has primaries.

A route is a workflow's or action's name on its task queue (``_queues.route``: the plain name on
the default queue), so a worker reads only the streams of what it hosts. A workflow hint whose
publisher does not know its route (an input from another process) goes to the partition's
unnamed stream, which every worker that hosts workflows reads; a worker that cannot claim it
acknowledges it, and the store's outbox announces it again, named.
"""

from __future__ import annotations

import zlib

from ..errors import InvalidArgumentError

__all__ = [
    "GROUP", "HINT_FIELD", "action_stream", "alive", "check_prefix", "partition", "route",
    "sticky_stream", "workflow_stream",
]

GROUP = "durable-workers"
"""The consumer group on every stream."""

HINT_FIELD = b"r"
"""The stream entry field that holds a msgpack-encoded ``TaskRef``."""


def check_prefix(prefix: str) -> str:
    """The prefix without a trailing ``:``; braces would break the hash tags."""
    prefix = prefix.rstrip(":")
    if not prefix or "{" in prefix or "}" in prefix:
        raise InvalidArgumentError(
            f"a Redis key prefix is a non-empty string without braces, not {prefix!r}")
    return prefix


def partition(tenant: str, workflow_id: str, partitions: int) -> int:
    """The partition of an execution: stable across processes and Python versions."""
    return zlib.crc32(f"{tenant}\x00{workflow_id}".encode()) % partitions


def workflow_stream(prefix: str, p: int, route: str = "") -> str:
    """The stream of workflow-task hints of the workflow ``route`` in partition ``p`` (its
    unnamed stream when ``route`` is empty)."""
    return f"{prefix}:{{{p}}}:w:{route}" if route else f"{prefix}:{{{p}}}:w"


def action_stream(prefix: str, name: str, p: int) -> str:
    """The stream of hints for action ``name`` (a route) in partition ``p``."""
    return f"{prefix}:{{{p}}}:a:{name}"


def route(prefix: str, tenant: str, workflow_id: str) -> str:
    """The key naming the worker that caches an execution (its sticky route)."""
    return f"{prefix}:route:{tenant}\x1f{workflow_id}"


def sticky_stream(prefix: str, owner: str) -> str:
    """The stream of workflow-task hints routed to worker ``owner``."""
    return f"{prefix}:sticky:{owner}"


def alive(prefix: str, owner: str) -> str:
    """The key that exists while worker ``owner`` is alive."""
    return f"{prefix}:alive:{owner}"
