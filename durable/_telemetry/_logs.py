"""Logs that say which execution they are about: ``durable.configure_logging`` and the
context every line emitted inside a workflow task or an action attempt carries.

The worker sets ``log_context`` (a ``ContextVar``) for each workflow task and each action
attempt, in that task's or thread's own context, so concurrent tasks never see each other's.
``ExecutionFilter`` copies it onto each ``LogRecord`` as ``workflow_id``, ``run_id``,
``tenant`` and ``trace_id`` (None outside a task), for any handler and format; the trace id
is the current OpenTelemetry span's, else the one recorded with the execution.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from typing import Any, Final, NamedTuple, TextIO

from ..errors import InvalidArgumentError
from . import _tracing

__all__ = ["ExecutionFilter", "JsonFormatter", "LogContext", "configure_logging", "log_context"]

LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS: Final = ("text", "json")
_FIELDS: Final = ("workflow_id", "run_id", "tenant", "trace_id")
_TEXT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LogContext(NamedTuple):
    """The execution a workflow task or action attempt works for; ``trace`` is the W3C
    ``traceparent`` recorded when the execution started (None: it was not traced)."""

    workflow_id: str
    run_id: str
    tenant: str
    trace: str | None = None


log_context: ContextVar[LogContext | None] = ContextVar("durable_log_context", default=None)


class ExecutionFilter(logging.Filter):
    """Adds ``workflow_id``, ``run_id``, ``tenant`` and ``trace_id`` to every record (None
    outside a workflow task or action); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate ``record`` with the execution of the current task, if any."""
        ctx = log_context.get()
        trace = _tracing.current_trace_id()
        if trace is None and ctx is not None and ctx.trace is not None:
            trace = ctx.trace[3:35]  # "00-<trace id>-<span id>-<flags>"
        record.workflow_id, record.run_id, record.tenant = \
            (None, None, None) if ctx is None else ctx[:3]
        record.trace_id = trace
        return True


class _TextFormatter(logging.Formatter):
    """The classic line, plus ``[workflow_id=… run_id=… tenant=… trace_id=…]`` when set."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if getattr(record, "workflow_id", None) is None:
            return line
        shown = " ".join(f"{k}={getattr(record, k)}" for k in _FIELDS
                         if getattr(record, k, None) is not None)
        return f"{line} [{shown}]"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the execution's fields
    (``null`` outside a task) and, with an exception, its traceback as ``exc``."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        line: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        for key in _FIELDS:
            line[key] = getattr(record, key, None)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str | int = "INFO", format: str = "text",
                      stream: TextIO | None = None) -> logging.Handler:
    """Send durable's logs (and every other logger's) to ``stream`` (default stderr).

    ``level``: a name (``"DEBUG"`` … ``"CRITICAL"``) or a number; ``format``: ``"text"`` (one
    line per record, with ``[workflow_id=… run_id=… tenant=… trace_id=…]`` inside a workflow
    task or action) or ``"json"`` (one object per line with those fields). Replaces the
    handlers of the root logger; returns the handler it installed. ``durable worker`` and
    ``durable server`` call it for ``--log-level`` and ``--log-format``.
    """
    number = _level(level)
    if format not in FORMATS:
        raise InvalidArgumentError(f"the log format is 'text' or 'json', not {format!r}",
                                   parameter="format")
    handler = _Handler(stream)
    handler.addFilter(ExecutionFilter())
    handler.setFormatter(JsonFormatter() if format == "json" else _TextFormatter(_TEXT))
    root = logging.getLogger()
    for old in root.handlers[:]:
        if isinstance(old, _Handler):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(number)
    return handler


class _Handler(logging.StreamHandler[TextIO]):
    """The handler ``configure_logging`` installs (a later call replaces it, and only it:
    others, such as a test runner's capture, stay): to ``stream``, or without one to whatever
    ``sys.stderr`` is at each record (as the logging module's last resort does)."""

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__(stream)
        self._follows_stderr = stream is None

    def emit(self, record: logging.LogRecord) -> None:
        if self._follows_stderr:
            self.stream = sys.stderr
        super().emit(record)


def _level(level: str | int) -> int:
    if isinstance(level, int) and not isinstance(level, bool) and level >= 0:
        return level
    if isinstance(level, str) and level.upper() in LEVELS:
        return int(getattr(logging, level.upper()))
    raise InvalidArgumentError(f"the log level is one of {', '.join(LEVELS)} (or a number), "
                               f"not {level!r}", parameter="level")
