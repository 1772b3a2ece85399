"""Task queues: names, and how a task's queue travels with its name through the stores.

A workflow or action task is claimed by a worker that hosts its *route*: its name on its
queue. The stores keep the route where they kept the name (the ``workflow`` columns of
executions and workflow tasks, the ``name`` column of action tasks), so every statement that
copies a name copies the queue along, and a claim that filters names filters routes. Tasks
on the default queue keep their plain name as their route: stores, Redis keys and hints made
before queues existed mean the same thing now.

Records (``ExecutionRecord``, ``WorkflowTask``, ``ActionTask``) carry the name and the queue
apart: the stores split routes as they read rows (:func:`unroute`) and join them as they write
(:func:`route`).

Invariant: a route names exactly one (name, queue) pair. Names and queue names never contain
control characters (``_validate.check_id``), so the separator, the record separator U+001E,
cannot occur in either.
"""

from __future__ import annotations

from typing import Any, Final

from ._validate import check_id, show
from .errors import ArgumentTypeError, ValidationError

__all__ = ["DEFAULT_QUEUE", "HOSTS_REFRESH", "HOSTS_TTL", "SEP", "check_queue", "check_queues",
           "route", "unroute", "unhosted_reason"]

DEFAULT_QUEUE: Final = "default"
SEP: Final = "\x1e"
# A worker re-registers what it hosts this often (seconds); a registration older than
# HOSTS_TTL is a worker that is gone.
HOSTS_REFRESH: Final = 5.0
HOSTS_TTL: Final = 3 * HOSTS_REFRESH


def check_queue(value: Any, what: str = "a queue name") -> str:
    """A queue name: a non-empty ``str`` without control characters, at most
    ``MAX_ID_BYTES`` bytes (``ArgumentTypeError`` / ``ValidationError`` otherwise). Any such
    name is a queue; no queue is declared before it is used."""
    return check_id(value, what)


def check_queues(values: Any) -> frozenset[str] | None:
    """``Worker(queues=...)``: None (each definition on its own queue) or a non-empty list of
    queue names."""
    if values is None:
        return None
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ArgumentTypeError(f"queues is a list of queue names, not {show(values)}",
                                parameter="queues")
    queues = frozenset(check_queue(q) for q in values)
    if not queues:
        raise ValidationError("queues lists at least one queue (None: each definition's own)",
                              parameter="queues")
    return queues


def route(name: str, queue: str) -> str:
    """The route of ``name`` on ``queue``: what the stores keep and claims filter on."""
    return name if queue == DEFAULT_QUEUE else f"{queue}{SEP}{name}"


def unroute(stored: str) -> tuple[str, str]:
    """The (name, queue) of a route."""
    queue, sep, name = stored.partition(SEP)
    return (name, queue) if sep else (stored, DEFAULT_QUEUE)


def unhosted_reason(kind: str, stored: str) -> str:
    """What ``describe()`` says of a route no live worker hosts."""
    name, queue = unroute(stored)
    what = "workflow" if kind == "w" else "action"
    return f"no worker hosts {what} {name!r} on queue {queue!r}"
