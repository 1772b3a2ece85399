"""Redis key names used by dispatch, all in one place (the scripts get every key they touch
from here, as ``KEYS``: they build no names of their own).

With prefix ``durable``, partition ``p`` (0 <= p < partitions) and worker tag ``W`` (a hash of
the worker's identity)::

    durable:{p}:w            workflow-task hints of partition p whose workflow is not named
    durable:{p}:w:<route>    workflow-task hints of the workflow <route> in partition p
    durable:{p}:a:<route>    action-task hints of the action <route> in partition p
    durable:route:<t> US <id>  the worker that caches execution <id> of tenant <t> (expires;
                             removed when the execution ends or that worker evicts it)
    durable:{W}:sticky:<p>:<worker>  workflow-task hints of partition p routed to that worker
                                     (sticky execution)
    durable:{W}:alive:<worker>   exists while the worker is alive (expires after its lease)

Every stream has one consumer group, :data:`GROUP`; a consumer is a worker identity.

Partitions are for fairness and for Redis Cluster. A hint's partition is a stable hash of its
execution's tenant (:func:`partition`; a fairness key can join the tenant there), so one tenant's
backlog fills one partition's streams and leaves the others' hints free to be read: a worker
reads every partition and takes hints round-robin across tenants (``_fair``). A worker's sticky
streams are partitioned the same way. Two tenants in one partition share its order, so use
several partitions per busy tenant you expect (16 by default). The ``{p}`` hash tag puts a
partition's streams in one Redis Cluster slot (a multi-stream ``XREADGROUP`` must stay within a
slot) and spreads partitions over slots; a worker's sticky streams and alive key share the tag
``{W}``, so that the routing script touches one slot.

A route is a workflow's or action's name on its task queue (``_queues.route``: the plain name on
the default queue), so a worker reads only the streams of what it hosts. A workflow hint whose
publisher does not know its route (an input from another process) goes to the partition's
unnamed stream, which every worker that hosts workflows reads; a worker that cannot claim it
acknowledges it, and the store's outbox announces it again, named.

Earlier layouts: partitions were a hash of (tenant, workflow id) and the worker keys had no
hash tag (``durable:sticky:<worker>``, ``durable:alive:<worker>``). Hints left in those keys
are announced again by the store's outbox; the old worker keys expire on their own.
"""

from __future__ import annotations

import zlib

from ..errors import InvalidArgumentError

__all__ = [
    "GROUP", "HINT_FIELD", "action_stream", "alive", "check_prefix", "hash_tag", "partition",
    "route", "sticky_stream", "workflow_stream",
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


def partition(tenant: str, partitions: int, fairness_key: str = "") -> int:
    """The partition of a tenant's hints (of one fairness key within the tenant, when given):
    stable across processes and Python versions."""
    key = f"{tenant}\x00{fairness_key}" if fairness_key else tenant
    return zlib.crc32(key.encode()) % partitions


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


def sticky_stream(prefix: str, owner: str, p: int) -> str:
    """The stream of workflow-task hints of partition ``p`` routed to worker ``owner`` (all of
    a worker's sticky streams share its alive key's slot)."""
    return f"{prefix}:{{{_worker_tag(owner)}}}:sticky:{p}:{owner}"


def alive(prefix: str, owner: str) -> str:
    """The key that exists while worker ``owner`` is alive (in its sticky stream's slot)."""
    return f"{prefix}:{{{_worker_tag(owner)}}}:alive:{owner}"


def _worker_tag(owner: str) -> str:
    # A hash, not the identity itself: an identity may hold braces, which would cut the tag.
    return f"w{zlib.crc32(owner.encode()):08x}"


def hash_tag(key: str) -> str:
    """What Redis Cluster hashes to place ``key`` in a slot: the text between the first ``{``
    and the next ``}`` when that is not empty, else the whole key."""
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    return key[start + 1:end] if end > start + 1 else key
