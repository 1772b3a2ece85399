"""Tracing: what durable does becomes OpenTelemetry spans, one trace per execution.

With ``pip install 'durable[otel]'`` and a tracer provider set by the application (the
SDK's), durable makes spans for ``client.start`` / ``handle.send`` / queries and updates,
each workflow task (``durable.replayed`` says whether it replayed history), each action
attempt, each timer a workflow task runs the firing of, and each child start. Without
``opentelemetry`` installed, or without a provider, none of it runs: ``TRACING`` is None or
``enabled()`` is False, and each hook returns after one test.

One trace per execution: ``client.start`` records its span's W3C ``traceparent`` in the
execution's ``WorkflowStarted`` (``trace``), the runs it continues as and the children it
starts (from the child-start span), so whichever worker runs a task, after any retry or
crash, parents its span on it. An action attempt's span is current while the action runs
(in its task or thread): whatever it calls and traces is its child.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Final, TypeVar, cast

if TYPE_CHECKING:
    from ._otel import OtelTracing

__all__ = ["TRACING", "child_trace", "current_trace", "current_trace_id", "traced"]

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def _load() -> OtelTracing | None:
    try:
        from ._otel import OtelTracing
    except ImportError:  # the otel extra is not installed
        return None
    return OtelTracing()


TRACING: Final = _load()


def current_trace() -> str | None:
    """The ``traceparent`` of the current span (None: not traced)."""
    return None if TRACING is None else TRACING.current_header()


def current_trace_id() -> str | None:
    """The current span's trace id in hex, for log lines (None: no span)."""
    return None if TRACING is None else TRACING.current_trace_id()


def child_trace(workflow: str, workflow_id: str, recorded: str | None) -> str | None:
    """The ``traceparent`` a child execution records: a ``durable.start_child`` span's, a
    child of the current (workflow task's) span; else the parent's ``recorded`` one."""
    if TRACING is None or not TRACING.enabled():
        return recorded
    span = TRACING.start(f"durable.start_child {workflow}", recorded,
                         {"durable.workflow": workflow, "durable.workflow_id": workflow_id},
                         kind="producer")
    TRACING.end(span)
    return TRACING.header(span) or recorded


def traced(what: str) -> Callable[[F], F]:
    """Run a client call in a span: ``durable.start <workflow>`` (``Client.start``),
    ``durable.send <event>`` (``handle.send``), ``durable.query <name>`` or ``durable.update
    <name>`` (``what="request"``: ``_queries.call(handle, kind, name, ...)``; ``"update"``:
    ``_queries.start_update(handle, name, ...)``)."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        async def wrapper(self: Any, first: Any, *args: Any, **kwargs: Any) -> Any:
            if TRACING is None or not TRACING.enabled():
                return await fn(self, first, *args, **kwargs)
            name, attributes = _described(what, self, first, args, kwargs)
            span = TRACING.start(name, None, attributes, kind="producer")
            token = TRACING.attach(span)
            error: BaseException | None = None
            try:
                result = await fn(self, first, *args, **kwargs)
                workflow_id = getattr(result, "workflow_id", None)
                if isinstance(workflow_id, str):
                    span.set_attribute("durable.workflow_id", workflow_id)
                return result
            except BaseException as exc:
                error = exc
                raise
            finally:
                TRACING.detach(token)
                TRACING.end(span, error)

        return cast(F, wrapper)

    return decorate


def _described(what: str, self: Any, first: Any, args: tuple[Any, ...],
               kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A client span's name and attributes: what is started or sent, and to which execution."""
    if what == "start":
        defn = getattr(first, "__durable_workflow__", None)  # its registered name
        name = str(getattr(defn, "name", None) or getattr(first, "__name__", first))
        tenant = kwargs.get("tenant") or getattr(self, "tenant", "")
        return f"durable.start {name}", {"durable.workflow": name, "durable.tenant": tenant}
    kind, name = (str(first), str(args[0]) if args else "") if what == "request" \
        else (what, str(first))
    return f"durable.{kind} {name}", {"durable.name": name,
                                       "durable.workflow_id": getattr(self, "workflow_id", ""),
                                       "durable.tenant": getattr(self, "tenant", "")}
