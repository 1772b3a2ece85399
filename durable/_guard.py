"""The determinism guard: calls in workflow code that would replay differently.

A workflow is re-run against its history, so what it computes must come from the history:
the clock, random numbers, fresh UUIDs, the environment and secrets come from ``ctx`` or from
an action instead. ``check(fn)`` reads a workflow function's source (nested functions
included) and finds the calls that break this, by resolving each called name through the
function's globals: ``datetime.now()``, ``dt.datetime.utcnow()``, ``date.today()``,
``time.time()``, ``time.monotonic()``, anything of the ``random`` and ``secrets`` modules,
``uuid.uuid1()`` / ``uuid4()``, ``os.getenv()`` and ``os.environ``. It runs when a workflow is
decorated (a ``NondeterministicCallWarning`` per finding, with ``file:line`` and what to use
instead) and in ``durable lint MODULE...`` (for CI). Names it cannot resolve statically
(a parameter, an attribute of a local object) are not reported: the guard has no false alarms
by design, not full coverage.
"""

from __future__ import annotations

import ast
import datetime
import inspect
import os
import random
import secrets
import textwrap
import time
import types
import uuid
import warnings
from typing import Any, Callable, Final, Iterator, NamedTuple

__all__ = ["CLOCK", "OUTSIDE", "RANDOM", "SHARED", "UUID", "Finding", "NondeterministicCallWarning",
           "advice", "check", "warn"]


class NondeterministicCallWarning(UserWarning):
    """Workflow code calls something that returns another value on replay (the clock, random
    numbers, the environment): use ``ctx.now()``, ``ctx.random()``, ``ctx.uuid4()`` or an
    action instead."""


class Finding(NamedTuple):
    """One call that breaks replay: where, what, and what to use instead."""

    file: str
    line: int
    call: str
    instead: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.call} is not deterministic: {self.instead}"


CLOCK: Final = "use ctx.now() (the workflow's recorded time)"
RANDOM: Final = "use ctx.random() (a stream that replays identically)"
UUID: Final = "use ctx.uuid4() (it replays identically)"
OUTSIDE: Final = ("read it in an action (ctx.run) or pass it in as an argument: it may differ "
                   "on the worker that replays")

def _key(obj: Any) -> str | None:
    """A stable name for a function or method (bound methods are made anew on each access)."""
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", None)
    if isinstance(owner, types.ModuleType):
        return f"{owner.__name__}.{name}"
    if isinstance(owner, type):
        return f"{owner.__module__}.{owner.__qualname__}.{name}"
    if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType)):
        return f"{obj.__module__}.{obj.__qualname__}"
    return None


# What is reported, by stable name, and the advice for each.
_BANNED: Final[dict[str | None, str]] = {_key(obj): advice for obj, advice in [
    (datetime.datetime.now, CLOCK), (datetime.datetime.utcnow, CLOCK),  # pyright: ignore[reportDeprecated]
    (datetime.datetime.today, CLOCK), (datetime.date.today, CLOCK),
    (time.time, CLOCK), (time.time_ns, CLOCK), (time.monotonic, CLOCK),
    (time.monotonic_ns, CLOCK), (time.perf_counter, CLOCK), (time.localtime, CLOCK),
    (time.gmtime, CLOCK), (time.ctime, CLOCK),
    (uuid.uuid1, UUID), (uuid.uuid4, UUID),
    (os.getenv, OUTSIDE), (os.urandom, RANDOM),
]}
_BANNED.pop(None, None)
# Module-level functions of these modules, and the methods of their shared generators.
_MODULES: Final[dict[str, str]] = {"random": RANDOM, "secrets": RANDOM}
SHARED: Final = (random.random.__self__, secrets.choice.__self__)  # type: ignore[attr-defined]


def check(fn: Callable[..., Any]) -> list[Finding]:
    """The calls in ``fn`` (a workflow function, nested functions included) that break replay."""
    try:
        lines, first = inspect.getsourcelines(fn)
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return []  # no source to read (a lambda in a REPL, a C function): nothing to say
    file = inspect.getsourcefile(fn) or "<unknown>"
    globals_ = getattr(fn, "__globals__", {})
    found = [Finding(file, first + getattr(node, "lineno", 1) - 1, name, advice)
             for node, name, advice in _uses(tree, globals_)]
    return sorted(set(found), key=lambda f: (f.line, f.call))


def warn(fn: Callable[..., Any], workflow: str) -> list[Finding]:
    """Check ``fn`` and warn once per finding (at the line of the call)."""
    findings = check(fn)
    for finding in findings:
        warnings.warn_explicit(f"workflow {workflow!r}: {finding.call} is not deterministic: "
                               f"{finding.instead}", NondeterministicCallWarning,
                               finding.file, finding.line)
    return findings


def _uses(tree: ast.AST, globals_: dict[str, Any]) -> Iterator[tuple[ast.AST, str, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            target = node.func
        elif isinstance(node, (ast.Attribute, ast.Subscript)) and _dotted(node) == "os.environ":
            target = node if isinstance(node, ast.Attribute) else node.value
        else:
            continue
        name = _dotted(target)
        if name is None:
            continue
        instead = _advice(_resolve(name, globals_))
        if instead is not None:
            yield node, name + ("()" if isinstance(node, ast.Call) else ""), instead


def _dotted(node: ast.AST) -> str | None:
    """``a.b.c`` for a chain of attributes on a name, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


_UNRESOLVED: Final = object()


def _resolve(name: str, globals_: dict[str, Any]) -> Any:
    """The object a dotted name refers to in the function's module (or ``_UNRESOLVED``)."""
    head, *rest = name.split(".")
    if head not in globals_:
        return _UNRESOLVED  # a local or a parameter: not known statically
    obj = globals_[head]
    for part in rest:
        try:
            obj = getattr(obj, part)
        except Exception:  # noqa: BLE001 - any failure to resolve means: not known
            return _UNRESOLVED
    return obj


def _advice(obj: Any) -> str | None:
    if obj is _UNRESOLVED:
        return None
    return advice(obj)


def advice(obj: Any) -> str | None:
    """What to use instead of calling ``obj``, if calling it breaks replay; else None."""
    if obj is os.environ:
        return OUTSIDE
    if getattr(obj, "__self__", None) in SHARED:  # random.choice, secrets.choice, ...
        return RANDOM
    key = _key(obj)
    if key in _BANNED:
        return _BANNED[key]
    module = getattr(obj, "__module__", None)
    if isinstance(obj, types.FunctionType) and module in _MODULES:  # secrets.token_hex, ...
        return _MODULES[module]
    return None
